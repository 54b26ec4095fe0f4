package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/eventstore/postgres"
	"github.com/seatledger/seatledger/internal/cputime"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
)

// benchOptions drive `seatledger bench`.
type benchOptions struct {
	Clients, Tenants, Users int
	Duration                time.Duration
	NoSync                  bool
	SyncDelay               time.Duration
	RedisURL                string
	// EventStore is "embedded" or a PostgreSQL server's URL: the bench
	// then uses a fresh schema of its own there and drops it afterwards.
	EventStore string
	// Nodes is how many servers share the store and Redis (in this
	// process, each with its own command handler, cache and listener);
	// the clients are spread over them.
	Nodes      int
	Profile    io.Writer // CPU profile of the load phase, if set
	MemProfile io.Writer // allocation profile written after the load, if set
	// Split profiles the load phase (in memory, unless Profile is set too)
	// to split the process's CPU by profile label (benchResult.Split; also
	// done when Profile is set).
	Split bool
	// Timeline, if set, gets the load's latency per TimelineBucket of its
	// time with the Go runtime's work in each (writeTimeline).
	Timeline       io.Writer
	TimelineBucket time.Duration
	// Trace, if set, gets a runtime/trace execution trace of the load.
	Trace io.Writer
}

// benchResult is what one load run measured.
type benchResult struct {
	Commands         int64
	Errors           int64
	Elapsed          time.Duration
	CPU              time.Duration // CPU time of the process during the load and until the read side caught up
	CatchUp          time.Duration // how long after the load the read side had written every event
	RedisCPU         time.Duration // CPU time of the Redis server (--redis-url) over the same span, from its INFO
	Split            cpuSplit      // the process's CPU during the load by profile label (Split)
	P50, P99, Max    time.Duration
	StoreEventsPerS  float64
	StoreAppendsPerS float64
}

