// Package embedded runs a Temporal server and the Temporal Web UI inside the calling process: every service on
// one host, SQLite persistence (a file that survives restarts, or memory), and one namespace created with the
// caller's search attributes. It is for `go run ./dev` and tests; a deployment runs Temporal's own images (see
// docker-compose.yml).
//
//	srv, err := embedded.Start(ctx, embedded.Options{DatabaseFile: ".dev-data/temporal.db"})
//	// dial srv.FrontendAddr(), browse srv.UIURL()
//	defer srv.Stop()
package embedded

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Defaults of Options.
const (
	DefaultIP        = "127.0.0.1"
	DefaultNamespace = "default"
	// DefaultRetention keeps closed workflows a month, so a dev data folder still shows last week's transfers.
	DefaultRetention = 30 * 24 * time.Hour
)

const (
	clusterName = "active"
	// readyTimeout bounds the wait for the frontend and the UI to answer after the server has started.
	readyTimeout = time.Minute
	// setupSuffix names the file the schema is written to before it is renamed into place.
	setupSuffix = ".setup"
)

// Options configure an embedded server. The zero value keeps everything in memory on free loopback ports.
type Options struct {
	// IP is the address every service and the UI bind to; default DefaultIP.
	IP string
	// FrontendPort is the gRPC frontend's port; 0 picks a free one.
	FrontendPort int
	// UIPort is the Web UI's port; 0 picks a free one.
	UIPort int
	// DatabaseFile is the SQLite file to persist to. The first start creates it with its schema; later starts
	// reuse it. Its folder must exist. Empty keeps everything in memory, gone at Stop.
	DatabaseFile string
	// Namespace is created when the database lacks it; default DefaultNamespace.
	Namespace string
	// SearchAttributes are the namespace's custom search attributes when this start creates it.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Retention is how long closed workflows are kept in a namespace this start creates; default DefaultRetention.
	Retention time.Duration
	// UICodecEndpoint is a codec server the UI decodes payloads through, sending its cookies (a codec.Handler
	// signs a browser in with one); empty shows payloads as stored.
	UICodecEndpoint string
	// DynamicConfig overrides server settings by key, e.g. "system.forceSearchAttributesCacheRefreshOnRead".
	DynamicConfig map[string]any
	// Logger receives the server's log lines; its handler picks the level. Default discards.
	Logger *slog.Logger
	// Postgres, when set, makes this server one node of a cluster on PostgreSQL instead of a single SQLite
	// server (DatabaseFile must then be empty): Start sets up the schema, joins the cluster through the
	// database's membership table and creates the namespace through the frontend unless it exists.
	Postgres *Postgres
}

// Server is a running embedded Temporal server and UI.
type Server struct {
	temporal  temporal.Server
	ui        *uiserver.Server
	uiDone    chan struct{}
	frontend  string
	uiURL     string
	namespace string
	stopOnce  sync.Once
	stopErr   error
}

// Start creates the database when needed, starts the server and the UI, and returns once both answer.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	// The UI and the frontend must get exactly the ports asked for; the other services take any free one.
	// A cluster node also needs a membership (gossip) port per service.
	ports, err := reservePorts(opts.IP, opts.FrontendPort, opts.UIPort, 0, 0, 0, 0, 0, 0, 0)
	if err == nil && opts.Postgres != nil {
		// The membership table keeps ports as smallint, so a node's own ports come from below 32768.
		ports, err = reserveLowPorts(opts.IP, ports[:2], 7)
	}
	if err != nil {
		return nil, err
	}
	frontendPort, uiPort := ports[0], ports[1]
	var conf *config.Config
	if opts.Postgres != nil {
		if err := SetupPostgresSchema(ctx, opts.Postgres.DSN, opts.Logger); err != nil {
			return nil, err
		}
		conf = opts.clusterConfig(frontendPort, ports[2:])
	} else {
		sqlConf, err := opts.database()
		if err != nil {
			return nil, err
		}
		if err := opts.createNamespace(sqlConf); err != nil {
			return nil, err
		}
		conf = opts.serverConfig(sqlConf, frontendPort, ports[2], ports[3], ports[4])
	}
	srv, err := newTemporal(conf, opts)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("embedded temporal: start: %w", err)
	}
	s := &Server{
		temporal:  srv,
		frontend:  net.JoinHostPort(dialHost(opts.IP), strconv.Itoa(frontendPort)),
		uiURL:     "http://" + net.JoinHostPort(BrowserHost(opts.IP), strconv.Itoa(uiPort)),
		namespace: opts.Namespace,
		uiDone:    make(chan struct{}),
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost(opts.IP),
		Port:                uiPort,
		TemporalGRPCAddress: s.frontend,
		EnableUI:            true,
		DefaultNamespace:    opts.Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true}, // plain http on loopback
		Codec:               uiconfig.Codec{Endpoint: opts.UICodecEndpoint, IncludeCredentials: opts.UICodecEndpoint != ""},
		HideLogs:            true,
	}))
	go func() {
		defer close(s.uiDone)
		// Start returns nil once Stop closes it; a failure to listen exits the process inside ui-server.
		if err := s.ui.Start(); err != nil {
			opts.Logger.Error("temporal ui stopped", "err", err)
		}
	}()
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if opts.Postgres != nil {
		if err := s.registerNamespace(readyCtx, opts); err != nil {
			_ = s.Stop() // the start failed already; that error is the one to report
			return nil, err
		}
	}
	if err := s.waitReady(readyCtx); err != nil {
		_ = s.Stop() // the start failed already; that error is the one to report
		return nil, err
	}
	return s, nil
}

