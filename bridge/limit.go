package bridge

import (
	"sync"

	"golang.org/x/time/rate"
)

// maxLimitedSessions bounds the per-session limiters kept: past it the oldest half is forgotten, so a stream of
// sessions cannot grow the map (a forgotten session starts again with a full bucket).
const maxLimitedSessions = 1 << 14

// sessionLimiter is a token bucket per SDK session; safe for concurrent use.
type sessionLimiter struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	byID  map[string]*rate.Limiter
	order []string // insertion order, for forgetting the oldest
}

func newSessionLimiter(perSecond float64, burst int) *sessionLimiter {
	return &sessionLimiter{rate: rate.Limit(perSecond), burst: burst, byID: map[string]*rate.Limiter{}}
}

// allow takes one token from the session's bucket and reports whether there was one.
func (l *sessionLimiter) allow(sessionID string) bool {
	l.mu.Lock()
	lim, ok := l.byID[sessionID]
	if !ok {
		if len(l.order) >= maxLimitedSessions {
			for _, id := range l.order[:len(l.order)/2] {
				delete(l.byID, id)
			}
			l.order = append(l.order[:0], l.order[len(l.order)/2:]...)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.byID[sessionID] = lim
		l.order = append(l.order, sessionID)
	}
	l.mu.Unlock()
	return lim.Allow()
}
