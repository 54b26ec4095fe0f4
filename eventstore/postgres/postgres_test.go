package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/storetest"
)

// urlEnv overrides the server the tests use.
const urlEnv = "SEATLEDGER_POSTGRES_URL"

const defaultTestURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// prefixEnv sets the prefix of the tests' schema names (default "slt_"),
// for a database whose users may only touch schemas of a given prefix.
const prefixEnv = "SEATLEDGER_POSTGRES_SCHEMA_PREFIX"

func schemaPrefix() string {
	if p := os.Getenv(prefixEnv); p != "" {
		return p
	}
	return "slt_"
}

func testURL() string {
	if u := os.Getenv(urlEnv); u != "" {
		return u
	}
	return defaultTestURL
}

var (
	reachOnce sync.Once
	reachErr  error
)

// requirePG skips the test when no PostgreSQL server answers.
func requirePG(tb testing.TB) string {
	tb.Helper()
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, testURL())
		if err != nil {
			reachErr = err
			return
		}
		defer c.Close(ctx)
		reachErr = c.Ping(ctx)
	})
	if reachErr != nil {
		tb.Skipf("PostgreSQL unreachable at %s (set %s): %v — postgres event store tests skipped", testURL(), urlEnv, reachErr)
	}
	return testURL()
}

// freshSchema returns a new schema name, dropped when the test ends.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := schemaPrefix() + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := DropSchema(ctx, testURL(), schema); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// writersEnv sets Options.Writers of the Stores that tests and
// benchmarks open with none (paired runs of Writers 1 and 2 from one
// binary; docs/BENCHMARKS.md).
const writersEnv = "SEATLEDGER_POSTGRES_WRITERS"

func openSchema(tb testing.TB, schema string, opts Options) *Store {
	tb.Helper()
	opts.Schema = schema
	if w, err := strconv.Atoi(os.Getenv(writersEnv)); err == nil && opts.Writers == 0 {
		opts.Writers = w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A per-schema application_name lets tests find the store's backends.
	s, err := OpenOptions(ctx, testURL()+"&application_name="+schema, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

type factory struct{}

func (factory) Open(t *testing.T) eventstore.Store {
	requirePG(t)
	return openSchema(t, freshSchema(t), Options{})
}

func (factory) Reopen(t *testing.T, old eventstore.Store) eventstore.Store {
	schema := old.(*Store).Schema()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	return openSchema(t, schema, Options{})
}

// OpenSecond opens another Store on old's schema, as a second node would
// (storetest.SecondOpener).
func (factory) OpenSecond(t *testing.T, old eventstore.Store) eventstore.Store {
	return openSchema(t, old.(*Store).Schema(), Options{})
}

func TestContract(t *testing.T) {
	requirePG(t)
	storetest.RunFactory(t, factory{})
}

func events(n int, typ string) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		id := uuid.NewString()
		evs[i] = eventstore.EventData{ID: id, Type: typ, Data: fmt.Appendf(nil, `{"i":%d, "id":%q}`, i, id)}
	}
	return evs
}

// follow reads n events from sub and checks that their positions are after
// `after` and strictly increasing.
func follow(t *testing.T, sub eventstore.Subscription, after eventstore.Position, n int) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([]eventstore.RecordedEvent, 0, n)
	last := after
	for len(out) < n {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d events: %v", len(out), n, err)
		}
		if e.Position <= last {
			t.Fatalf("subscription delivered position %d after %d (repeat or disorder)", e.Position, last)
		}
		last = e.Position
		out = append(out, e)
	}
	return out
}

