package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/api/console"
	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore"
	"github.com/seatledger/seatledger/eventstore/embedded"
	"github.com/seatledger/seatledger/eventstore/kurrentdb"
	"github.com/seatledger/seatledger/eventstore/postgres"
	"github.com/seatledger/seatledger/history"
	"github.com/seatledger/seatledger/internal/textlog"
	"github.com/seatledger/seatledger/projections"
	"github.com/seatledger/seatledger/readmodel"
	"github.com/seatledger/seatledger/render"
	"github.com/seatledger/seatledger/tenantstream"
)

// serveDeps is what the server is built from: the configuration and what
// newApp opened for it. The read side and the purges are started from it.
type serveDeps struct {
	Config     serveConfig
	Logger     *slog.Logger
	Store      eventstore.Store
	Snapshots  eventstore.SnapshotStore // nil if the store has none
	Decider    *domain.Decider
	Commands   *commands.Handler
	Redis      redis.UniversalClient // a *redis.Client, or a *redis.ClusterClient for a Redis Cluster
	Registerer prometheus.Registerer
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seatledger serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: seatledger serve [flags]")
		fmt.Fprintln(fs.Output(), "Runs the HTTP API. Every flag mirrors an environment variable; the flag wins.")
		fs.PrintDefaults()
	}
	cfg, err := loadServeConfig(args, os.Getenv, fs)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "seatledger serve:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tuneGC(os.Getenv)
	tuneProcs(os.Getenv)
	if err := serve(ctx, cfg, stdout, stderr, nil); err != nil {
		fmt.Fprintln(stderr, "seatledger serve:", err)
		var ce *configError
		if errors.As(err, &ce) {
			return 2
		}
		return 1
	}
	return 0
}

func newLogger(format string, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(textlog.New(w, opts)) // slog's TextHandler, request lines written directly
}

// app is what serve runs, as newApp builds it: the HTTP handler and what it
// is built from.
type app struct {
	deps    *serveDeps
	handler *api.Server
	dev     *devInUse // the development secrets in use; nil if both are configured
	closers []func() error
}

// close stops the scheduler and the projection, then closes the command
// handler, Redis and the store, in the reverse order of their start. It
// returns the store's error.
func (a *app) close() error {
	var err error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if cerr := a.closers[i](); cerr != nil && err == nil {
			err = cerr
		}
	}
	a.closers = nil
	return err
}

func (a *app) onClose(f func()) { a.closers = append(a.closers, func() error { f(); return nil }) }

