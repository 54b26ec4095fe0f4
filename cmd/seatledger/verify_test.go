package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/benchdata"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/rebuild"
)

// slowStreams makes every ReadStream (a tenant's fold) take delay.
type slowStreams struct {
	eventstore.Store
	delay time.Duration
}

func (s slowStreams) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.RecordedEvent, error) {
	time.Sleep(s.delay)
	return s.Store.ReadStream(ctx, stream, from, limit)
}

// TestVerifyOutlivesTheWriteTimeout: POST /v1/projections/verify on a
// server whose write timeout is shorter than the verify still answers the
// report, streamed with progress (and so seatledger verify) or not.
func TestVerifyOutlivesTheWriteTimeout(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const tenants = 6
	for i := range tenants {
		if err := benchdata.WriteLongTenant(ctx, store, fmt.Sprintf("t%d", i), 20, 3); err != nil {
			t.Fatal(err)
		}
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	if _, err := rebuild.Replay(ctx, rebuild.ReplayConfig{Store: store, Redis: rdb, KeepOld: true, NewTail: replayTail}); err != nil {
		t.Fatal(err)
	}
	// Six folds of 150 ms: the verify takes about 0.9 s, thrice the timeout.
	slow := slowStreams{Store: store, delay: 150 * time.Millisecond}
	d := &serveDeps{Store: slow, Redis: rdb, Logger: slog.New(slog.DiscardHandler),
		Decider: domain.NewDecider(domain.DefaultCatalog(), domain.DefaultPolicy())}
	mgr, err := projections.NewManager(projections.Config{Store: slow, Redis: rdb}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { verifyProgressInterval = d }(verifyProgressInterval)
	verifyProgressInterval = 100 * time.Millisecond
	const operator = "operator-token-for-the-test"
	r := api.New(api.Config{
		Commands:      commands.New(commands.Config{Store: slow, Decider: d.Decider}),
		Decider:       d.Decider,
		OperatorToken: operator,
		Logger:        d.Logger,
		ReadModels:    &readModelAdmin{d: d, mgr: mgr},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, WriteTimeout: 300 * time.Millisecond}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	post := func(accept string) (*http.Response, []byte, time.Duration) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/projections/verify", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		req.Header.Set("Authorization", "Bearer "+operator)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST (Accept %q): %v", accept, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("POST (Accept %q): reading the answer: %v", accept, err)
		}
		return resp, b, time.Since(start)
	}
	type report struct {
		Tenants     int               `json:"tenants"`
		Keys        int               `json:"keys"`
		Differences []json.RawMessage `json:"differences"`
	}

	// The report alone, after the write timeout.
	resp, body, took := post("")
	var rep report
	if resp.StatusCode != 200 || json.Unmarshal(body, &rep) != nil || rep.Tenants != tenants || rep.Keys == 0 || len(rep.Differences) != 0 {
		t.Fatalf("plain answer after %v: %d %s", took, resp.StatusCode, body)
	}
	if took < 3*srv.WriteTimeout/2 {
		t.Fatalf("verify took %v: not longer than the write timeout %v, the test proves nothing", took, srv.WriteTimeout)
	}

	// Streamed: progress lines, then the report.
	resp, body, _ = post("application/x-ndjson")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("streamed answer: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var progress []rebuild.VerifyProgress
	var result *report
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var msg struct {
			Progress *rebuild.VerifyProgress `json:"progress"`
			Result   *report                 `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil || (msg.Progress == nil) == (msg.Result == nil) || result != nil {
			t.Fatalf("line %q of %s", sc.Text(), body)
		}
		if msg.Progress != nil {
			progress = append(progress, *msg.Progress)
		}
		result = msg.Result
	}
	if result == nil || result.Tenants != tenants || len(result.Differences) != 0 || len(progress) == 0 {
		t.Fatalf("streamed answer: %s", body)
	}
	last := progress[len(progress)-1]
	if last.Phase != rebuild.VerifyPhaseDone || last.Tenants != tenants || last.Total != tenants {
		t.Fatalf("last progress line %+v", last)
	}
	if len(progress) < 2 {
		t.Errorf("one progress line in a verify of about a second: %s", body)
	}

	// seatledger verify: progress on stderr (not a terminal: a line a
	// phase), the report on stdout.
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"verify", "--server", base, "--token", operator}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), fmt.Sprintf("verified %d tenants", tenants)) || !strings.Contains(out.String(), "0 differences") {
		t.Fatalf("seatledger verify: %d %q %q", code, out.String(), errOut.String())
	}
	for _, want := range []string{"verify: tenants ", fmt.Sprintf("verify: done: %d tenants", tenants)} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q: %q", want, errOut.String())
		}
	}
}

// A difference makes seatledger verify print it and exit 1, and an answer
// cut short (no report) is an error, not a clean verify.
func TestVerifyCLIReportsDifferencesAndCutAnswers(t *testing.T) {
	answer := ""
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, answer)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	verify := func() (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"verify", "--server", "http://" + ln.Addr().String(), "--token", "x"}, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	answer = `{"progress":{"phase":"tenants","tenants":1,"total":2,"tenantsPerSec":10,"eta":100000000}}` + "\n" +
		`{"result":{"tenants":2,"keys":5,"differences":[{"tenant":"a","key":"sl:{a}:users","field":"u1","want":"x","got":""}]}}` + "\n"
	code, out, errOut := verify()
	if code != 1 || !strings.Contains(out, "DIFF tenant=a key=sl:{a}:users field=u1") || !strings.Contains(out, "verified 2 tenants, 5 keys: 1 differences") ||
		!strings.Contains(errOut, "verify: tenants 1 of 2 (50%)  10 tenants/s  ETA 0s") {
		t.Errorf("a difference: %d %q %q", code, out, errOut)
	}
	answer = `{"tenants":3,"keys":7,"differences":[]}` // a server that does not stream
	if code, out, errOut := verify(); code != 0 || !strings.Contains(out, "verified 3 tenants, 7 keys: 0 differences") {
		t.Errorf("the report alone: %d %q %q", code, out, errOut)
	}
	answer = `{"progress":{"phase":"tenants","tenants":1,"total":2}}` + "\n"
	if code, out, errOut := verify(); code != 1 || !strings.Contains(errOut, "without a report") {
		t.Errorf("an answer without a report: %d %q %q", code, out, errOut)
	}
	answer = `{"error":"verify: read the log: boom"}` + "\n"
	if code, out, errOut := verify(); code != 1 || !strings.Contains(errOut, "boom") {
		t.Errorf("an error line: %d %q %q", code, out, errOut)
	}
}
