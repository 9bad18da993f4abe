// Package gintrace traces a Gin server when tracing is on (package telemetry): one server span per request,
// named by its route. docs/tracing.md.
package gintrace

import (
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"

	"github.com/connectflow/connectflow/internal/telemetry"
)

// untraced are the routes no span is opened for: probes and scrapes.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Gin is the middleware that opens a server span for each request to a Gin engine (service names the server),
// named "<METHOD> <route>" (the route pattern, never the raw path), continuing the caller's W3C trace context.
// Probes (/healthz, /readyz) and /metrics are not traced. nil when tracing is off: add it with Use only then.
func Gin(service string) gin.HandlerFunc {
	if !telemetry.Enabled() {
		return nil
	}
	return otelgin.Middleware(service,
		otelgin.WithPropagators(telemetry.Propagator),
		otelgin.WithGinFilter(func(c *gin.Context) bool { return !untraced[c.FullPath()] }),
		otelgin.WithSpanNameFormatter(func(c *gin.Context) string {
			route := c.FullPath()
			if route == "" {
				route = "unmatched route"
			}
			return c.Request.Method + " " + route
		}))
}

// UseGin adds Gin(service) to e when tracing is on: first, so every later middleware runs inside its span.
func UseGin(e *gin.Engine, service string) {
	if mw := Gin(service); mw != nil {
		e.Use(mw)
	}
}
