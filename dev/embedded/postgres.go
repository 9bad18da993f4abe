package embedded

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq" // the "postgres" database/sql driver, for the schema setup's advisory lock
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/config"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/primitives"
	toolschema "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The production topology's server settings. docker-compose.yml deploys the same (tests/compose_test.go holds the
// two together): the postgres12 plugin, the two databases its temporal-schema job creates, the history shard count,
// and the dynamic config in deploy/temporal/dynamicconfig/connectflow.yaml.
const (
	// PostgresPlugin is the persistence plugin compose's server runs (DB=postgres12).
	PostgresPlugin = postgresplugin.PluginName
	// PostgresDatabase holds the default store: histories, shards, task queues, membership.
	PostgresDatabase = "temporal"
	// PostgresVisibilityDatabase holds the visibility store (workflow lists and search attributes).
	PostgresVisibilityDatabase = "temporal_visibility"
	// ClusterHistoryShards is the history shard count of a cluster; it is fixed when the database is first set up
	// and every node must name the same.
	ClusterHistoryShards = 16
	// DefaultClusterAddress is the address the cluster record names, as the temporalio/server image's default;
	// every node of one cluster must give the same, or each start rewrites the record.
	DefaultClusterAddress = "127.0.0.1:7233"
	// schemaDefault and schemaVisibility are the server module's embedded PostgreSQL schemas.
	schemaDefault    = "postgresql/v12/temporal"
	schemaVisibility = "postgresql/v12/visibility"
	// schemaLockKey is the PostgreSQL advisory lock that serialises schema setups of nodes starting together.
	schemaLockKey = 0x636f6e6e // "conn"
	// Connection pool per store and node, as the temporalio/server image's defaults.
	postgresMaxConns        = 20
	postgresMaxConnLifetime = time.Hour
)

// ClusterDynamicConfig is the dynamic config every embedded server runs with, one node of a cluster or alone on
// SQLite: the keys and values of deploy/temporal/dynamicconfig/connectflow.yaml, which compose's server loads.
//
// VisibilityRPS lifts Temporal's default of 10 visibility calls per second per namespace and frontend: every
// transfer lists the other transfers of its reference once (superseding), so at the default a namespace starts at
// most about 10 transfers a second, and operators' and the metrics' lists queue behind them (docs/performance.md).
func ClusterDynamicConfig() map[string]any {
	return map[string]any{
		"frontend.enableUpdateWorkflowExecution": true,
		"frontend.namespaceRPS.visibility":       VisibilityRPS,
	}
}

// VisibilityRPS is the visibility calls per second per namespace and frontend the embedded server and compose's
// server allow (Temporal's default is 10).
const VisibilityRPS = 500

// Postgres makes an embedded server one node of a cluster on PostgreSQL: its membership goes through the
// database's cluster_membership table, so several nodes (processes) on one database form one cluster, and each
// owns a share of the history shards.
type Postgres struct {
	// DSN is postgres://user:password@host:port/database?sslmode=disable; database is the one to connect to while
	// creating Temporal's two databases (default postgres). Only sslmode=disable is taken: the nodes reach
	// PostgreSQL on loopback.
	DSN string
	// HistoryShards is the cluster's history shard count; default ClusterHistoryShards. A database set up with
	// another count refuses the node.
	HistoryShards int32
	// ClusterAddress is the address the cluster record names; default DefaultClusterAddress.
	ClusterAddress string
}

// PostgresDSN is a parsed DSN.
type PostgresDSN struct {
	Addr, User, Password string
	// AdminDatabase is the database connected to while creating the two Temporal databases.
	AdminDatabase string
}

// ParsePostgresDSN reads postgres://user:password@host:port/database?sslmode=disable. Its errors never include
// the password.
func ParsePostgresDSN(dsn string) (PostgresDSN, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return PostgresDSN{}, errors.New("postgres DSN: not a URL (want postgres://user:password@host:port/database?sslmode=disable)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return PostgresDSN{}, fmt.Errorf("postgres DSN: scheme %q is not postgres", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return PostgresDSN{}, errors.New("postgres DSN: no host")
	}
	if p, err := strconv.Atoi(cmp.Or(port, "5432")); err != nil || p < 1 || p > 65535 {
		return PostgresDSN{}, fmt.Errorf("postgres DSN: port %q is not a port", port)
	}
	if u.User == nil || u.User.Username() == "" {
		return PostgresDSN{}, errors.New("postgres DSN: no user")
	}
	for k, v := range u.Query() {
		if k != "sslmode" || len(v) != 1 || v[0] != "disable" {
			return PostgresDSN{}, fmt.Errorf("postgres DSN: parameter %s is not supported (only sslmode=disable)", k)
		}
	}
	pw, _ := u.User.Password()
	return PostgresDSN{Addr: net.JoinHostPort(host, cmp.Or(port, "5432")), User: u.User.Username(), Password: pw,
		AdminDatabase: cmp.Or(strings.TrimPrefix(u.Path, "/"), "postgres")}, nil
}

// sqlConfig is the server's settings for one of Temporal's databases.
func (d PostgresDSN) sqlConfig(database string) *config.SQL {
	return &config.SQL{PluginName: PostgresPlugin, DatabaseName: database, ConnectAddr: d.Addr, ConnectProtocol: "tcp",
		User: d.User, Password: d.Password, MaxConns: postgresMaxConns, MaxIdleConns: postgresMaxConns,
		MaxConnLifetime: postgresMaxConnLifetime}
}

