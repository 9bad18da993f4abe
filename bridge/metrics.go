package bridge

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; every one is prefixed connectflow_bridge_.
const (
	MetricRequests             = "connectflow_bridge_requests_total"
	MetricVerificationFailures = "connectflow_bridge_verification_failures_total"
	MetricSignalSeconds        = "connectflow_bridge_signal_seconds"
	// MetricSignalLimit counts signals Temporal refused because a workflow reached its signal limit: alert on > 0.
	MetricSignalLimit = "connectflow_bridge_signal_limit_total"
)

// metrics are the bridge's Prometheus series. Request counters are resolved once per route and outcome, so
// counting a request does not hash label values.
type metrics struct {
	requests      [numRoutes][numOutcomes]prometheus.Counter
	verifyFailed  *prometheus.CounterVec
	signalSeconds prometheus.Histogram
	signalLimit   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "Webhook and SDK-event requests by route and outcome.",
	}, []string{"route", "outcome"})
	m := &metrics{
		verifyFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricVerificationFailures,
			Help: "Requests rejected because a signature or JWT did not verify, by reason.",
		}, []string{"reason"}),
		signalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricSignalSeconds,
			Help:    "Time from a verified request to Temporal's answer on its signal (lookups included).",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 13), // 2 ms to about 8 s, past the call timeout
		}),
		signalLimit: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricSignalLimit,
			Help: "Signals Temporal refused because the workflow reached its signal limit; any is worth an alert.",
		}),
	}
	for _, c := range []prometheus.Collector{requests, m.verifyFailed, m.signalSeconds, m.signalLimit} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("bridge: register metrics: %w", err)
		}
	}
	for r := range numRoutes {
		for o := range numOutcomes {
			m.requests[r][o] = requests.WithLabelValues(routePaths[r], outcome(o).String())
		}
	}
	return m, nil
}

// registerKeyMetrics registers the key source's own metrics (JWKSKeys': keys loaded, refresh failures, last
// success) when it has any. A key source shared by two bridges on one registry is registered once.
func registerKeyMetrics(reg prometheus.Registerer, keys KeySource) error {
	c, ok := keys.(prometheus.Collector)
	if !ok {
		return nil
	}
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			return nil
		}
		return fmt.Errorf("bridge: register JWKS metrics: %w", err)
	}
	return nil
}