func (r benchResult) perSecond() float64 { return float64(r.Commands) / r.Elapsed.Seconds() }

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", "Usage: seatledger bench [--clients 64] [--tenants 1000] [--users 8] [--duration 20s] [--nosync] [--sync-delay 500us]\n"+
		"                        [--eventstore postgres://… --nodes 2 --redis-url redis://…]\n"+
		"Starts seatledger on a temporary data directory (durable embedded store, in-process Redis), creates the\n"+
		"tenants, then has the clients assign and unassign licenses over loopback HTTP for the duration, and prints\n"+
		"commands/s, latency percentiles and errors; then measures the raw event store append rate with as many writers.\n"+
		"With --eventstore postgres://… and --nodes N it starts N servers sharing that store (a fresh schema, dropped\n"+
		"afterwards) and one Redis, and spreads the clients over them.", stderr)
	var o benchOptions
	fs.IntVar(&o.Clients, "clients", 64, "concurrent HTTP clients")
	fs.IntVar(&o.Tenants, "tenants", 1000, "tenants the load is spread over")
	fs.IntVar(&o.Users, "users", 8, "licensed users per tenant")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "how long the load runs")
	fs.BoolVar(&o.NoSync, "nosync", false, "store without fsync (NOT durable; to see what the disk costs)")
	fs.DurationVar(&o.SyncDelay, "sync-delay", 500*time.Microsecond, "longest wait of a commit for concurrent appends, as "+envSyncDelay+" (0: never wait)")
	fs.StringVar(&o.RedisURL, "redis-url", "", "Redis of the read side (default: in-process, as the zero-setup run); the database must hold no seatledger keys (the bench refuses it otherwise) and the bench deletes the keys it wrote, e.g. redis://127.0.0.1:6379/12")
	fs.StringVar(&o.EventStore, "eventstore", "embedded", "embedded, or a PostgreSQL server's URL (postgres://…): the bench makes a schema of its own there and drops it afterwards")
	fs.IntVar(&o.Nodes, "nodes", 1, "servers sharing the event store and Redis, the clients spread over them (more than 1 needs --eventstore postgres://… and --redis-url)")
	fs.BoolVar(&o.Split, "cpu-split", false, "profile the load (in memory) to split this process's CPU by part (projection, in-process Redis, HTTP server, load clients, Pebble, other) and print the read side's share; the profiler adds ~5% to the CPU per command")
	timeline := fs.String("timeline", "", "write the load's latency over time to this file: one tab-separated line per --timeline-bucket (requests started in it, their p50/p90/p99/max, and the Go runtime's GC cycles, GC CPU, longest GC pause, goroutine scheduling latency p99/max and mutex wait in it)")
	fs.DurationVar(&o.TimelineBucket, "timeline-bucket", 250*time.Millisecond, "width of a --timeline line")
	traceFile := fs.String("trace", "", "write an execution trace of the load (runtime/trace; read it with go tool trace) to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile (set-up and load) to this file")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if o.Clients < 1 || o.Tenants < 1 || o.Users < 1 || o.Duration <= 0 || o.Nodes < 1 {
		fmt.Fprintln(stderr, "seatledger bench: --clients, --tenants, --users, --duration and --nodes must be positive")
		return 2
	}
	if o.EventStore != "embedded" && !postgres.IsURL(o.EventStore) {
		fmt.Fprintln(stderr, "seatledger bench: --eventstore must be embedded or a postgres:// URL")
		return 2
	}
	if o.Nodes > 1 && (o.EventStore == "embedded" || o.RedisURL == "") {
		fmt.Fprintln(stderr, "seatledger bench: --nodes above 1 needs a store and a Redis the nodes share: --eventstore postgres://… and --redis-url redis://…")
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "seatledger bench:", err)
			return 1
		}
		defer f.Close()
		o.Profile = f
	}
	for _, out := range []struct {
		name string
		to   *io.Writer
	}{{*timeline, &o.Timeline}, {*traceFile, &o.Trace}} {
		if out.name == "" {
			continue
		}
		f, err := os.Create(out.name)
		if err != nil {
			fmt.Fprintln(stderr, "seatledger bench:", err)
			return 1
		}
		defer f.Close()
		*out.to = f
	}
	if o.Timeline != nil && o.TimelineBucket <= 0 {
		fmt.Fprintln(stderr, "seatledger bench: --timeline-bucket must be positive")
		return 2
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			fmt.Fprintln(stderr, "seatledger bench:", err)
			return 1
		}
		defer f.Close()
		o.MemProfile = f
	}
	tuneGC(os.Getenv) // as serve does
	tuneProcs(os.Getenv)
	res, err := benchHTTP(ctx, o, func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) })
	if err != nil {
		fmt.Fprintln(stderr, "seatledger bench:", err)
		return 1
	}
	redisDesc := "in-process Redis"
	if o.RedisURL != "" {
		redisDesc = "Redis " + redactURL(o.RedisURL)
	}
	storeDesc := fmt.Sprintf("embedded store, durable=%v, sync delay %v", !o.NoSync, o.SyncDelay)
	if o.EventStore != "embedded" {
		storeDesc = "PostgreSQL store " + redactURL(o.EventStore)
	}
	fmt.Fprintf(stdout, "HTTP AssignLicense/UnassignLicense, %d clients, %d tenants, %v, %d node(s), %s, %s\n", o.Clients, o.Tenants, o.Duration, o.Nodes, storeDesc, redisDesc)
	fmt.Fprintf(stdout, "  commands/s   %.0f  (%d commands, %d errors, %.2f%% error rate)\n", res.perSecond(), res.Commands, res.Errors,
		100*float64(res.Errors)/float64(max(res.Commands+res.Errors, 1)))
	fmt.Fprintf(stdout, "  latency      p50 %.2f ms   p99 %.2f ms   max %.2f ms\n", ms(res.P50), ms(res.P99), ms(res.Max))
	if res.CPU > 0 && res.Commands > 0 {
		fmt.Fprintf(stdout, "  CPU          %.0f µs per command (this process: server and load clients, until the read side caught up %v after the load; %.2f cores busy)\n",
			perCommand(res.CPU, res.Commands), res.CatchUp.Round(time.Millisecond), res.CPU.Seconds()/(res.Elapsed+res.CatchUp).Seconds())
		printReadSide(stdout, res, o.RedisURL != "")
	}
	if o.EventStore == "embedded" {
		fmt.Fprintf(stdout, "  raw store    %.0f events/s (%d writers, 1 event per append, same machine, right after)\n", res.StoreEventsPerS, o.Clients)
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// perCommand is d per command in µs.
func perCommand(d time.Duration, commands int64) float64 {
	return float64(d.Nanoseconds()) / 1000 / float64(commands)
}

// printReadSide prints the Redis server's CPU (remote) and the read side's
// share of the whole: the projection and the Redis server, in-process or not.
func printReadSide(w io.Writer, res benchResult, remote bool) {
	whole := res.CPU
	if remote {
		whole += res.RedisCPU
		fmt.Fprintf(w, "  Redis server %.0f µs per command (its INFO used_cpu_sys+used_cpu_user over the load; all of its clients); with this process %.0f µs\n",
			perCommand(res.RedisCPU, res.Commands), perCommand(whole, res.Commands))
	}
	if res.Split == nil {
		return
	}
	fmt.Fprintf(w, "  CPU split    %s (of this process, from a CPU profile of the load)\n", res.Split)
	read := time.Duration(res.Split[projections.ProfileProjection] * float64(res.CPU))
	if remote {
		read += res.RedisCPU
	} else {
		read += time.Duration(res.Split[projections.ProfileInProcessRedis] * float64(res.CPU))
	}
	fmt.Fprintf(w, "  read side    %.0f µs per command, %.1f%% of the whole (projection and Redis server; the GC's background work not counted)\n",
		perCommand(read, res.Commands), 100*read.Seconds()/whole.Seconds())
}

// benchHTTP runs the load against a fresh in-process server.
func benchHTTP(ctx context.Context, o benchOptions, progress func(string, ...any)) (benchResult, error) {
	dir, err := os.MkdirTemp("", "seatledger-bench-")
	if err != nil {
		return benchResult{}, err
	}
	defer os.RemoveAll(dir)
	if o.RedisURL != "" {
		cleanup, err := claimBenchRedis(ctx, o.RedisURL)
		if err != nil {
			return benchResult{}, err
		}
		defer cleanup()
	}
	storeURL := o.EventStore
	if storeURL == "" {
		storeURL = "embedded"
	}
	if storeURL != "embedded" {
		url, drop, err := benchSchema(ctx, storeURL)
		if err != nil {
			return benchResult{}, err
		}
		defer drop()
		storeURL = url
	}
	jwtSecret, err := randomSecret()
	if err != nil {
		return benchResult{}, err
	}
	opToken, err := randomSecret()
	if err != nil {
		return benchResult{}, err
	}
	secrets := devSecrets{JWTSecret: jwtSecret, OperatorToken: opToken}
	nodes := max(o.Nodes, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	addrs := make([]string, nodes)
	done := make(chan error, nodes)
	started := 0
	var stopOnce sync.Once
	shutdown := func() {
		stopOnce.Do(func() {
			stop()
			for range started {
				<-done
			}
		})
	}
	defer shutdown()
	for n := range nodes {
		cfg := serveConfig{Addr: "127.0.0.1:0", DataDir: fmt.Sprintf("%s/data%d", dir, n), EventStore: storeURL, HoldPeriod: 720 * time.Hour,
			SchedulerInterval: time.Minute, BulkLimit: 20, ShutdownTimeout: 10 * time.Second, LogFormat: "text",
			NodeID: fmt.Sprint("bench-", n), PurgeRate: 5000, SyncDelay: o.SyncDelay, noSync: o.NoSync, RedisURL: o.RedisURL,
			JWTSecret: secrets.JWTSecret, OperatorToken: secrets.OperatorToken}
		addrCh := make(chan string, 1)
		go func() { done <- serve(sctx, cfg, io.Discard, io.Discard, func(a string) { addrCh <- a }) }()
		started++
		select {
		case addrs[n] = <-addrCh:
		case err := <-done:
			started--
			return benchResult{}, fmt.Errorf("node %d: %w", n, err)
		}
	}
	addr := addrs[0]
	// Set-up: tenants, 1000 licenses each, users.
	progress("setting up %d tenants of %d users…", o.Tenants, o.Users)
	tokens := make([]string, o.Tenants)
	var setupErr atomic.Value
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < min(o.Clients, 32); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc := newWireClient(addr)
			defer wc.Close()
			for i := range work {
				t := fmt.Sprint("bench-", i)
				tok, _ := api.NewToken([]byte(secrets.JWTSecret), t, "admin", 24*time.Hour, time.Now())
				tokens[i] = tok
				steps := []struct{ method, path, token, body string }{
					{"POST", "/v1/tenants", secrets.OperatorToken, `{"id":"` + t + `","name":"Bench","globalAdmin":{"id":"admin","userPrincipalName":"admin@bench.example","usageLocation":"US"}}`},
					{"POST", "/v1/tenants/" + t + "/subscriptions", tok, `{"id":"s","skuId":"SPB","quantity":1000}`},
				}
				for u := 0; u < o.Users; u++ {
					steps = append(steps, struct{ method, path, token, body string }{"POST", "/v1/tenants/" + t + "/users", tok,
						fmt.Sprintf(`{"id":"u%d","userPrincipalName":"u%d@bench.example","usageLocation":"US"}`, u, u)})
				}
				for _, s := range steps {
					if code, err := wc.do(s.method, s.path, s.token, []byte(s.body)); err != nil || code != http.StatusCreated {
						setupErr.Store(fmt.Errorf("set-up %s %s: %d %v", s.method, s.path, code, err))
						return
					}
				}
			}
		}()
	}
	for i := 0; i < o.Tenants; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := setupErr.Load().(error); err != nil {
		return benchResult{}, err
	}

	// Load: each (tenant, user) is taken by one client at a time and flipped
	// between assigned and unassigned, so every command appends events.
	progress("load: %d clients for %v…", o.Clients, o.Duration)
	slots := make([]atomic.Int32, o.Tenants*o.Users) // 0 free unassigned, 1 free assigned, 2+ busy
	paths := make([][2]string, o.Tenants)            // assign, unassign
	for t := range paths {
		paths[t] = [2]string{fmt.Sprintf("/v1/tenants/bench-%d/licenses/SPB/assign", t), fmt.Sprintf("/v1/tenants/bench-%d/licenses/SPB/unassign", t)}
	}
	bodies := make([][]byte, o.Users)
	for u := range bodies {
		bodies[u] = fmt.Appendf(nil, `{"users":["u%d"]}`, u)
	}
	var prof *profileSink
	if o.Profile != nil || o.Split {
		prof = &profileSink{file: o.Profile}
		if err := pprof.StartCPUProfile(prof); err != nil {
			return benchResult{}, err
		}
	}
	var redisCPU0 time.Duration
	var benchRedis *redis.Client
	if o.RedisURL != "" {
		opts, err := redis.ParseURL(o.RedisURL)
		if err != nil {
			return benchResult{}, err
		}
		benchRedis = redis.NewClient(opts)
		defer benchRedis.Close()
		if redisCPU0, err = redisServerCPU(ctx, benchRedis); err != nil {
			return benchResult{}, fmt.Errorf("redis INFO cpu: %w", err)
		}
	}
	var commands, errs atomic.Int64
	lat := make([][]time.Duration, o.Clients)
	var starts [][]time.Duration // with Timeline: each request's start since the load began
	if o.Timeline != nil {
		starts = make([][]time.Duration, o.Clients)
	}
	if o.Trace != nil {
		if err := trace.Start(o.Trace); err != nil {
			return benchResult{}, err
		}
	}
	deadline := time.Now().Add(o.Duration)
	start, cpu0 := time.Now(), cputime.Process()
	var samples []runtimeSample
	samplerDone := make(chan struct{})
	stopSampler := make(chan struct{})
	if o.Timeline != nil {
		go func() {
			defer close(samplerDone)
			samples = append(samples, readRuntimeSample(0))
			t := time.NewTicker(o.TimelineBucket)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					samples = append(samples, readRuntimeSample(time.Since(start)))
				case <-stopSampler:
					samples = append(samples, readRuntimeSample(time.Since(start)))
					return
				}
			}
		}()
	} else {
		close(samplerDone)
	}
	for c := 0; c < o.Clients; c++ {
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels(projections.ProfileLabel, profileClients), func(context.Context) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 99))
			wc := newWireClient(addrs[c%len(addrs)])
			defer wc.Close()
			for time.Now().Before(deadline) {
				k := r.IntN(len(slots))
				state := slots[k].Load()
				if state > 1 || !slots[k].CompareAndSwap(state, 2) {
					continue
				}
				t, u := k/o.Users, k%o.Users
				var region *trace.Region
				if o.Trace != nil {
					region = trace.StartRegion(ctx, "request")
				}
				began := time.Now()
				code, err := wc.do("POST", paths[t][state], tokens[t], bodies[u])
				lat[c] = append(lat[c], time.Since(began))
				if region != nil {
					region.End()
				}
				if starts != nil {
					starts[c] = append(starts[c], began.Sub(start))
				}
				if err != nil || code != http.StatusOK {
					errs.Add(1)
					slots[k].Store(state)
					continue
				}
				commands.Add(1)
				slots[k].Store(1 - state)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampler)
	<-samplerDone
	if o.Trace != nil {
		trace.Stop()
	}
	if o.Timeline != nil {
		var reqs []timelineSample
		for c := range starts {
			for i, s := range starts[c] {
				reqs = append(reqs, timelineSample{start: s, took: lat[c][i]})
			}
		}
		if err := writeTimeline(o.Timeline, o.TimelineBucket, reqs, samples); err != nil {
			return benchResult{}, fmt.Errorf("timeline: %w", err)
		}
	}
	// The CPU counted is the load's and the read side's work for it,
	// finished after the load if the projection was behind.
	catchUp, err := waitReadSide(ctx, addrs, secrets.OperatorToken, time.Minute)
	if err != nil {
		return benchResult{}, err
	}
	cpu1 := cputime.Process()
	var redisCPU time.Duration
	if benchRedis != nil {
		cpu, err := redisServerCPU(ctx, benchRedis)
		if err != nil {
			return benchResult{}, fmt.Errorf("redis INFO cpu: %w", err)
		}
		redisCPU = cpu - redisCPU0
	}
	var split cpuSplit
	if prof != nil {
		pprof.StopCPUProfile()
		if split, err = splitCPU(&prof.buf); err != nil {
			return benchResult{}, fmt.Errorf("CPU split: %w", err)
		}
	}
	if o.MemProfile != nil {
		if err := pprof.Lookup("allocs").WriteTo(o.MemProfile, 0); err != nil {
			return benchResult{}, err
		}
	}
	res := benchResult{Commands: commands.Load(), Errors: errs.Load(), Elapsed: elapsed, CPU: cpu1 - cpu0,
		RedisCPU: redisCPU, Split: split, CatchUp: catchUp}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) > 0 {
		slices.Sort(all)
		res.P50, res.P99, res.Max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
	shutdown()
	if storeURL != "embedded" {
		return res, nil
	}

	progress("raw store: %d writers for %v…", o.Clients, min(o.Duration, 10*time.Second))
	res.StoreEventsPerS, err = rawAppendRate(ctx, dir+"/raw", o.Clients, min(o.Duration, 10*time.Second), o.NoSync, o.SyncDelay)
	return res, err
}