// FrontendAddr is the gRPC frontend's host:port, for client.Options.HostPort.
func (s *Server) FrontendAddr() string { return s.frontend }

// UIURL is the Web UI's base URL, e.g. http://localhost:8233.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace is the namespace Start made sure exists.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI, then the server, which finishes its writes before it returns. It is idempotent.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.ui.Stop()
		<-s.uiDone
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("embedded temporal: stop: %w", err)
		}
	})
	return s.stopErr
}

func (o *Options) fill() error {
	o.IP = cmp.Or(o.IP, DefaultIP)
	o.Namespace = cmp.Or(o.Namespace, DefaultNamespace)
	o.Retention = cmp.Or(o.Retention, DefaultRetention)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if net.ParseIP(o.IP) == nil {
		return fmt.Errorf("embedded temporal: IP %q is not an IP address", o.IP)
	}
	for _, p := range []struct {
		name string
		port int
	}{{"FrontendPort", o.FrontendPort}, {"UIPort", o.UIPort}} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("embedded temporal: %s %d is outside 0..65535", p.name, p.port)
		}
	}
	if o.FrontendPort != 0 && o.FrontendPort == o.UIPort {
		return fmt.Errorf("embedded temporal: FrontendPort and UIPort are both %d", o.UIPort)
	}
	if o.Retention < time.Hour {
		return fmt.Errorf("embedded temporal: Retention %v is under an hour", o.Retention)
	}
	if o.Postgres != nil {
		if o.DatabaseFile != "" {
			return errors.New("embedded temporal: DatabaseFile and Postgres exclude each other")
		}
		pg := *o.Postgres
		pg.HistoryShards = cmp.Or(pg.HistoryShards, ClusterHistoryShards)
		pg.ClusterAddress = cmp.Or(pg.ClusterAddress, DefaultClusterAddress)
		if pg.HistoryShards < 1 {
			return fmt.Errorf("embedded temporal: HistoryShards %d is under 1", pg.HistoryShards)
		}
		if _, err := ParsePostgresDSN(pg.DSN); err != nil {
			return fmt.Errorf("embedded temporal: %w", err)
		}
		o.Postgres = &pg
	}
	return nil
}

