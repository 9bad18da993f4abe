package connecttest

import (
	"net/http"
	"time"
)

// Stats is a snapshot of what the sandbox has seen and done.
type Stats struct {
	Requests            map[Endpoint]int64 `json:"requests"` // per endpoint, faulted and rejected included
	TokensIssued        int64              `json:"tokens_issued"`
	SessionsCreated     int64              `json:"sessions_created"`
	SessionsInvalidated int64              `json:"sessions_invalidated"` // replaced by a newer session of their reference
	SessionsByReference map[string]int64   `json:"sessions_by_reference"`
	Deliveries          int                `json:"deliveries"`        // webhook copies sent
	Delivered           int                `json:"delivered"`         // of those, answered 2xx
	DeliveryAttempts    int                `json:"delivery_attempts"` // redeliveries included
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	st := Stats{Requests: make(map[Endpoint]int64, len(endpoints))}
	for _, ep := range endpoints {
		st.Requests[ep] = s.Count(ep)
	}
	s.state.mu.Lock()
	st.TokensIssued = s.state.tokensIssued
	st.SessionsCreated = int64(len(s.state.sessions))
	st.SessionsInvalidated = s.state.invalidated
	st.SessionsByReference = make(map[string]int64, len(s.state.createdByRef))
	for ref, n := range s.state.createdByRef {
		st.SessionsByReference[ref] = n
	}
	s.state.mu.Unlock()
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	st.Deliveries = len(s.hooks.deliveries)
	for _, d := range s.hooks.deliveries {
		st.DeliveryAttempts += len(d.Attempts)
		if d.Delivered {
			st.Delivered++
		}
	}
	return st
}

// playRequest is the body of POST /sandbox/sessions/{id}/play.
type playRequest struct {
	Outcome       Outcome `json:"outcome"`
	Duplicates    int     `json:"duplicates"`
	Shuffle       bool    `json:"shuffle"`
	Late          bool    `json:"late"`
	DelayMS       int64   `json:"delay_ms"`
	Seed          uint64  `json:"seed"`
	FailureReason string  `json:"failure_reason"`
}

// faultRequest is the body of POST /sandbox/faults.
type faultRequest struct {
	Endpoint     Endpoint `json:"endpoint"`
	Status       int      `json:"status"`
	RetryAfterMS int64    `json:"retry_after_ms"`
	LatencyMS    int64    `json:"latency_ms"`
	Drop         bool     `json:"drop"`
	Times        int      `json:"times"`
	Rate         float64  `json:"rate"`
	Seed         uint64   `json:"seed"`
}

func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sandbox/sessions", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, s.Sessions())
	})
	mux.HandleFunc("GET /sandbox/deliveries", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, s.Deliveries())
	})
	mux.HandleFunc("GET /sandbox/stats", func(w http.ResponseWriter, _ *http.Request) {
		s.writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /sandbox/sessions/{id}/play", s.handlePlay)
	mux.HandleFunc("POST /sandbox/faults", s.handleFault)
	mux.HandleFunc("DELETE /sandbox/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handlePlay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req playRequest
	if _, err := readJSON(w, r, &req); err != nil {
		s.connectError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	p := Play{Outcome: req.Outcome, Duplicates: req.Duplicates, Shuffle: req.Shuffle, Late: req.Late,
		Delay: time.Duration(req.DelayMS) * time.Millisecond, Seed: req.Seed, FailureReason: req.FailureReason}
	if err := p.validate(); err != nil {
		s.connectError(w, http.StatusBadRequest, "invalid_field", err.Error())
		return
	}
	info, ok := s.Session(id)
	if !ok {
		s.connectError(w, http.StatusNotFound, "unknown_session", "no session with this id")
		return
	}
	if info.Invalidated() {
		s.connectError(w, http.StatusConflict, "session_invalidated", "session "+id+" was invalidated by the newer session "+info.ReplacedBy+" for the same reference_id")
		return
	}
	s.startPlay(id, p, 0)
	s.writeJSON(w, http.StatusAccepted, map[string]string{"session_id": id, "status": "playing"})
}

func (s *Server) handleFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	if _, err := readJSON(w, r, &req); err != nil {
		s.connectError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	f := Fault{Status: req.Status, RetryAfter: time.Duration(req.RetryAfterMS) * time.Millisecond,
		Latency: time.Duration(req.LatencyMS) * time.Millisecond, Drop: req.Drop, Times: req.Times, Rate: req.Rate, Seed: req.Seed}
	if err := s.Fail(req.Endpoint, f); err != nil {
		s.connectError(w, http.StatusBadRequest, "invalid_field", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
