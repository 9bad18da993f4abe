#!/usr/bin/env bash
# Runs `go run ./bench` against a Temporal cluster on PostgreSQL: for each history shard count, a fresh throwaway
# PostgreSQL (deploy/postgres/throwaway.sh), NODES nodes of `dev -server-only -postgres`, then the bench with each
# worker count. The shard count is fixed when a database is set up, so each count gets its own PostgreSQL.
#
#   bench/cluster.sh OUTDIR                   # shards 1 4 16 with 1 worker, and 16 shards with 2 and 4 workers
#   SHARDS="4 16" WORKERS="1 2" NODES=3 BENCH_FLAGS="-signals 600" bench/cluster.sh OUTDIR
#
# Each run writes OUTDIR/shards-S-workers-W.{md,json}. The bench runs the ingest and transfers scenarios (the
# waiting scenario measures one worker); its clients reach the cluster through node 1's frontend, which routes
# each call to the node owning the workflow's shard.
set -euo pipefail
out=${1:?usage: bench/cluster.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
nodes=${NODES:-3}
bin=$(mktemp -d)
pgdir=""
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	[ -z "$pgdir" ] || deploy/postgres/throwaway.sh remove "$pgdir" >/dev/null 2>&1 || true
	pgdir=""
}
trap 'cleanup; rm -rf "$bin"' EXIT
echo "cluster-bench: building dev and bench" >&2
go build -o "$bin/" ./dev ./bench

run_matrix() { # shards, then worker counts
	local shards=$1
	shift
	pgdir=$(mktemp -d /tmp/connectflow-bench-pg-XXXXXX)
	local dsn
	dsn=$(deploy/postgres/throwaway.sh start "$pgdir")
	local first=""
	for i in $(seq "$nodes"); do
		local port=$((17300 + i))
		"$bin/dev" -server-only -postgres "$dsn" -history-shards "$shards" -temporal-port "$port" -ui-port 0 -codec-port 0 \
			>"$out/node-$shards-$i.stdout" 2>"$out/node-$shards-$i.stderr" &
		pids+=($!)
		for _ in $(seq 300); do
			grep -q "^Ready." "$out/node-$shards-$i.stdout" && break
			kill -0 "${pids[-1]}" 2>/dev/null || { echo "node $i exited; see $out/node-$shards-$i.stderr" >&2; exit 1; }
			sleep 1
		done
		grep -q "^Ready." "$out/node-$shards-$i.stdout" || { echo "node $i not ready" >&2; exit 1; }
		[ -n "$first" ] || first="127.0.0.1:$port"
	done
	for w in "$@"; do
		echo "cluster-bench: $shards shards, $nodes nodes, $w workers" >&2
		# A throwaway cluster: payloads in plaintext unless the caller gave keys (the worker refuses to run without
		# either since issue 14).
		# The nodes' PIDs and PostgreSQL's postmaster (its backends are its children): their CPU time counts in the
		# bench's CPU per operation, as the embedded server's (SQLite in process) does.
		local server_pids
		server_pids=$(IFS=,; echo "${pids[*]},$(head -1 "$pgdir/data/postmaster.pid")")
		TEMPORAL_ADDRESS=$first CONNECTFLOW_CODEC_PLAINTEXT=${CONNECTFLOW_CODEC_PLAINTEXT:-true} "$bin/bench" -scenarios ingest,transfers -workers "$w" -server-pids "$server_pids" ${BENCH_FLAGS:-} \
			-json "$out/shards-$shards-workers-$w.json" >"$out/shards-$shards-workers-$w.md"
	done
	cleanup
}

if [ -n "${SHARDS:-}" ]; then
	for s in $SHARDS; do run_matrix "$s" ${WORKERS:-1}; done
else
	run_matrix 1 1
	run_matrix 4 1
	run_matrix 16 1 2 4
fi
echo "cluster-bench: done; results in $out" >&2