// TestTwoStores shares one schema between two Stores with separate pools
// (as two processes would): concurrent appends to one stream with expected
// versions, and to other streams, while each store has a subscriber.
func TestTwoStores(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	a := openSchema(t, schema, Options{})
	defer a.Close()
	b := openSchema(t, schema, Options{})
	defer b.Close()
	ctx := t.Context()

	subA, err := a.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer subA.Close()
	subB, err := b.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()

	const hot = "tenant-hot"
	const perStore, each = 6, 10 // contenders per store, wins each
	type win struct {
		version uint64
		id      string
	}
	wins := make(chan win, 2*perStore*each)
	var noise [2]int
	var wg sync.WaitGroup
	for si, s := range []*Store{a, b} {
		for g := 0; g < perStore; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < each; {
					v, err := s.StreamVersion(ctx, hot)
					if err != nil {
						t.Error(err)
						return
					}
					e := events(1, "Hot")
					r, err := s.Append(ctx, hot, eventstore.Exactly(v), e)
					if errors.Is(err, eventstore.ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					if r.Version != v+1 {
						t.Errorf("appended after %d, result version %d", v, r.Version)
					}
					wins <- win{r.Version, e[0].ID}
					done++
				}
			}()
		}
		// Multi-event appends to other streams at the same time.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				evs := events(1+i%4, "Noise")
				if _, err := s.Append(ctx, fmt.Sprintf("tenant-noise-%d", si), eventstore.Any, evs); err != nil {
					t.Error(err)
					return
				}
				noise[si] += len(evs)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if t.Failed() {
		return
	}
	byVersion := map[uint64]string{}
	for w := range wins {
		if prev, dup := byVersion[w.version]; dup {
			t.Fatalf("version %d won twice (%s and %s)", w.version, prev, w.id)
		}
		byVersion[w.version] = w.id
	}
	n := 2 * perStore * each
	got, err := b.ReadStream(ctx, hot, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || len(byVersion) != n {
		t.Fatalf("stream has %d events, %d acknowledged, want %d", len(got), len(byVersion), n)
	}
	for i, e := range got {
		if e.Version != uint64(i+1) || byVersion[e.Version] != e.ID {
			t.Fatalf("event %d: version %d id %s, acknowledged %s", i, e.Version, e.ID, byVersion[e.Version])
		}
	}
	total := n + noise[0] + noise[1]
	all, err := a.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != total {
		t.Fatalf("ReadAll: %d events, want %d", len(all), total)
	}
	for name, sub := range map[string]eventstore.Subscription{"A": subA, "B": subB} {
		seen := follow(t, sub, eventstore.Start, total)
		for i := range seen {
			if seen[i].ID != all[i].ID || seen[i].Stream != all[i].Stream || seen[i].Version != all[i].Version {
				t.Fatalf("subscriber %s: event %d is %s %s@%d, ReadAll has %s %s@%d", name, i,
					seen[i].ID, seen[i].Stream, seen[i].Version, all[i].ID, all[i].Stream, all[i].Version)
			}
		}
	}
}

// TestProcesses runs writers in child processes (this test binary again)
// while this process subscribes: the subscriber sees every event once, at
// contiguous positions.
func TestProcesses(t *testing.T) {
	requirePG(t)
	if testing.Short() {
		t.Skip("short")
	}
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{})
	defer s.Close()
	ctx := t.Context()
	sub, err := s.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	const procs, appends = 3, 40
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+schema, helperNEnv+"="+strconv.Itoa(appends))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer process %d: %v\n%s", p, err, out)
			}
		}()
	}
	// This process writes too.
	for i := 0; i < appends; i++ {
		if _, err := s.Append(ctx, "tenant-parent", eventstore.Any, events(2, "Parent")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every writer appends to one shared stream with expected versions and
	// to its own stream: 2 + 1 events per round.
	total := 2*appends + procs*appends*3
	seen := follow(t, sub, eventstore.Start, total)
	all, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != total {
		t.Fatalf("ReadAll %d events, want %d", len(all), total)
	}
	for i := range all {
		if seen[i].ID != all[i].ID {
			t.Fatalf("event %d differs between subscription and ReadAll", i)
		}
	}
	shared, err := s.ReadStream(ctx, "tenant-shared", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != 2*procs*appends {
		t.Fatalf("shared stream has %d events, want %d", len(shared), 2*procs*appends)
	}
}

const (
	helperEnv  = "SEATLEDGER_PG_TEST_WRITER_SCHEMA"
	helperNEnv = "SEATLEDGER_PG_TEST_WRITER_N"
)

// TestHelperWriter is the child process of TestProcesses.
func TestHelperWriter(t *testing.T) {
	schema := os.Getenv(helperEnv)
	if schema == "" {
		t.Skip("helper process of TestProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv(helperNEnv))
	s := openSchema(t, schema, Options{})
	defer s.Close()
	ctx := t.Context()
	own := "tenant-proc-" + uuid.NewString()[:8]
	for i := 0; i < n; i++ {
		if _, err := s.Append(ctx, own, eventstore.Exactly(uint64(i)), events(1, "Own")); err != nil {
			t.Fatal(err)
		}
		for {
			v, err := s.StreamVersion(ctx, "tenant-shared")
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Append(ctx, "tenant-shared", eventstore.Exactly(v), events(2, "Shared"))
			if errors.Is(err, eventstore.ErrConflict) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
}

// TestLostNotifications: with no notification ever arriving, a caught-up
// subscription still sees new events through its poll. (The subscriber is
// on another Store: a Store wakes its own subscriptions without NOTIFY.)
func TestLostNotifications(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	w := openSchema(t, schema, Options{})
	defer w.Close()
	s := openSchema(t, schema, Options{PollInterval: 50 * time.Millisecond})
	defer s.Close()
	s.n.channel = "seatledger_nobody_notifies_this"
	ctx := t.Context()
	sub, err := s.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	last := eventstore.Start
	for i := 0; i < 3; i++ {
		time.Sleep(20 * time.Millisecond)
		r, err := w.Append(ctx, "tenant-x", eventstore.Any, events(1, "T"))
		if err != nil {
			t.Fatal(err)
		}
		if got := follow(t, sub, last, 1); got[0].Position != r.Position {
			t.Fatalf("delivered position %d, appended at %d", got[0].Position, r.Position)
		}
		last = r.Position
	}
}

// TestConnectionsKilled terminates the store's server connections: calls
// fail with ErrUnavailable (or succeed on a new connection), the store
// recovers, and the subscription resumes once the LISTEN connection is back.
func TestConnectionsKilled(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	s := openSchema(t, schema, Options{PollInterval: 100 * time.Millisecond})
	defer s.Close()
	ctx := t.Context()
	sub, err := s.Subscribe(ctx, eventstore.Start)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first, err := s.Append(ctx, "tenant-k", eventstore.NoStream, events(1, "T"))
	if err != nil {
		t.Fatal(err)
	}
	follow(t, sub, eventstore.Start, 1)

	admin, err := pgx.Connect(ctx, testURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// The subscription may have read the event by polling before its
	// LISTEN connection was up (it connects on its own): wait for both
	// connections, so that the kill takes the listener too.
	for i := 0; ; i++ {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= 2 || i == 100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, schema).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed < 2 {
		t.Fatalf("terminated %d connections, want the pool's and the listener's", killed)
	}
	ok := false
	for i := 0; i < 50 && !ok; i++ {
		_, err := s.Append(ctx, "tenant-k", eventstore.Exactly(1), events(1, "T"))
		switch {
		case err == nil:
			ok = true
		case errors.Is(err, eventstore.ErrUnavailable):
			t.Logf("append after the kill: %v", err)
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("append after connections were killed: %v", err)
		}
	}
	if !ok {
		t.Fatal("store did not recover")
	}
	follow(t, sub, first.Position, 1)
}

func TestOpenUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("Open without a server: %v, want ErrUnavailable", err)
	}
	if _, err := Open(ctx, "postgres://postgres@127.0.0.1/test?schema=bad-name"); err == nil || errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("bad schema name: %v", err)
	}
}

func TestConcurrentOpen(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(t.Context(), testURL()+"&schema="+schema)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			if s.Schema() != schema {
				t.Errorf("schema %q, want %q", s.Schema(), schema)
			}
			if _, err := s.Append(t.Context(), "tenant-open", eventstore.Any, events(1, "T")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s := openSchema(t, schema, Options{})
	defer s.Close()
	if v, err := s.StreamVersion(t.Context(), "tenant-open"); err != nil || v != 4 {
		t.Fatalf("version %d %v, want 4", v, err)
	}
}

func TestIsURL(t *testing.T) {
	for s, want := range map[string]bool{
		"postgres://u@h/db":        true,
		"postgresql://u@h/db":      true,
		" POSTGRES://h/db":         true,
		"kurrentdb://h:2113":       false,
		"/var/lib/seatledger":      false,
		"host=localhost dbname=db": false,
	} {
		if IsURL(s) != want {
			t.Errorf("IsURL(%q) = %v", s, !want)
		}
	}
	conn, schema, writers, err := splitSchema("postgres://u:pw@h:5432/db?sslmode=disable&schema=s1")
	if err != nil || schema != "s1" || writers != 0 || conn != "postgres://u:pw@h:5432/db?sslmode=disable" {
		t.Fatalf("splitSchema: %q %q %d %v", conn, schema, writers, err)
	}
	conn, schema, writers, err = splitSchema("postgres://u:pw@h:5432/db?writers=3&sslmode=disable")
	if err != nil || schema != "" || writers != 3 || conn != "postgres://u:pw@h:5432/db?sslmode=disable" {
		t.Fatalf("splitSchema with writers: %q %q %d %v", conn, schema, writers, err)
	}
	for _, bad := range []string{"0", "17", "two", ""} {
		_, _, _, err := splitSchema("postgres://h/db?writers=" + bad)
		if err == nil || !strings.Contains(err.Error(), WritersParam) {
			t.Errorf("writers=%q: error %v, want one naming %s", bad, err, WritersParam)
		}
	}
}

// TestWritersFromTheConnectionString: the writers parameter sets how many
// group-commit goroutines a Store runs; without it (and without
// Options.Writers) a Store runs one.
func TestWritersFromTheConnectionString(t *testing.T) {
	requirePG(t)
	schema := freshSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []struct {
		param string
		want  int
	}{{"", 1}, {"&writers=3", 3}} {
		s, err := Open(ctx, testURL()+"&schema="+schema+c.param)
		if err != nil {
			t.Fatal(err)
		}
		got := s.opts.Writers
		s.Close()
		if got != c.want {
			t.Errorf("Open with %q: %d writers, want %d", c.param, got, c.want)
		}
	}
}

func TestUnavailableCodes(t *testing.T) {
	for code, want := range map[string]bool{"08006": true, "53100": true, "57P01": true, "40001": true, "23505": false, "42P01": false} {
		if unavailableCode(code) != want {
			t.Errorf("unavailableCode(%s) = %v", code, !want)
		}
	}
}

// TestGroupWithRefusedAppend: an append the server refuses (a stream name
// too long for the index) fails alone; the appends committed in the same
// group transaction are re-run one by one and succeed.
func TestGroupWithRefusedAppend(t *testing.T) {
	requirePG(t)
	s := openSchema(t, freshSchema(t), Options{})
	defer s.Close()
	ctx := t.Context()
	var b [16 << 10]byte
	_, _ = rand.Read(b[:])
	huge := "tenant-" + hex.EncodeToString(b[:])
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stream := fmt.Sprintf("tenant-ok-%d", i)
				if i == 7 {
					stream = huge
				}
				_, errs[i] = s.Append(ctx, stream, eventstore.Any, events(1, "T"))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			switch {
			case i == 7 && (err == nil || errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, eventstore.ErrConflict)):
				t.Fatalf("append with a huge stream name: %v, want a plain error", err)
			case i != 7 && err != nil:
				t.Fatalf("append %d: %v", i, err)
			}
		}
	}
	all, err := s.ReadAll(ctx, eventstore.Start, 0)
	if err != nil || len(all) != 3*19 {
		t.Fatalf("ReadAll: %d events, %v; want %d", len(all), err, 3*19)
	}
}
