package workerapp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/connectflow/connectflow/codec"
)

// MetricsReportInterval is how often counters and gauges are copied into the Prometheus registry.
const MetricsReportInterval = time.Second

// MetricsPath is where Serve exposes the registry.
const MetricsPath = "/metrics"

// Metrics carries the Temporal SDK's metrics to Prometheus, the way temporalio/samples-go's metrics sample does:
// a tally scope over a Prometheus reporter, named by Prometheus conventions.
type Metrics struct {
	// Handler goes into client.Options.MetricsHandler.
	Handler client.MetricsHandler
	// HTTP serves the registry in the Prometheus text format.
	HTTP     http.Handler
	scope    io.Closer
	logger   *slog.Logger
	business *business
}

// NewMetrics returns SDK metrics on their own registry, alongside Go runtime and process metrics and connectflow's
// business metrics (business.go: the workflow's counters and histogram go through Handler; WatchVisibility keeps
// the gauges). A metric the registry refuses (the same name with other labels) is logged, not fatal.
func NewMetrics(logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.Default()
	}
	registry := prom.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registry.MustRegister(codec.Collectors()...) // payloads whose encryption does not match this process's
	biz := newBusiness(registry)
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       registry,
		DefaultTimerType: tallyprom.HistogramTimerType,
		OnRegisterError:  func(err error) { logger.Warn("metric not registered", "error", err) },
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, MetricsReportInterval)
	return &Metrics{
		Handler: businessHandler{next: sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), b: biz},
		HTTP: promhttp.HandlerFor(registry, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
		}),
		scope:    closer,
		logger:   logger,
		business: biz,
	}
}

// Close reports the last counter and gauge values and stops the reporting loop.
func (m *Metrics) Close() error { return m.scope.Close() }

// Serve serves MetricsPath on ln in the background; Shutdown the returned server to stop.
func (m *Metrics) Serve(ln net.Listener) *http.Server {
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, m.HTTP)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error("metrics server stopped", "error", err)
		}
	}()
	return srv
}
