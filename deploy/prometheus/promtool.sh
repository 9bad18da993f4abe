#!/usr/bin/env bash
# Runs promtool with the given arguments, installing Debian's prometheus package (which ships promtool) first when
# promtool is missing: root only, as CI runs. `make alerts` uses it:
#
#   deploy/prometheus/promtool.sh check rules deploy/prometheus/alerts.yml
#   deploy/prometheus/promtool.sh test rules deploy/prometheus/alerts_test.yml
#
# Nothing is downloaded but Debian's package (apt-get); the package's own Prometheus server is not started here.
set -euo pipefail

say() { echo "promtool.sh: $*" >&2; }

if ! command -v promtool >/dev/null; then
	if [ "$(id -u)" -ne 0 ]; then
		say "promtool is not installed and only root can install it: apt-get install prometheus"
		exit 1
	fi
	# Parallel make jobs: one installs, the others wait for it and find it installed.
	exec 9>/tmp/connectflow-promtool-install.lock
	flock 9
	if ! command -v promtool >/dev/null; then
		say "installing promtool from Debian's prometheus package"
		export DEBIAN_FRONTEND=noninteractive
		apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
		apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus >&2
		command -v promtool >/dev/null || { say "apt-get installed prometheus, but promtool is not on PATH"; exit 1; }
	fi
	exec 9>&-
fi
exec promtool "$@"
