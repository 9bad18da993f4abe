#!/usr/bin/env bash
# fuzz-one.sh PKG NAME FUZZTIME: one short fuzz run of NAME in ./PKG (make fuzz runs it for every target).
# Prints the last line on success; on failure prints the whole log and exits 1. A crasher lands in
# PKG/testdata/fuzz/NAME and becomes a regression seed.
#
# Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a failure: "context deadline exceeded" with
# no failing input (golang/go#75804, fixed in Go 1.27). That failure, and only that one, is run again once; any
# other failure, a failing input written, or the same failure twice fails.
set -uo pipefail
pkg=$1 name=$2 fuzztime=$3
go=${GO:-go}
corpus=$pkg/testdata/fuzz/$name
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for attempt in 1 2; do
	before=$(ls "$corpus" 2>/dev/null)
	if "$go" test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "./$pkg/" >"$log" 2>&1; then
		if ! grep -q '^fuzz: elapsed' "$log"; then
			# go test passes when -fuzz matches nothing: a renamed or removed target must not pass unfuzzed.
			cat "$log"
			echo "fuzz-one.sh: no fuzz target $name in ./$pkg/ (renamed? update FUZZ_TARGETS in the Makefile)"
			exit 1
		fi
		tail -1 "$log"
		exit 0
	fi
	after=$(ls "$corpus" 2>/dev/null)
	if [ "$attempt" = 1 ] && [ "$before" = "$after" ] && grep -qx '    context deadline exceeded' "$log" &&
		! grep -q 'Failing input written' "$log"; then
		echo "fuzz $name: the fuzz coordinator's deadline race (golang/go#75804), no failing input; running it again"
		continue
	fi
	cat "$log"
	exit 1
done
