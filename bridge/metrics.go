package bridge

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; every one is prefixed connectflow_bridge_.
const (
	MetricRequests             = "connectflow_bridge_requests_total"
	MetricVerificationFailures = "connectflow_bridge_verification_failures_total"
	MetricSignalSeconds        = "connectflow_bridge_signal_seconds"
)

// metrics are the bridge's Prometheus series. Request counters are resolved once per route and outcome, so
// counting a request does not hash label values.
type metrics struct {
	requests      [numRoutes][numOutcomes]prometheus.Counter
	verifyFailed  *prometheus.CounterVec
	signalSeconds prometheus.Histogram
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
	}
	for _, c := range []prometheus.Collector{requests, m.verifyFailed, m.signalSeconds} {
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