// newApp opens the store and Redis, starts the command handler, the read
// side (the projection and the queries) and the purges, and builds the
// router over them, as serve serves it. Call close when done (on an error,
// newApp has closed what it opened).
func newApp(ctx context.Context, cfg serveConfig, logger *slog.Logger) (a *app, err error) {
	a = &app{}
	defer func() {
		if err != nil {
			_ = a.close()
		}
	}()

	// Secrets: configured, else the data directory's dev secrets.
	if cfg.JWTSecret == "" || cfg.OperatorToken == "" {
		s, fresh, err := loadOrCreateDevSecrets(cfg.DataDir)
		if err != nil {
			return a, fmt.Errorf("dev secrets in %s: %w", cfg.DataDir, err)
		}
		a.dev = &devInUse{file: filepath.Join(cfg.DataDir, devSecretsFile)}
		if cfg.JWTSecret == "" {
			cfg.JWTSecret, a.dev.jwt, a.dev.fresh.JWTSecret = s.JWTSecret, true, fresh.JWTSecret
		}
		if cfg.OperatorToken == "" {
			cfg.OperatorToken, a.dev.operator, a.dev.fresh.OperatorToken = s.OperatorToken, true, fresh.OperatorToken
		}
		if a.dev.fresh != (devSecrets{}) {
			logger.Warn("generated development secrets", "file", a.dev.file)
		}
		if err := checkSecrets(cfg.JWTSecret, cfg.OperatorToken); err != nil {
			return a, fmt.Errorf("%s: %w", a.dev.file, err)
		}
	}

	// Event store.
	var store eventstore.Store
	switch {
	case isEmbedded(cfg.EventStore):
		st, err := embedded.Open(cfg.DataDir, embedded.Options{Logger: logger.With("component", "eventstore"), NoSync: cfg.noSync,
			SyncDelay: embeddedSyncDelay(cfg.SyncDelay)})
		if err != nil {
			return a, err
		}
		store = st
		logger.Info("event store: embedded", "dir", st.Dir())
	case postgres.IsURL(cfg.EventStore):
		st, err := postgres.Open(ctx, cfg.EventStore)
		if err != nil {
			return a, err
		}
		store = st
		logger.Info("event store: PostgreSQL", "url", redactURL(cfg.EventStore), "schema", st.Schema())
	default:
		st, err := kurrentdb.Open(cfg.EventStore)
		if err != nil {
			return a, err
		}
		store = st
		logger.Info("event store: KurrentDB", "url", redactURL(cfg.EventStore))
	}
	a.closers = append(a.closers, func() error {
		if err := store.Close(); err != nil {
			return fmt.Errorf("close event store: %w", err)
		}
		return nil
	})
	snaps, _ := store.(eventstore.SnapshotStore)

	// Redis: configured, else in-process.
	var rdb redis.UniversalClient
	if cfg.RedisURL == "" {
		mr := miniredis.NewMiniRedis()
		var err error // its goroutines carry the profile label of the in-process Redis
		pprof.Do(ctx, pprof.Labels(projections.ProfileLabel, projections.ProfileInProcessRedis), func(context.Context) { err = mr.StartAddr("127.0.0.1:0") })
		if err != nil {
			return a, fmt.Errorf("start in-process Redis: %w", err)
		}
		a.onClose(mr.Close)
		// The projection's flushes run in Go there, not in its Lua.
		release, err := render.ServeFlushNatively(mr)
		if err != nil {
			return a, err
		}
		a.onClose(release)
		rdb = redis.NewClient(&redis.Options{Addr: mr.Addr()})
		logger.Info("redis: in-process (miniredis)", "addr", mr.Addr())
	} else {
		one, cluster, err := readmodel.ParseURL(cfg.RedisURL)
		if err != nil {
			return a, badValue(cfg.source(envRedisURL), redactURL(cfg.RedisURL), err.Error())
		}
		if cluster != nil {
			rdb = redis.NewClusterClient(cluster)
			logger.Info("redis: cluster", "nodes", cluster.Addrs)
		} else {
			rdb = redis.NewClient(one)
			logger.Info("redis", "addr", one.Addr, "db", one.DB)
			// A URL of one node of a Redis Cluster would be answered MOVED
			// for most keys: say so now. (A Redis not up yet is waited for
			// later, as before.)
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := readmodel.CheckNotCluster(cctx, rdb)
			cancel()
			if errors.Is(err, readmodel.ErrClusterNode) {
				_ = rdb.Close()
				return a, badValue(cfg.source(envRedisURL), redactURL(cfg.RedisURL), err.Error())
			}
		}
	}
	a.onClose(func() { _ = rdb.Close() })

	// Metrics, commands, API.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := api.NewMetrics(reg)
	if k, ok := store.(*kurrentdb.Store); ok {
		registerKurrentMetrics(reg, k)
	}
	policy := domain.DefaultPolicy()
	policy.HoldPeriod = cfg.HoldPeriod
	policy.BulkLimit = cfg.BulkLimit
	decider := domain.NewDecider(domain.DefaultCatalog(), policy)
	handler := commands.New(commands.Config{
		Store: store, Snapshots: snaps, Decider: decider,
		Logger: logger.With("component", "commands"), Observer: metrics,
	})
	a.onClose(handler.Close)

	a.deps = &serveDeps{Config: cfg, Logger: logger, Store: store, Snapshots: snaps, Decider: decider,
		Commands: handler, Redis: rdb, Registerer: reg}

	// The read side: the projection into Redis, the queries over it.
	q, readModels, stopReadSide, err := startReadSide(ctx, a.deps)
	if err != nil {
		return a, err
	}
	a.onClose(stopReadSide)
	// The purges of held data: the scheduler and its command bus.
	purgesReady, stopPurges, err := startPurges(ctx, a.deps)
	if err != nil {
		return a, err
	}
	a.onClose(stopPurges)
	// History reads the event store directly.
	hist := &history.Service{Store: store, Snapshots: snaps, Catalog: decider.Catalog}

	rateLimit, err := parseRateLimit(cfg.RateLimit)
	if err != nil {
		return a, badValue(cfg.source(envRateLimit), cfg.RateLimit, err.Error())
	}
	a.handler = api.New(api.Config{
		Commands: handler, Decider: decider, RateLimit: rateLimit,
		JWTSecret: []byte(cfg.JWTSecret), OperatorToken: cfg.OperatorToken,
		Logger: logger.With("component", "http"), BulkLimit: cfg.BulkLimit,
		Metrics: metrics, Gatherer: reg,
		Queries: q, History: hist, ReadModels: readModels,
		Console: func(h http.Handler) http.Handler {
			return console.New(console.Config{API: h, DevSignIn: devSignIn(a.dev, cfg),
				CSRFKey: consoleCSRFKey(cfg.JWTSecret), Logger: logger.With("component", "console")})
		},
		Live: func() error {
			if h, ok := store.(eventstore.HealthReporter); ok {
				if err := h.Health(); err != nil {
					return fmt.Errorf("event store: %w", err)
				}
			}
			return nil
		},
		Ready: func(ctx context.Context) error {
			if err := store.Ping(ctx); err != nil {
				return fmt.Errorf("event store: %w", err)
			}
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			// Not ready while the read models (and with them the held-data
			// schedule) are being rebuilt, nor while purges could not be
			// handled.
			if err := q.Ready(ctx); err != nil {
				return err
			}
			if purgesReady != nil {
				return purgesReady(ctx)
			}
			return nil
		},
	})
	return a, nil
}

