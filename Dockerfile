# syntax=docker/dockerfile:1
# connectflow's images: one Go build stage, then one small image per binary. Build a target:
#
#   docker build --target worker -t connectflow/worker .          (also: webhookbridge, sandbox)
#
# None of them holds the Temporal server: only `go run ./dev` embeds it. Each carries /usr/local/bin/probe, the
# healthcheck (the runtime image has no shell, curl or wget).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# .git is not in the build context (.dockerignore), so the go tool cannot stamp the revision: pass it, and every
# binary's -version prints it (internal/buildinfo), e.g.
#   docker build --build-arg VCS_REVISION=$(git rev-parse HEAD) --build-arg VCS_TIME=$(git log -1 --format=%cI) ...
# (docker-compose.yml passes both from the environment). Without them -version says "revision unknown".
ARG VCS_REVISION=""
ARG VCS_TIME=""
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# The build fetches only the modules these binaries import (not the Temporal server's), into a cache mount.
# The root (product) module alone, not the go.work that joins the server-linked dev/, bench/ and tests/ modules
# (docs/modules.md).
ENV GOWORK=off
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -o /out/ \
      -ldflags="-s -w -X github.com/connectflow/connectflow/internal/buildinfo.vcsRevision=${VCS_REVISION} -X github.com/connectflow/connectflow/internal/buildinfo.vcsTime=${VCS_TIME}" \
      ./worker ./webhookbridge ./sandbox ./deploy/probe

FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/probe /usr/local/bin/probe
USER nonroot:nonroot

FROM runtime AS worker
COPY --from=build /out/worker /usr/local/bin/worker
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/worker"]

FROM runtime AS webhookbridge
COPY --from=build /out/webhookbridge /usr/local/bin/webhookbridge
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/webhookbridge"]

FROM runtime AS sandbox
COPY --from=build /out/sandbox /usr/local/bin/sandbox
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/sandbox"]