// benchSchema returns base with a fresh schema of the bench's own, and a
// function that drops it.
func benchSchema(ctx context.Context, base string) (url string, drop func(), err error) {
	if strings.Contains(base, postgres.SchemaParam+"=") {
		return "", nil, fmt.Errorf("--eventstore: leave out %s=: the bench makes a schema of its own and drops it afterwards", postgres.SchemaParam)
	}
	var raw [6]byte
	_, _ = crand.Read(raw[:])
	schema := fmt.Sprintf("seatledger_bench_%x", raw)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + postgres.SchemaParam + "=" + schema, func() {
		if err := postgres.DropSchema(context.Background(), base, schema); err != nil {
			fmt.Fprintf(os.Stderr, "seatledger bench: drop schema %s: %v\n", schema, err)
		}
	}, nil
}

// rawAppendRate appends 300-byte events, one per append, from n writers on
// their own streams for d, straight to a fresh embedded store.
func rawAppendRate(ctx context.Context, dir string, n int, d time.Duration, noSync bool, syncDelay time.Duration) (float64, error) {
	st, err := embedded.Open(dir, embedded.Options{NoSync: noSync, SyncDelay: embeddedSyncDelay(syncDelay)})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	payload := bytes.Repeat([]byte("x"), 300)
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			stream := fmt.Sprint("raw-", w)
			for v := uint64(0); time.Now().Before(deadline); v++ {
				id := fmt.Sprintf("%08x-0000-4000-8000-%012x", w, v)
				if _, err := st.Append(ctx, stream, eventstore.Exactly(v), []eventstore.EventData{{ID: id, Type: "Raw", Data: payload}}); err != nil {
					return
				}
				total.Add(1)
			}
		}(w)
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}

