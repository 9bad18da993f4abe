#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the versions this admin-tools image
# ships. Every step is idempotent, so the job runs again on every `docker compose up` without harm.
set -eu
: "${SQL_PASSWORD:?SQL_PASSWORD must be set}"
export SQL_PLUGIN=postgres12 SQL_HOST="${SQL_HOST:-postgresql}" SQL_PORT="${SQL_PORT:-5432}" SQL_USER="${SQL_USER:-temporal}"
schemas=/etc/temporal/schema/postgresql/v12

for db in temporal:temporal temporal_visibility:visibility; do
	name=${db%%:*}
	dir=$schemas/${db##*:}/versioned
	echo "schema: $name"
	temporal-sql-tool --db "$name" create-database
	temporal-sql-tool --db "$name" setup-schema -v 0.0
	temporal-sql-tool --db "$name" update-schema -d "$dir"
done
echo "schema: done"
