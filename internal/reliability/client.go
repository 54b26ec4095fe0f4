package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
)

// Client sends commands and queries over HTTP, every command with a fresh
// Idempotency-Key, and records what it was told in Ledger and how long it
// took in Stats.
type Client struct {
	Base   string // http://host:port
	HTTP   *http.Client
	Ledger *Ledger
	Stats  *Stats
}

// NewClient returns a client of base with a pooled transport.
func NewClient(base string, l *Ledger) *Client {
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second}
	return &Client{Base: base, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}, Ledger: l, Stats: &Stats{}}
}

// NewKey returns a random Idempotency-Key.
func NewKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Result is an HTTP answer; Status 0 means no answer (transport error).
type Result struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error
}

// Answer decodes a command answer.
func (r Result) Answer() (api.CommandAnswer, error) {
	var a api.CommandAnswer
	err := json.Unmarshal(r.Body, &a)
	return a, err
}

// Code returns the problem code of an error answer.
func (r Result) Code() string {
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.Body, &p)
	return p.Code
}

// Command sends a command of actor (the token's subject, or the operator)
// on tenant with a new Idempotency-Key and records it.
func (c *Client) Command(ctx context.Context, tenant string, actor domain.Actor, token, method, path string, body any) Result {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return Result{Err: err}
		}
	}
	key := NewKey()
	e := Entry{CommandID: api.CommandID(tenant, actor, key), Tenant: tenant, Actor: actor, Key: key,
		Method: method, Path: path, Body: b, Token: token}
	return c.Send(ctx, e)
}

// Send sends (or resends) the command of e with its Idempotency-Key and
// records the answer.
func (c *Client) Send(ctx context.Context, e Entry) Result {
	r := c.do(ctx, e.Method, e.Path, e.Token, e.Body, e.Key)
	if c.Ledger != nil {
		c.Ledger.record(e, r.Status, r.Body)
	}
	return r
}

// Query sends a GET.
func (c *Client) Query(ctx context.Context, token, path string) Result {
	return c.do(ctx, http.MethodGet, path, token, nil, "")
}

func (c *Client) do(ctx context.Context, method, path, token string, body []byte, key string) Result {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return Result{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set(api.HeaderIdempotencyKey, key)
	}
	start := time.Now()
	res, err := c.HTTP.Do(req)
	if err != nil {
		c.Stats.add(time.Since(start), 0)
		return Result{Err: err}
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		c.Stats.add(time.Since(start), 0)
		return Result{Err: err}
	}
	c.Stats.add(time.Since(start), res.StatusCode)
	return Result{Status: res.StatusCode, Header: res.Header, Body: rb}
}

// Stats collects request latencies and outcomes.
type Stats struct {
	mu        sync.Mutex
	latencies []time.Duration
	n, errs   atomic.Int64 // errs: 5xx or no answer
	by        [6]atomic.Int64
}

func (s *Stats) add(d time.Duration, status int) {
	s.n.Add(1)
	if status == 0 || status >= 500 {
		s.errs.Add(1)
	}
	if status/100 < len(s.by) {
		s.by[status/100].Add(1)
	}
	s.mu.Lock()
	s.latencies = append(s.latencies, d)
	s.mu.Unlock()
}

// Summary is what a scenario reports of its requests.
type Summary struct {
	Requests  int64
	P50, P99  time.Duration
	ErrorRate float64 // 5xx or no answer
	By        map[string]int64
}

// Summary computes the percentiles.
func (s *Stats) Summary() Summary {
	s.mu.Lock()
	l := append([]time.Duration(nil), s.latencies...)
	s.mu.Unlock()
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	out := Summary{Requests: s.n.Load(), By: map[string]int64{}}
	if len(l) > 0 {
		out.P50 = l[len(l)*50/100]
		out.P99 = l[min(len(l)-1, len(l)*99/100)]
		out.ErrorRate = float64(s.errs.Load()) / float64(len(l))
	}
	for i := range s.by {
		if n := s.by[i].Load(); n > 0 {
			out.By[string(rune('0'+i))+"xx"] = n
		}
	}
	return out
}
