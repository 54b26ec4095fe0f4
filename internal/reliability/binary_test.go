package reliability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/reliability"
	"github.com/seatledger/seatledger/rebuild"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	binErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/seatledger once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "seatledger-reliability-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "seatledger")
		var out []byte
		out, binErr = exec.Command("go", "build", "-o", binPath, "github.com/seatledger/seatledger/cmd/seatledger").CombinedOutput()
		if binErr != nil {
			binErr = fmt.Errorf("go build: %v\n%s", binErr, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a running `seatledger serve`.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	done   chan error
}

// startBinary runs `seatledger serve` on dir with redisURL ("" for the
// in-process Redis) and waits until it answers.
func startBinary(t testing.TB, dir, redisURL string, extraEnv ...string) *proc {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(os.Environ(), "SEATLEDGER_ADDR=127.0.0.1:"+strconv.Itoa(port), "SEATLEDGER_DATA_DIR="+dir,
		"SEATLEDGER_JWT_SECRET="+secret, "SEATLEDGER_OPERATOR_TOKEN="+operator, "SEATLEDGER_REDIS_URL="+redisURL,
		"SEATLEDGER_NODE_ID=reliability", "SEATLEDGER_SHUTDOWN_TIMEOUT=5s")
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &proc{t: t, cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port), stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = io.Discard
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(p.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("seatledger serve exited: %v\n%s", err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("seatledger serve did not answer in 60 s\n%s", p.stderr.String())
		}
	}
}

// kill sends SIGKILL and waits for the process (idempotent).
func (p *proc) kill() { p.signal(syscall.SIGKILL) }

// term stops the process gracefully.
func (p *proc) term() { p.signal(syscall.SIGTERM) }

func (p *proc) signal(sig syscall.Signal) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Errorf("seatledger did not stop on %v", sig)
	}
}

// verify asks the server to compare its read models with the log.
func (p *proc) verify(t testing.TB) rebuild.Report {
	t.Helper()
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequest("POST", p.base+"/v1/projections/verify", nil)
		req.Header.Set("Authorization", "Bearer "+operator)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			var rep rebuild.Report
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
		// A 503 is the server saying "not now" (a store or a Redis that
		// just came back, its connections being redialled): wait as it
		// asks, for up to ten seconds, rather than hammer it four times
		// within a millisecond.
		if res.StatusCode != http.StatusServiceUnavailable || attempt >= 40 {
			t.Fatalf("verify: %d %s", res.StatusCode, b)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// settle retries every command in doubt with its Idempotency-Key until it is
// acknowledged or refused.
func settle(t testing.TB, c *reliability.Client, l *reliability.Ledger) int {
	t.Helper()
	n := 0
	for attempt := 0; attempt < 5; attempt++ {
		doubt := l.InDoubt()
		if len(doubt) == 0 {
			return n
		}
		for _, e := range doubt {
			c.Send(context.Background(), e)
			n++
		}
	}
	if d := l.InDoubt(); len(d) > 0 {
		t.Fatalf("%d commands still in doubt after 5 retries, e.g. %s %s: %d", len(d), d[0].Method, d[0].Path, d[0].Status)
	}
	return n
}

// replayAcked resends up to n acknowledged commands: each must answer the
// first answer again (the ledger compares version and events).
func replayAcked(t testing.TB, c *reliability.Client, l *reliability.Ledger, n int, rng *rand.Rand) int {
	t.Helper()
	var acked []reliability.Entry
	for _, e := range l.Entries() {
		if e.Outcome == reliability.Acked {
			acked = append(acked, e)
		}
	}
	rng.Shuffle(len(acked), func(i, j int) { acked[i], acked[j] = acked[j], acked[i] })
	replayed := 0
	for _, e := range acked[:min(n, len(acked))] {
		r := c.Send(context.Background(), e)
		if len(e.EventIDs) == 0 && !strict {
			continue // a no-op: see reliability.NoopIdempotency (the ledger notes it)
		}
		if r.Status/100 != 2 {
			t.Errorf("replay of acknowledged %s %s: %d %s", e.Method, e.Path, r.Status, r.Body)
			continue
		}
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay of %s %s without Idempotent-Replayed", e.Method, e.Path)
		}
		replayed++
	}
	return replayed
}

// workload runs commands (and some queries) on tenants from workers
// goroutines until stop is set or a worker's request gets no answer.
func workload(c *reliability.Client, tenants []string, users, workers int, seed uint64, stop *atomic.Bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			ctx := context.Background()
			for !stop.Load() {
				tn := tenants[rng.IntN(len(tenants))]
				tk, _ := tokCache.get(tn)
				u := fmt.Sprintf("u%d", rng.IntN(users))
				base := "/v1/tenants/" + tn
				var r reliability.Result
				switch op := rng.IntN(10); {
				case op < 4:
					r = c.Command(ctx, tn, admin(tn), tk, "POST", base+"/licenses/SPB/assign", map[string]any{"users": []string{u}})
				case op < 6:
					r = c.Command(ctx, tn, admin(tn), tk, "POST", base+"/licenses/SPB/unassign", map[string]any{"users": []string{u}})
				case op < 7:
					r = c.Command(ctx, tn, admin(tn), tk, "POST", base+"/users/manageLicenses",
						map[string]any{"users": []string{"u0", u}, "mode": "AssignMore", "addLicenses": []map[string]any{{"skuId": "SPB"}}})
				case op < 8:
					id := fmt.Sprintf("w%d-%d-%d", seed, w, next.Add(1))
					r = c.Command(ctx, tn, admin(tn), tk, "POST", base+"/users", map[string]any{"id": id, "userPrincipalName": id + "@" + tn + ".example"})
				default:
					r = c.Query(ctx, tk, base+"/licenses")
				}
				if r.Status == 0 {
					return
				}
			}
		}()
	}
	return &wg
}

