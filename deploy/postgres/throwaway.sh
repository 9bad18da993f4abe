#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback, for running Temporal on PostgreSQL on this machine without Docker:
# the chaos suite's cluster topology, `go run ./bench` against the cluster, or trying `go run ./dev -postgres`.
#
#   deploy/postgres/throwaway.sh start DIR   # installs PostgreSQL (Debian's package) when missing, creates the
#                                            # cluster in DIR unless it is there, starts it on a free loopback
#                                            # port, and prints its DSN as the last line of stdout
#   deploy/postgres/throwaway.sh dsn DIR     # prints the DSN of the running cluster in DIR
#   deploy/postgres/throwaway.sh stop DIR    # stops it (fast shutdown); nothing when it is not running
#   deploy/postgres/throwaway.sh remove DIR  # stops it and deletes DIR
#
# Every command is idempotent: start on a running cluster prints its DSN again, stop on a stopped one does nothing.
# The superuser is "temporal" (as in docker-compose.yml) with a random password kept in DIR/password (mode 600);
# the cluster listens on 127.0.0.1 only and has no Unix socket outside DIR. PostgreSQL refuses to run as root, so
# as root the cluster is created and run by the unprivileged user "nobody" (DIR is then owned by nobody and every
# folder above it must be enterable by others, as /tmp is); any other user runs it as themself.
# Nothing is downloaded but Debian's postgresql package (apt-get, root only); no container.
set -euo pipefail

usage() {
	echo "usage: $0 start|dsn|stop|remove DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
[ -n "$dir" ] || usage
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
data="$dir/data"
user=temporal

say() { echo "throwaway-postgres: $*" >&2; }
die() {
	say "$*"
	exit 1
}

# bindir finds the newest installed PostgreSQL's programs (initdb and pg_ctl are not on PATH on Debian).
bindir() {
	local b
	b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
	[ -n "$b" ] && [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && echo "$b"
}

install_postgres() {
	[ -n "$(bindir)" ] && return 0
	[ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and only root can install it: apt-get install postgresql"
	# Tests start clusters in parallel: one installs, the others wait for it and find it installed.
	exec 9>/tmp/connectflow-throwaway-postgres-install.lock
	flock 9
	[ -n "$(bindir)" ] && return 0
	say "installing PostgreSQL from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
	# Only the packages: no system-wide "main" cluster started on port 5432 as a side effect of installing
	# (postgresql-common first, its createcluster.conf edited, then the server, as the postgres image does).
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postgresql-common >&2
	sed -ri 's/^#? *create_main_cluster *=.*$/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postgresql >&2
	[ -n "$(bindir)" ] || die "apt-get installed postgresql, but no /usr/lib/postgresql/*/bin/initdb"
}

# as_owner runs a command as the cluster's owner: nobody when we are root, ourselves otherwise.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

running() { [ -f "$data/postmaster.pid" ] && as_owner "$B/pg_ctl" status -D "$data" >/dev/null 2>&1; }

port_of() { [ -f "$data/postgresql.auto.conf" ] && sed -n 's/^port = \([0-9]*\).*/\1/p' "$data/postgresql.auto.conf" | tail -1; }

print_dsn() {
	local port
	port=$(port_of)
	[ -n "$port" ] || die "$data has no port set; remove $dir and start again"
	echo "postgres://$user:$(cat "$dir/password")@127.0.0.1:$port/postgres?sslmode=disable"
}

# free_port picks a port nothing on 127.0.0.1 answers on; start retries when another process takes it first.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "found no free port on 127.0.0.1"
}

create() {
	[ -d "$data" ] && [ -f "$data/PG_VERSION" ] && return 0
	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown nobody:nogroup "$dir"
		as_owner test -w "$dir" || die "user nobody cannot write $dir: choose a folder under /tmp, or one whose parents others may enter"
	fi
	chmod 700 "$dir"
	rm -rf "$data"
	local pw
	pw=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
	(umask 077 && printf '%s\n' "$pw" >"$dir/password.tmp" && mv "$dir/password.tmp" "$dir/password")
	[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$dir/password"
	say "creating a cluster in $data"
	as_owner "$B/initdb" -D "$data" -U "$user" --pwfile="$dir/password" --auth=scram-sha-256 \
		--encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	}
	# Temporal's nodes hold a pool each; the default 100 connections are too few for three nodes and their tools.
	as_owner sh -c "cat >>'$data/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 400
shared_buffers = 128MB
fsync = on
CONF
}

start() {
	install_postgres
	B=$(bindir)
	create
	if running; then
		print_dsn
		return 0
	fi
	local port
	port=$(port_of 2>/dev/null || true) # a restart keeps its port when it is still free
	if [ -n "$port" ] && (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then port=""; fi
	for attempt in 1 2 3 4 5; do
		[ -n "$port" ] || port=$(free_port)
		as_owner sh -c "echo 'port = $port' >'$data/postgresql.auto.conf'"
		if as_owner "$B/pg_ctl" start -D "$data" -l "$dir/postgres.log" -w -t 60 >/dev/null; then
			say "running on 127.0.0.1:$port (data $data, log $dir/postgres.log)"
			print_dsn
			return 0
		fi
		say "start on port $port failed (attempt $attempt):"
		tail -5 "$dir/postgres.log" >&2 || true
		port=""
	done
	die "PostgreSQL did not start; see $dir/postgres.log"
}

stop() {
	B=$(bindir) || return 0
	[ -d "$data" ] || return 0
	if running; then
		as_owner "$B/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
		say "stopped the cluster in $data"
	fi
}

case "$cmd" in
start) start ;;
dsn)
	B=$(bindir) || die "PostgreSQL is not installed"
	running || die "no cluster is running in $data"
	print_dsn
	;;
stop) stop ;;
remove)
	stop
	rm -rf "$dir"
	say "removed $dir"
	;;
*) usage ;;
esac