// benchRedisPatterns match every key a seatledger node writes in Redis: the
// read models, checkpoints and leases (sl:…) and the purge command stream.
var benchRedisPatterns = []string{readmodel.DefaultPrefix + "*", "seatledger.*"}

// claimBenchRedis makes sure the bench's Redis database holds no seatledger
// keys (a read model left by an earlier run would have the projection resume
// from that run's checkpoint in a store that never had those events) and
// returns a function that deletes every key the run wrote.
func claimBenchRedis(ctx context.Context, url string) (cleanup func(), err error) {
	rdb, err := readmodel.NewClient(url)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	var found string
	err = scanBenchKeys(ctx, rdb, func(keys []string) error {
		found = keys[0]
		return errStopScan
	})
	if errors.Is(err, errStopScan) {
		rdb.Close()
		return nil, fmt.Errorf("redis %s already holds seatledger keys (%s, …); the bench needs a database without them: "+
			"pick another database number or empty this one (redis-cli -n <db> flushdb)", redactURL(url), found)
	}
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", redactURL(url), err)
	}
	return func() {
		err := scanBenchKeys(context.Background(), rdb, func(keys []string) error {
			// One UNLINK per key: on a cluster a command may only name
			// keys of one slot.
			pipe := rdb.Pipeline()
			for _, k := range keys {
				pipe.Unlink(context.Background(), k)
			}
			_, err := pipe.Exec(context.Background())
			return err
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "seatledger bench: deleting the bench's keys in redis %s: %v\n", redactURL(url), err)
		}
		rdb.Close()
	}, nil
}

var errStopScan = errors.New("stop scan")

// scanBenchKeys calls fn with each non-empty page of keys matching
// benchRedisPatterns, of every master on a Redis Cluster.
func scanBenchKeys(ctx context.Context, rdb redis.UniversalClient, fn func([]string) error) error {
	for _, pattern := range benchRedisPatterns {
		if err := readmodel.ScanEach(ctx, rdb, pattern, fn); err != nil {
			return err
		}
	}
	return nil
}