type tokens struct {
	mu sync.Mutex
	m  map[string]string
}

var tokCache = &tokens{m: map[string]string{}}

func (c *tokens) get(tenant string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[tenant]; ok {
		return s, nil
	}
	s, err := newTok(tenant)
	if err == nil {
		c.m[tenant] = s
	}
	return s, err
}

// checkDir opens a stopped server's data directory and runs the log
// invariants against the ledger.
func checkDir(t testing.TB, dir string, l *reliability.Ledger) reliability.Report {
	t.Helper()
	st, err := embedded.Open(dir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := reliability.Check(context.Background(), st, l, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	report(t, rep)
	return rep
}

// TestCrash: the real binary under load is SIGKILLed at random moments (3
// rounds; soak: 10) and restarted on its data directory. Commands whose
// connection dropped are retried with their Idempotency-Key; acknowledged
// commands resent with their key get their original answer; the read
// models (rebuilt at each start: in-process Redis) equal the fold; the log
// holds every acknowledged command exactly once and nothing else.
func TestCrash(t *testing.T) {
	skipShort(t, "SIGKILL rounds of the binary")
	rounds := pick(3, 10)
	const nTenants, users, workers = 20, 6, 16
	dir := t.TempDir()
	l := reliability.NewLedger()
	p := startBinary(t, dir, "")
	c := reliability.NewClient(p.base, l)
	var tenants []string
	for i := range nTenants {
		tn := fmt.Sprintf("crash%02d", i)
		tenants = append(tenants, tn)
		setupTenant(t, c, tn, users, "SPB", 4)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	retried, replayed := 0, 0
	for round := range rounds {
		var stop atomic.Bool
		wg := workload(c, tenants, users, workers, uint64(round), &stop)
		d := time.Duration(200+rng.IntN(1300)) * time.Millisecond
		time.Sleep(d)
		p.kill()
		stop.Store(true)
		wg.Wait()
		doubt := len(l.InDoubt())
		p = startBinary(t, dir, "")
		c = reliability.NewClient(p.base, l)
		retried += settle(t, c, l)
		replayed += replayAcked(t, c, l, 40, rng)
		t.Logf("round %d: SIGKILL after %s, %d commands in doubt, settled by retry", round+1, d, doubt)
	}
	rep := p.verify(t)
	if !rep.OK() {
		t.Errorf("read models differ from the fold after %d crashes: %v", rounds, rep.Differences)
	}
	t.Logf("read models: %d tenants, %d keys, %d differences", rep.Tenants, rep.Keys, len(rep.Differences))
	p.term()
	checkDir(t, dir, l)
	t.Logf("crash: %d rounds, %d in-doubt retries, %d acknowledged replays", rounds, retried, replayed)
}
