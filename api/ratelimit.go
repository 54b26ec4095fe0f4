package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/seatledger/seatledger/domain"
)

// CodeRateLimited is the code of a 429 answer.
const CodeRateLimited domain.ErrorCode = "rate_limited"

// RateLimit bounds the requests of one token. The key is the token's tenant
// and subject (tid/sub): every token of the same user of the same tenant
// shares one budget, whatever path it calls. The operator token is not
// limited unless Operator is set: it is one trusted automation, and
// throttling it would throttle tenant creation and operator tools.
// Requests without a valid token are refused (401) before the limiter.
type RateLimit struct {
	// PerSecond is the sustained rate per token; 0 disables the limiter.
	PerSecond float64
	// Burst is how many requests a token may send at once (default
	// max(1, 2×PerSecond)).
	Burst int
	// Operator limits the operator token too (one shared budget).
	Operator bool
}

// Enabled reports whether the limiter is on.
func (r RateLimit) Enabled() bool { return r.PerSecond > 0 }

func (r RateLimit) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(1, int(math.Ceil(2*r.PerSecond)))
}

// limiterIdle is how long a token's limiter is kept without requests.
const limiterIdle = 10 * time.Minute

type rateLimiter struct {
	cfg   RateLimit
	clock func() time.Time

	mu        sync.Mutex
	limiters  map[string]*limiterEntry
	lastSweep time.Time
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(cfg RateLimit, clock func() time.Time) *rateLimiter {
	return &rateLimiter{cfg: cfg, clock: clock, limiters: map[string]*limiterEntry{}, lastSweep: clock()}
}

// reserve takes one request from key's budget; it returns 0 when the
// request may go, else how long the caller should wait.
func (l *rateLimiter) reserve(key string) time.Duration {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > limiterIdle {
		for k, e := range l.limiters {
			if now.Sub(e.seen) > limiterIdle {
				delete(l.limiters, k)
			}
		}
		l.lastSweep = now
	}
	e := l.limiters[key]
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.burst())}
		l.limiters[key] = e
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		// Refused requests do not consume the budget.
		r.CancelAt(now)
		return d
	}
	return 0
}

// rateLimit is the middleware after authenticate: 429 with Retry-After when
// the token's budget is spent.
func (s *Server) rateLimit(c *gin.Context) {
	if s.limiter == nil {
		c.Next()
		return
	}
	st := stateFor(c)
	a := st.actor
	var key string
	switch {
	case a.Operator && !s.cfg.RateLimit.Operator:
		c.Next()
		return
	case a.Operator:
		key = "operator"
	default:
		key = st.tokenTID + "/" + a.UserID
	}
	if d := s.limiter.reserve(key); d > 0 {
		secs := int(math.Ceil(d.Seconds()))
		h := http.Header{}
		h.Set("Retry-After", strconv.Itoa(max(1, secs)))
		e := httpErrorf(http.StatusTooManyRequests, CodeRateLimited, "", "too many requests for this token; retry after %d s", max(1, secs))
		e.Header = h
		WriteProblem(c, e)
		return
	}
	c.Next()
}
