package projections

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/internal/cputime"
	"github.com/seatledger/seatledger/internal/redistest"
	"github.com/seatledger/seatledger/readmodel"
)

// seedEvents appends n realistic events spread over tenants: users added
// and licensed, some unassigned (held data), group membership.
func seedEvents(b *testing.B, store *embedded.Store, n, tenants int) {
	b.Helper()
	ctx := context.Background()
	per := n / tenants
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for ti := 0; ti < tenants; ti++ {
		tid := fmt.Sprintf("bench%04d", ti)
		var evs []domain.Event
		add := func(p domain.Payload) {
			v := uint64(len(evs) + 1)
			evs = append(evs, domain.Event{Envelope: domain.Envelope{EventID: domain.EventID(tid, "bench", v), Type: p.EventType(),
				TenantID: tid, Version: v, OccurredAt: at, Actor: domain.Actor{UserID: "admin"}, CommandID: "c" + strconv.Itoa(int(v)),
				Schema: domain.CurrentSchema}, Payload: p})
		}
		add(domain.TenantCreated{TenantID: tid, Name: tid})
		add(domain.SubscriptionPurchased{SubscriptionID: "s1", SkuID: "05e9a617-0261-4cee-bb44-138d3ef5d965", Quantity: 100000, Kind: "Paid", Channel: "Direct"})
		add(domain.GroupCreated{GroupID: "g1", DisplayName: "All"})
		for i := 0; len(evs) < per; i++ {
			u := fmt.Sprintf("user%05d", i)
			add(domain.UserAdded{UserID: u, UserPrincipalName: u + "@x.example", DisplayName: u, UserType: "Member", UsageLocation: "US"})
			add(domain.LicenseAssigned{UserID: u, SkuID: "05e9a617-0261-4cee-bb44-138d3ef5d965", Source: "direct"})
			switch i % 4 {
			case 1:
				add(domain.GroupMemberAdded{GroupID: "g1", UserID: u})
			case 3:
				add(domain.LicenseUnassigned{UserID: u, SkuID: "05e9a617-0261-4cee-bb44-138d3ef5d965", Source: "direct"})
				add(domain.DataHeld{UserID: u, Workload: "Exchange", HeldSince: at, PurgeAfter: at.Add(720 * time.Hour), Reason: "licenseRemoved"})
			}
		}
		data := make([]eventstore.EventData, 0, len(evs))
		for _, e := range evs {
			b2, err := domain.EncodeEvent(e)
			if err != nil {
				b.Fatal(err)
			}
			data = append(data, eventstore.EventData{ID: e.EventID, Type: e.Type, Data: b2})
		}
		for i := 0; i < len(data); i += 500 {
			j := min(i+500, len(data))
			if _, err := store.Append(ctx, "tenant-"+tid, eventstore.Exactly(uint64(i)), data[i:j]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkProjectAll projects the whole store (SEATLEDGER_BENCH_EVENTS,
// default 100k events over 100 tenants) into Redis from position 0.
func BenchmarkProjectAll(b *testing.B) {
	n := 100_000
	if s := os.Getenv("SEATLEDGER_BENCH_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	store := openStore(b)
	seedEvents(b, store, n, 100)
	head := store.LastPosition()
	for _, kind := range redistest.Kinds {
		b.Run(string(kind), func(b *testing.B) {
			rdb, _ := testRedisOn(b, kind)
			projectFromStart(b, Config{Store: store, Redis: rdb}, head)
		})
	}
}

// BenchmarkProjectLive projects what `seatledger bench` writes: 1,000
// tenants of 8 users, then licenses assigned and unassigned round-robin
// over the tenants, flushed in batches of 48 events (the size a live
// projection flushes at ~8,000 commands/s). Reported per command projected.
func BenchmarkProjectLive(b *testing.B) {
	projectLive(b, []liveTarget{
		{string(redistest.Single), func(b *testing.B) redis.UniversalClient { rdb, _ := testRedisOn(b, redistest.Single); return rdb }},
		{string(redistest.Cluster), func(b *testing.B) redis.UniversalClient { rdb, _ := testRedisOn(b, redistest.Cluster); return rdb }},
	})
}

// BenchmarkProjectLiveServer is BenchmarkProjectLive into the Redis server
// at $SEATLEDGER_BENCH_REDIS (e.g. redis://127.0.0.1:6403/8; skipped
// without), flushed in batches of 512 (Config's default, as `seatledger
// bench` flushes), reporting that server's CPU per command projected
// (INFO used_cpu_user+used_cpu_sys: it should have no other client) and
// its EVALSHA time per command (INFO commandstats), set-up included.
func BenchmarkProjectLiveServer(b *testing.B) {
	url := os.Getenv("SEATLEDGER_BENCH_REDIS")
	if url == "" {
		b.Skip("SEATLEDGER_BENCH_REDIS is unset")
	}
	batch := 512
	if s := os.Getenv("SEATLEDGER_BENCH_BATCH"); s != "" {
		batch, _ = strconv.Atoi(s)
	}
	projectLiveBatch(b, batch, []liveTarget{{"server", func(b *testing.B) redis.UniversalClient {
		opt, err := redis.ParseURL(url)
		if err != nil {
			b.Fatal(err)
		}
		return redis.NewClient(opt)
	}}})
}

// BenchmarkProjectLiveInProcess is BenchmarkProjectLive into the in-process
// Redis of the zero-setup run (the flush in Go, ServeFlushNatively): its
// writes are in the time, where a Redis server's are not.
func BenchmarkProjectLiveInProcess(b *testing.B) {
	projectLive(b, []liveTarget{{"inProcess", func(b *testing.B) redis.UniversalClient { return inProcessRedis(b) }}})
}

// liveTarget is a Redis BenchmarkProjectLive projects into, a sub-benchmark.
type liveTarget struct {
	name string
	open func(b *testing.B) redis.UniversalClient
}

func projectLive(b *testing.B, targets []liveTarget) { projectLiveBatch(b, 48, targets) }

func projectLiveBatch(b *testing.B, batch int, targets []liveTarget) {
	const tenants, users = 1000, 8
	commands := 40_000
	if s := os.Getenv("SEATLEDGER_BENCH_COMMANDS"); s != "" {
		commands, _ = strconv.Atoi(s)
	}
	store := openStore(b)
	h := newHandler(store)
	ctx := context.Background()
	operator := domain.Actor{Operator: true}
	admin := domain.Actor{UserID: "admin"}
	seq := 0
	meta := func(tid string, a domain.Actor) domain.CommandMeta {
		seq++
		return domain.CommandMeta{TenantID: tid, CommandID: "c" + strconv.Itoa(seq), Actor: a}
	}
	run := func(c domain.Command) {
		if _, err := h.Handle(ctx, c); err != nil {
			b.Fatalf("%s: %v", c.CommandName(), err)
		}
	}
	for t := 0; t < tenants; t++ {
		tid := fmt.Sprintf("live%04d", t)
		run(&domain.CreateTenant{CommandMeta: meta(tid, operator), Name: "Bench",
			GlobalAdmin: domain.NewUser{ID: "admin", UserPrincipalName: "admin@" + tid + ".example", UsageLocation: "US"}})
		run(&domain.PurchaseSubscription{CommandMeta: meta(tid, admin), SubscriptionID: "s", SkuID: "SPB", Quantity: 1000})
		for u := 0; u < users; u++ {
			id := fmt.Sprintf("u%d", u)
			run(&domain.AddUser{CommandMeta: meta(tid, admin), User: domain.NewUser{ID: id, UserPrincipalName: id + "@" + tid + ".example", UsageLocation: "US"}})
		}
	}
	for i := 0; i < commands; i++ {
		t, u := i%tenants, (i/tenants)%users
		tid, uid := fmt.Sprintf("live%04d", t), fmt.Sprintf("u%d", u)
		if (i/(tenants*users))%2 == 0 {
			run(&domain.AssignLicenses{CommandMeta: meta(tid, admin), SkuID: "SPB", Users: []string{uid}})
		} else {
			run(&domain.UnassignLicenses{CommandMeta: meta(tid, admin), SkuID: "SPB", Users: []string{uid}})
		}
	}
	head := store.LastPosition()
	// On one Redis server (one script call per flush), on a Redis Cluster
	// of three masters (one per tenant, pipelined by master; the build also
	// lays the 16,384 slot markers), or in-process.
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			rdb := target.open(b)
			b.ReportAllocs()
			cfg := Config{Store: store, Redis: rdb, BatchSize: batch}
			if target.name == "server" {
				// Keys as long as seatledger bench's (the script hashes
				// every byte of them).
				cfg.Prefix = readmodel.DefaultPrefix
			}
			cpu0, eval0 := serverCPU(b, rdb)
			projectFromStart(b, cfg, head)
			if target.name == "server" {
				cpu1, eval1 := serverCPU(b, rdb)
				per := float64(commands * b.N)
				b.ReportMetric((cpu1-cpu0)*1e9/per, "server-ns/cmd")
				b.ReportMetric((eval1-eval0)*1e3/per, "evalsha-ns/cmd")
			}
		})
	}
}

// serverCPU returns a Redis server's CPU seconds (user and system) and its
// EVALSHA microseconds so far (0, 0 where INFO does not tell).
func serverCPU(b *testing.B, rdb redis.UniversalClient) (cpu, evalUsec float64) {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return 0, 0
	}
	info, err := c.Info(context.Background(), "cpu", "commandstats").Result()
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "used_cpu_user", "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		case "cmdstat_evalsha":
			for _, kv := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(kv, "usec="); ok {
					evalUsec, _ = strconv.ParseFloat(n, 64)
				}
			}
		}
	}
	return cpu, evalUsec
}

// projectFromStart times b.N projections of the store up to head, each
// into a fresh prefix (deleted outside the timer), and reports events/s and
// the process's CPU time per event (less sensitive than the time to other
// work on the machine; a Redis server's is not in it). A cfg.Prefix given
// is used each time.
func projectFromStart(b *testing.B, cfg Config, head eventstore.Position) {
	b.ResetTimer()
	var cpu time.Duration
	prefix := cfg.Prefix // given: the same each time (deleted after each)
	for i := 0; i < b.N; i++ {
		cpu0 := cputime.Process()
		if prefix == "" {
			cfg.Prefix = fmt.Sprintf("sltest:bench%d-%d:", time.Now().UnixNano(), i)
		}
		p, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		if err := p.WaitFor(context.Background(), head); err != nil {
			b.Fatal(err)
		}
		cancel()
		<-done
		cpu += cputime.Process() - cpu0
		b.StopTimer()
		deletePrefix(cfg.Redis, cfg.Prefix)
		b.StartTimer()
	}
	b.ReportMetric(float64(uint64(head)*uint64(b.N))/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(uint64(head)*uint64(b.N)), "cpu-ns/event")
	}
}
