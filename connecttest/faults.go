package connecttest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint names a sandbox API for fault injection and request counting.
type Endpoint string

const (
	EndpointToken      Endpoint = "token"      // POST /api/v1/oauth/token
	EndpointSessions   Endpoint = "sessions"   // POST /api/v1/sessions and /api/v1/v1/sessions
	EndpointJWKS       Endpoint = "jwks"       // GET /api/v1/jwks
	EndpointOnboarding Endpoint = "onboarding" // POST /participants/onboarding_token
	EndpointMovements  Endpoint = "movements"  // GET /movements
)

// endpoints fixes each endpoint's slot in the counter array.
var endpoints = [...]Endpoint{EndpointToken, EndpointSessions, EndpointJWKS, EndpointOnboarding, EndpointMovements}

func (e Endpoint) index() (int, bool) {
	for i, have := range endpoints {
		if have == e {
			return i, true
		}
	}
	return 0, false
}

// Fault is what the sandbox does to requests of one endpoint instead of (or before) answering them.
type Fault struct {
	// Status, when non-zero, answers with this status and the endpoint's error body instead of serving.
	Status int
	// RetryAfter sets the Retry-After header (whole seconds, rounded up) on a Status answer.
	RetryAfter time.Duration
	// Latency delays the request; with neither Status nor Drop the request is then served normally.
	Latency time.Duration
	// Drop hijacks the connection and closes it without an answer.
	Drop bool
	// Times is how many requests the fault hits before it is removed; 0 means until ClearFaults.
	Times int
	// Rate is the probability (0..1] that a request is hit, drawn from Seed; 0 means every request.
	Rate float64
	// Seed makes a Rate fault's draws reproducible.
	Seed uint64
}

func (f Fault) validate() error {
	switch {
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("connecttest: fault status %d is not an HTTP status", f.Status)
	case f.Status != 0 && f.Status < 400:
		return fmt.Errorf("connecttest: fault status %d is not an error status", f.Status)
	case f.Status != 0 && f.Drop:
		return errors.New("connecttest: fault cannot both answer a status and drop the connection")
	case f.Status == 0 && !f.Drop && f.Latency <= 0:
		return errors.New("connecttest: fault needs a status, drop or latency")
	case f.RetryAfter < 0, f.Latency < 0:
		return errors.New("connecttest: fault durations must not be negative")
	case f.Times < 0:
		return fmt.Errorf("connecttest: fault times %d is negative", f.Times)
	case math.IsNaN(f.Rate) || f.Rate < 0 || f.Rate > 1:
		return fmt.Errorf("connecttest: fault rate %v is outside 0..1", f.Rate)
	}
	return nil
}

// armedFault is a Fault in the table with its remaining hits and its random source.
type armedFault struct {
	Fault
	left int
	rng  *rand.Rand
}

// faultTable holds the armed faults per endpoint, first armed first tried.
type faultTable struct {
	mu         sync.Mutex
	byEndpoint map[Endpoint][]*armedFault
}

// take returns the fault that hits this request, if any, and uses up one of its Times.
func (t *faultTable) take(ep Endpoint) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.byEndpoint[ep]
	for i, f := range list {
		if f.Rate > 0 && f.Rate < 1 && f.rng.Float64() >= f.Rate {
			continue
		}
		if f.Times > 0 {
			f.left--
			if f.left == 0 {
				t.byEndpoint[ep] = append(list[:i:i], list[i+1:]...)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}

// Fail arms a fault on an endpoint. Faults stack: each request takes the first armed fault that hits it.
func (s *Server) Fail(ep Endpoint, f Fault) error {
	if _, ok := ep.index(); !ok {
		return fmt.Errorf("connecttest: unknown endpoint %q", ep)
	}
	if err := f.validate(); err != nil {
		return err
	}
	armed := &armedFault{Fault: f, left: f.Times, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	if s.faults.byEndpoint == nil {
		s.faults.byEndpoint = make(map[Endpoint][]*armedFault)
	}
	s.faults.byEndpoint[ep] = append(s.faults.byEndpoint[ep], armed)
	return nil
}

// ClearFaults disarms every fault on every endpoint.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.byEndpoint = nil
}

// Count is how many requests an endpoint received, faulted and rejected ones included.
func (s *Server) Count(ep Endpoint) int64 {
	i, ok := ep.index()
	if !ok {
		return 0
	}
	return s.requests[i].Load()
}

// errorWriter writes an endpoint's error body in that API's own shape.
type errorWriter func(w http.ResponseWriter, status int, code, message string)

// endpoint wraps h with the request counter and the fault table for ep.
func (s *Server) endpoint(ep Endpoint, fail errorWriter, h http.HandlerFunc) http.HandlerFunc {
	i, ok := ep.index()
	if !ok {
		panic("connecttest: endpoint " + string(ep) + " has no counter")
	}
	counter := &s.requests[i]
	return func(w http.ResponseWriter, r *http.Request) {
		counter.Add(1)
		f, hit := s.faults.take(ep)
		if !hit {
			h(w, r)
			return
		}
		if f.Latency > 0 && !sleep(r.Context(), f.Latency) {
			return
		}
		switch {
		case f.Drop:
			s.dropConnection(w)
		case f.Status != 0:
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(f.RetryAfter.Seconds())), 10))
			}
			fail(w, f.Status, "injected_fault", fmt.Sprintf("sandbox fault: %s", http.StatusText(f.Status)))
		default:
			h(w, r)
		}
	}
}

// dropConnection closes the client's connection without writing an answer.
func (s *Server) dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Only HTTP/2 connections cannot be hijacked; aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	if err := conn.Close(); err != nil {
		s.log.Debug("drop connection", "err", err)
	}
}

// counters is the request count per endpoint, indexed like endpoints.
type counters [len(endpoints)]atomic.Int64