// database returns the SQLite settings, first creating the file with its schema when it does not exist yet.
func (o *Options) database() (*config.SQL, error) {
	if o.DatabaseFile == "" {
		// Shared cache keeps one in-memory database for all of the server's connections; the name keeps two
		// servers in one process apart.
		return &config.SQL{PluginName: sqliteplugin.PluginName, DatabaseName: "connectflow-" + rand.Text(),
			ConnectAttributes: map[string]string{"mode": "memory", "cache": "shared"}}, nil
	}
	path, err := filepath.Abs(o.DatabaseFile)
	if err != nil {
		return nil, fmt.Errorf("embedded temporal: database file: %w", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("embedded temporal: database folder: %w", err)
	}
	fileConf := func(name string) *config.SQL {
		return &config.SQL{PluginName: sqliteplugin.PluginName, DatabaseName: name,
			ConnectAttributes: map[string]string{"mode": "rwc"}}
	}
	switch _, err := os.Stat(path); {
	case err == nil:
		return fileConf(path), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("embedded temporal: database file: %w", err)
	}
	// The schema goes into a side file renamed into place when complete, so a start cut short never leaves a
	// half-made database that later starts would take as ready.
	partial := path + setupSuffix
	if err := os.Remove(partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("embedded temporal: remove an unfinished database: %w", err)
	}
	if err := sqliteschema.SetupSchema(fileConf(partial)); err != nil {
		return nil, fmt.Errorf("embedded temporal: create the database schema: %w", err)
	}
	if err := os.Rename(partial, path); err != nil {
		return nil, fmt.Errorf("embedded temporal: database file: %w", err)
	}
	return fileConf(path), nil
}

// createNamespace adds the namespace, with the search attributes and retention, unless the database has it.
func (o *Options) createNamespace(sqlConf *config.SQL) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return fmt.Errorf("embedded temporal: namespace %s: %w", o.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(o.Retention)
	if err := sqliteschema.CreateNamespaces(sqlConf, ns); err != nil {
		return fmt.Errorf("embedded temporal: namespace %s: %w", o.Namespace, err)
	}
	return nil
}

func (o *Options) serverConfig(sqlConf *config.SQL, frontend, history, matching, worker int) *config.Config {
	rpcAddr := net.JoinHostPort(o.IP, strconv.Itoa(frontend))
	service := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: o.IP}}
	}
	conf := &config.Config{
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlConf}},
		},
		ClusterMetadata: &cluster.Config{
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: rpcAddr},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			string(primitives.FrontendService): service(frontend),
			string(primitives.HistoryService):  service(history),
			string(primitives.MatchingService): service(matching),
			string(primitives.WorkerService):   service(worker),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		// The server's own system workflows reach the frontend through this.
		PublicClient: config.PublicClient{HostPort: rpcAddr},
	}
	conf.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: o.IP}
	return conf
}

func newTemporal(conf *config.Config, o Options) (temporal.Server, error) {
	logger := slogLogger{o.Logger}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("embedded temporal: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("embedded temporal: claim mapper: %w", err)
	}
	dynamic := dynamicconfig.StaticClient{}
	for k, v := range ClusterDynamicConfig() {
		dynamic[dynamicconfig.MakeKey(k)] = v
	}
	for k, v := range o.DynamicConfig {
		dynamic[dynamicconfig.MakeKey(k)] = v
	}
	serverOpts := []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamic),
	}
	if o.Postgres == nil {
		// One process holds every service, so membership is static: no gossip ports to open. A cluster node
		// finds the others through the database's membership table instead.
		hosts := map[primitives.ServiceName]static.Hosts{}
		for name, svc := range conf.Services {
			hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(o.IP, strconv.Itoa(svc.RPC.GRPCPort)))
		}
		serverOpts = append(serverOpts, temporal.WithStaticHosts(hosts))
	}
	srv, err := temporal.NewServer(serverOpts...)
	if err != nil {
		return nil, fmt.Errorf("embedded temporal: %w", err)
	}
	return srv, nil
}

// waitReady polls until the frontend answers a health check in the namespace and the UI answers /healthz.
func (s *Server) waitReady(ctx context.Context) error {
	var last error
	for {
		if last = s.probe(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded temporal: not ready: %w", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) probe(ctx context.Context) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: s.frontend, Namespace: s.namespace,
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return fmt.Errorf("frontend %s: %w", s.frontend, err)
	}
	defer c.Close()
	if _, err := c.WorkflowService().DescribeNamespace(ctx,
		&workflowservice.DescribeNamespaceRequest{Namespace: s.namespace}); err != nil {
		return fmt.Errorf("namespace %s: %w", s.namespace, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.uiURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ui %s: %w", s.uiURL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ui %s/healthz: %s", s.uiURL, resp.Status)
	}
	return nil
}

// reservePorts checks that each asked port is free on ip, picking a free one for each 0. It holds every listener
// until all are chosen, so the picks differ from each other.
func reservePorts(ip string, asked ...int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close() // only probing; nothing was served
		}
	}()
	out := make([]int, len(asked))
	for i, port := range asked {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("embedded temporal: port %d on %s is not free: %w", port, ip, err)
		}
		held = append(held, ln)
		out[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

// uiHost brackets an IPv6 address: the UI server joins host and port with a plain colon.
func uiHost(ip string) string {
	if net.ParseIP(ip).To4() == nil {
		return "[" + ip + "]"
	}
	return ip
}

// dialHost is where a client on this machine reaches a service bound to ip.
func dialHost(ip string) string {
	if net.ParseIP(ip).IsUnspecified() {
		return DefaultIP
	}
	return ip
}

// BrowserHost names a loopback or every-interface IP "localhost" in URLs meant for a browser, so the UI and
// what it calls share one site for cookies.
func BrowserHost(ip string) string {
	if parsed := net.ParseIP(ip); parsed.IsLoopback() || parsed.IsUnspecified() {
		return "localhost"
	}
	return ip
}