// SetupPostgresSchema does what compose's temporal-schema job does with temporal-sql-tool, from the schema the
// server module ships: for the default and the visibility store it creates the database unless it exists,
// sets up the schema version tables (setup-schema -v 0.0) and updates the schema to this server's version
// (update-schema). Every step is idempotent, and nodes starting together take turns under an advisory lock.
func SetupPostgresSchema(ctx context.Context, dsn string, logger *slog.Logger) error {
	d, err := ParsePostgresDSN(dsn)
	if err != nil {
		return err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	unlock, err := lockSchema(ctx, d)
	if err != nil {
		return err
	}
	defer unlock()
	log := slogLogger{logger.With("part", "schema")}
	for _, s := range []struct{ database, schema string }{
		{PostgresDatabase, schemaDefault}, {PostgresVisibilityDatabase, schemaVisibility}} {
		if err := sqltool.DoCreateDatabase(d.sqlConfig(s.database), d.AdminDatabase, log); err != nil {
			return fmt.Errorf("postgres schema: create database %s: %w", s.database, err)
		}
		conn, err := sqltool.NewConnection(d.sqlConfig(s.database), log)
		if err != nil {
			return fmt.Errorf("postgres schema: connect to %s: %w", s.database, err)
		}
		err = toolschema.NewSetupSchemaTask(conn, &toolschema.SetupConfig{InitialVersion: "0.0"}, log).Run()
		if err == nil {
			err = toolschema.NewUpdateSchemaTask(conn, &toolschema.UpdateConfig{DBName: s.database, SchemaName: s.schema}, log).Run()
		}
		conn.Close()
		if err != nil {
			return fmt.Errorf("postgres schema: %s: %w", s.database, err)
		}
	}
	return nil
}

// lockSchema holds a session advisory lock on the admin database until the returned func is called.
func lockSchema(ctx context.Context, d PostgresDSN) (func(), error) {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(d.User, d.Password), Host: d.Addr, Path: "/" + d.AdminDatabase,
		RawQuery: "sslmode=disable"}
	db, err := sql.Open("postgres", u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres schema: open %s: %w", d.Addr, err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", schemaLockKey)
	}
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		_ = db.Close()
		return nil, fmt.Errorf("postgres schema: lock on %s as %s: %w", d.Addr, d.User, err)
	}
	return func() {
		// Closing the session releases the lock, even when the unlock statement fails.
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", schemaLockKey)
		_ = conn.Close()
		_ = db.Close()
	}, nil
}

// registerNamespace creates the namespace through the frontend unless it exists, then adds the search attributes
// it lacks; nodes starting together may race, so "already exists" is success.
func (s *Server) registerNamespace(ctx context.Context, o Options) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: s.frontend, Namespace: o.Namespace,
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return fmt.Errorf("embedded temporal: dial %s: %w", s.frontend, err)
	}
	defer c.Close()
	var last error
	for {
		if last = registerOnce(ctx, c, o); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded temporal: namespace %s: %w", o.Namespace, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func registerOnce(ctx context.Context, c client.Client, o Options) error {
	_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: o.Namespace, WorkflowExecutionRetentionPeriod: durationpb.New(o.Retention)})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return err
	}
	if len(o.SearchAttributes) == 0 {
		return nil
	}
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: o.Namespace})
	if err != nil {
		return err
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range o.SearchAttributes {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: o.Namespace, SearchAttributes: missing})
	var added *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &added) {
		return err
	}
	return nil
}

// clusterConfig is serverConfig for a cluster node: PostgreSQL for both stores, the cluster's shard count, a
// membership port per service (ports: history, matching and worker gRPC, then the four membership ports), and
// the cluster record naming the shared cluster address.
func (o *Options) clusterConfig(frontend int, ports []int) *config.Config {
	d, _ := ParsePostgresDSN(o.Postgres.DSN) // checked by fill
	conf := o.serverConfig(nil, frontend, ports[0], ports[1], ports[2])
	conf.Persistence = config.Persistence{
		DefaultStore:     PostgresDatabase,
		VisibilityStore:  PostgresVisibilityDatabase,
		NumHistoryShards: o.Postgres.HistoryShards,
		DataStores: map[string]config.DataStore{
			PostgresDatabase:           {SQL: d.sqlConfig(PostgresDatabase)},
			PostgresVisibilityDatabase: {SQL: d.sqlConfig(PostgresVisibilityDatabase)},
		},
	}
	i := 3
	for _, name := range []primitives.ServiceName{primitives.FrontendService, primitives.HistoryService,
		primitives.MatchingService, primitives.WorkerService} {
		svc := conf.Services[string(name)]
		svc.RPC.MembershipPort = ports[i]
		conf.Services[string(name)] = svc
		i++
	}
	info := conf.ClusterMetadata.ClusterInformation[clusterName]
	info.RPCAddress = o.Postgres.ClusterAddress
	conf.ClusterMetadata.ClusterInformation[clusterName] = info
	return conf
}

// Bounds of the ports a cluster node picks for its own services: PostgreSQL's cluster_membership table keeps a
// port as a smallint, so they stay under 32768 (and under Linux's ephemeral range, which starts there).
const (
	lowPortMin = 12000
	lowPortMax = 32767
)

// reserveLowPorts returns fixed followed by n ports free on ip between lowPortMin and lowPortMax, held together
// while chosen so they differ.
func reserveLowPorts(ip string, fixed []int, n int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close() // only probing; nothing was served
		}
	}()
	out := append([]int(nil), fixed...)
	for tries := 0; len(out) < len(fixed)+n; tries++ {
		if tries > 2000 {
			return nil, fmt.Errorf("embedded temporal: no %d free ports on %s in %d..%d", n, ip, lowPortMin, lowPortMax)
		}
		port := lowPortMin + mrand.IntN(lowPortMax-lowPortMin+1)
		if slices.Contains(out, port) {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue // taken; try another
		}
		held = append(held, ln)
		out = append(out, port)
	}
	return out, nil
}
