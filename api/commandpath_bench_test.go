package api_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/cputime"
	"github.com/seatledger/seatledger/internal/textlog"
)

// discardResponse is an http.ResponseWriter that keeps nothing but the
// status: the benchmark measures the server, not a recorder.
type discardResponse struct {
	h    http.Header
	code int
}

func (w *discardResponse) Header() http.Header         { return w.h }
func (w *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardResponse) WriteHeader(code int)        { w.code = code }

// BenchmarkCommandPath sends the commands of `seatledger bench` (assign,
// then unassign, one user of a tenant's eight, 16 tenants) through the
// whole router: middlewares, the request log line (text, discarded, as
// serve logs by default), the command handler and an embedded store
// without fsync. cpu-ns/op is the process's CPU time (the store's commit
// goroutine included) over the timed loop.
func BenchmarkCommandPath(b *testing.B) {
	st, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler), CacheSize: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	decider := domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())
	reg := prometheus.NewRegistry()
	metrics := api.NewMetrics(reg)
	cmds := commands.New(commands.Config{Store: st, Snapshots: st, Decider: decider, Observer: metrics})
	defer cmds.Close()
	srv := api.New(api.Config{
		Commands: cmds, Decider: decider, JWTSecret: testSecret, OperatorToken: testOperator,
		Logger: slog.New(textlog.New(io.Discard, nil)).With("component", "http"), Metrics: metrics, Gatherer: reg,
	})
	send := func(method, path, tok string, body []byte) int {
		r, _ := http.NewRequest(method, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		r.RemoteAddr = "127.0.0.1:40000"
		w := &discardResponse{h: http.Header{}, code: 200}
		srv.ServeHTTP(w, r)
		return w.code
	}
	const tenants, users = 16, 8
	toks := make([]string, tenants)
	for i := range tenants {
		t := fmt.Sprint("bench-", i)
		tok, err := api.NewToken(testSecret, t, "admin", 24*time.Hour, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
		steps := [][3]string{
			{"/v1/tenants", testOperator, `{"id":"` + t + `","name":"Bench","globalAdmin":{"id":"admin","userPrincipalName":"admin@bench.example","usageLocation":"US"}}`},
			{"/v1/tenants/" + t + "/subscriptions", tok, `{"id":"s","skuId":"SPB","quantity":1000}`},
		}
		for u := range users {
			steps = append(steps, [3]string{"/v1/tenants/" + t + "/users", tok, fmt.Sprintf(`{"id":"u%d","userPrincipalName":"u%d@bench.example","usageLocation":"US"}`, u, u)})
		}
		for _, s := range steps {
			if code := send("POST", s[0], s[1], []byte(s[2])); code != http.StatusCreated {
				b.Fatalf("set-up %s: %d", s[0], code)
			}
		}
	}
	paths := make([][2]string, tenants)
	for t := range paths {
		paths[t] = [2]string{fmt.Sprintf("/v1/tenants/bench-%d/licenses/SPB/assign", t), fmt.Sprintf("/v1/tenants/bench-%d/licenses/SPB/unassign", t)}
	}
	bodies := make([][]byte, users)
	for u := range bodies {
		bodies[u] = fmt.Appendf(nil, `{"users":["u%d"]}`, u)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; b.Loop(); i++ {
		k := i / 2 // each (tenant, user) assigned, then unassigned
		t, u := k%tenants, (k/tenants)%users
		if code := send("POST", paths[t][i%2], toks[t], bodies[u]); code != http.StatusOK {
			b.Fatalf("command %d: status %d", i, code)
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}