// devSignIn is the console's one-click sign-in (console.Config.DevSignIn):
// only while both secrets are the data directory's generated ones, which
// anyone who can read the directory holds anyway, and the server listens
// on a loopback address: on any other (the container image's 0.0.0.0)
// whoever reaches the port would be the operator in one click. It mints an
// 8-hour token of the dev JWT secret, or with an empty tenant answers the
// operator token.
func devSignIn(dev *devInUse, cfg serveConfig) func(tenant, user string) (string, error) {
	if dev == nil || !dev.jwt || !dev.operator || !loopbackAddr(cfg.Addr) {
		return nil
	}
	secret, operator := []byte(cfg.JWTSecret), cfg.OperatorToken
	return func(tenant, user string) (string, error) {
		if tenant == "" {
			return operator, nil
		}
		if user == "" {
			return "", errors.New("choose a user of the tenant")
		}
		return api.NewToken(secret, tenant, user, 8*time.Hour, time.Now())
	}
}

// consoleCSRFKey is the key of the console's CSRF tokens, derived from the
// JWT secret: every node of a deployment holds the same, so a form drawn by
// one node is accepted by another behind a load balancer (docker/ runs two
// round robin), and forms survive a restart. Knowing the key forges a token
// only for a session cookie one already holds.
func consoleCSRFKey(jwtSecret string) []byte {
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte("seatledger console csrf key"))
	return m.Sum(nil)
}

// loopbackAddr reports whether the listen address addr (host:port) only
// accepts connections from this machine: a loopback IP or localhost. An
// empty host (":8080") listens on every interface.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serve runs the server until ctx is done, then shuts down gracefully:
// in-flight requests finish (up to ShutdownTimeout), then the hooks stop and
// the command handler, Redis and the store close. ready, if not nil, is
// called with the listening address.
//
// It listens first: an address in use fails before the data directory, the
// dev secrets or a store connection are created.
func serve(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer, ready func(addr string)) (err error) {
	logger := newLogger(cfg.LogFormat, stderr)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close() // closed already once served; this closes it on an error before
	addr := ln.Addr().String()
	logger.Info("starting", "addr", addr, "eventstore", redactURL(cfg.EventStore), "data_dir", cfg.DataDir)
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := a.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	cfg = a.deps.Config // with the secrets in use

	httpSrv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	printBanner(stdout, banner{
		Addr: addr, DataDir: cfg.DataDir, Dev: a.dev, Self: selfCommand(os.Args[0]),
		ContosoExists: tenantExists(ctx, a.deps.Store, "contoso"),
	})
	gogc, memLimit := gcSettings()
	logger.Info("listening", "addr", addr, "hold_period", cfg.HoldPeriod, "scheduler_interval", cfg.SchedulerInterval, "bulk_limit", cfg.BulkLimit,
		"gomaxprocs", runtime.GOMAXPROCS(0), "gogc", gogc, "gomemlimit", memLimit)

	served := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels(projections.ProfileLabel, profileHTTP), func(context.Context) { served <- httpSrv.Serve(ln) })
	if ready != nil {
		ready(addr)
	}
	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: waiting for in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		_ = httpSrv.Close()
		logger.Error("shutdown timed out; connections closed", "err", err)
	}
	<-served
	logger.Info("stopped")
	return nil
}

// tenantExists reports whether the tenant's stream has events (false when
// the store cannot tell).
func tenantExists(ctx context.Context, store eventstore.Store, tenant string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := store.StreamVersion(ctx, tenantstream.Name(tenant))
	return err == nil && v > 0
}

// embeddedSyncDelay maps SEATLEDGER_SYNC_DELAY to embedded.Options.SyncDelay,
// where 0 means the default: 0 or less configured means never wait.
func embeddedSyncDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// registerKurrentMetrics exports the KurrentDB store's supervisor counters:
// a snapshot that fails to save is otherwise silent (commands go on, loads
// get slower).
func registerKurrentMetrics(reg prometheus.Registerer, k *kurrentdb.Store) {
	counter := func(name, help string, v func(kurrentdb.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(k.Stats())) })
	}
	reg.MustRegister(
		counter("seatledger_eventstore_client_rebuilds_total", "KurrentDB clients rebuilt after one closed itself.", func(s kurrentdb.Stats) uint64 { return s.Rebuilds }),
		counter("seatledger_eventstore_client_panics_total", "KurrentDB client panics recovered.", func(s kurrentdb.Stats) uint64 { return s.Panics }),
		counter("seatledger_snapshot_failures_total", "Snapshots that failed to save (loads then read more events).", func(s kurrentdb.Stats) uint64 { return s.SnapshotFailures }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "seatledger_eventstore_down_seconds", Help: "How long the KurrentDB server has been unreachable (0: reachable)."},
			func() float64 { return k.Stats().Down.Seconds() }),
	)
}
