package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/connectflow/connectflow/dev/embedded"
)

// clusterFlags are the flags of the PostgreSQL mode: `go run ./dev -server-only -postgres DSN` is one node of a
// Temporal cluster; two or three such processes on one database (different -temporal-port and -ui-port) form one
// cluster through the database's membership table, as Temporal's own nodes do. The server settings are
// docker-compose.yml's (embedded.PostgresPlugin, embedded.ClusterHistoryShards, embedded.ClusterDynamicConfig).
type clusterFlags struct {
	postgres       string // DSN; empty runs the SQLite server
	postgresFile   string // file holding the DSN (it carries a password: a flag shows in ps)
	historyShards  int
	clusterAddress string
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.postgres, "postgres", "", "run Temporal as one node of a cluster on PostgreSQL at this DSN "+
		"(postgres://user:password@host:port/postgres?sslmode=disable) instead of SQLite; the schema is set up first")
	fs.StringVar(&c.postgresFile, "postgres-file", "", "file holding the -postgres DSN (a Docker secret: the DSN carries "+
		"a password, and a flag shows in ps); not with -postgres")
	fs.IntVar(&c.historyShards, "history-shards", embedded.ClusterHistoryShards,
		"history shards of the cluster (-postgres only; fixed when its database is first set up, the same on every node)")
	fs.StringVar(&c.clusterAddress, "cluster-address", embedded.DefaultClusterAddress,
		"address the cluster record names (-postgres only; the same on every node)")
}

// readFile sets the DSN from -postgres-file, first of the checks (the others read the DSN); its errors never
// quote the file's content.
func (c *clusterFlags) readFile(bad func(flagName, format string, args ...any)) {
	if c.postgresFile == "" {
		return
	}
	if c.postgres != "" {
		bad("postgres-file", "give -postgres or -postgres-file, not both")
		return
	}
	data, err := os.ReadFile(c.postgresFile)
	if err != nil {
		bad("postgres-file", "cannot read the file: %v", errors.Unwrap(err))
		return
	}
	if c.postgres = strings.TrimSpace(string(data)); c.postgres == "" {
		bad("postgres-file", "the file is empty")
	}
}

// check validates the cluster flags against the rest of the command line; set holds the flags given.
func (c *clusterFlags) check(set map[string]bool, bad func(flagName, format string, args ...any)) {
	if c.postgres == "" {
		for _, name := range []string{"history-shards", "cluster-address"} {
			if set[name] {
				bad(name, "applies only with -postgres")
			}
		}
		return
	}
	if _, err := embedded.ParsePostgresDSN(c.postgres); err != nil {
		bad("postgres", "%v", err) // the parse errors never carry the password
	}
	for _, name := range []string{"data", "memory"} {
		if set[name] {
			bad(name, "cannot be used with -postgres: Temporal's data is in PostgreSQL")
		}
	}
	if c.historyShards < 1 || c.historyShards > 16384 {
		bad("history-shards", "%d is outside 1..16384", c.historyShards)
	}
	if strings.TrimSpace(c.clusterAddress) == "" {
		bad("cluster-address", "must not be empty")
	}
}

// options is the embedded server's PostgreSQL setting, or nil for SQLite.
func (c clusterFlags) options() *embedded.Postgres {
	if c.postgres == "" {
		return nil
	}
	return &embedded.Postgres{DSN: c.postgres, HistoryShards: int32(c.historyShards), ClusterAddress: c.clusterAddress}
}

// description says where a cluster node keeps its data, without the DSN's password.
func (c clusterFlags) description() string {
	d, _ := embedded.ParsePostgresDSN(c.postgres) // checked by parseConfig
	return fmt.Sprintf("PostgreSQL at %s as %s (databases %s and %s, %d history shards; a cluster node)",
		d.Addr, d.User, embedded.PostgresDatabase, embedded.PostgresVisibilityDatabase, c.historyShards)
}

// devDynamicConfig is the dynamic config the dev command adds to the server's: none for a cluster node, which runs
// exactly what compose's server runs.
func (s *stack) devDynamicConfig() map[string]any { return s.cfg.devDynamicConfigFor() }

func (c config) devDynamicConfigFor() map[string]any {
	if c.cluster.postgres != "" {
		return nil
	}
	return map[string]any{"system.forceSearchAttributesCacheRefreshOnRead": true}
}
