package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seatledger/seatledger/api"
	"github.com/seatledger/seatledger/domain"
	"github.com/seatledger/seatledger/eventstore/kurrentdb"
	"github.com/seatledger/seatledger/eventstore/postgres"
	"github.com/seatledger/seatledger/readmodel"
)

// envVar documents one environment variable.
type envVar struct {
	Name, Default, Help string
}

// Environment variable names.
const (
	envAddr              = "SEATLEDGER_ADDR"
	envDataDir           = "SEATLEDGER_DATA_DIR"
	envEventStore        = "SEATLEDGER_EVENTSTORE"
	envRedisURL          = "SEATLEDGER_REDIS_URL"
	envJWTSecret         = "SEATLEDGER_JWT_SECRET"
	envOperatorToken     = "SEATLEDGER_OPERATOR_TOKEN"
	envHoldPeriod        = "SEATLEDGER_DATA_HOLD_PERIOD"
	envSchedulerInterval = "SEATLEDGER_SCHEDULER_INTERVAL"
	envBulkLimit         = "SEATLEDGER_BULK_LIMIT"
	envShutdownTimeout   = "SEATLEDGER_SHUTDOWN_TIMEOUT"
	envLogFormat         = "SEATLEDGER_LOG_FORMAT"
	envNodeID            = "SEATLEDGER_NODE_ID"
	envPurgeRate         = "SEATLEDGER_PURGE_RATE"
	envRateLimit         = "SEATLEDGER_RATE_LIMIT"
	envSyncDelay         = "SEATLEDGER_SYNC_DELAY"
)

// envVars is the configuration table (docs/API.md, README.md), in the order
// help prints it. TestConfigVariablesDocumented checks that every variable
// loadServeConfig reads is here, in README.md and in help.
var envVars = []envVar{
	{envAddr, "127.0.0.1:8080", "listen address"},
	{envDataDir, "./data", "embedded event store directory (also holds dev-secrets.json)"},
	{envEventStore, "embedded", "embedded, a KurrentDB connection string (kurrentdb://… / esdb://…), or postgres://… (a PostgreSQL event store several nodes can share; &schema=name picks the schema, &writers=N how many group commits a node runs at a time, default 1)"},
	{envRedisURL, "empty", "empty: an in-process Redis; else redis://host:port/db, or a Redis Cluster: redis://host1:port1?addr=host2:port2&addr=host3:port3"},
	{envJWTSecret, "generated at first start (dev only)", "HS256 secret of bearer tokens, at least 16 characters"},
	{envOperatorToken, "generated at first start (dev only)", "operator bearer token, at least 32 characters, not the JWT secret"},
	{envHoldPeriod, "720h", "how long held data is kept before purge (Go duration)"},
	{envSchedulerInterval, "1m", "how often the scheduler looks for due purges and subscription lifecycle steps (Go duration)"},
	{envBulkLimit, "20", "users per bulk request"},
	{envShutdownTimeout, "30s", "how long shutdown waits for in-flight requests"},
	{envLogFormat, "text", "log format: text or json"},
	{envNodeID, "the host name", "this node's name among several (its Redis Stream consumer); keep it stable across restarts"},
	{envPurgeRate, "5000", "most held-data purges sent per second, so a mass of due holds does not slow live commands"},
	{envSyncDelay, "500us", "embedded store: how long a commit may wait for concurrent appends to share its fsync (Go duration; a lone writer never waits; 0 or negative: never wait)"},
	{"GOGC", "800 (Go's own default is 100)", "Go's garbage collector target; serve sets 800 when it is unset (rarer collections, a heap up to ~9× the live data, within GOMEMLIMIT)"},
	{"GOMEMLIMIT", "80% of the memory (Go's own: none)", "Go's soft memory limit; serve sets 80% of the cgroup's memory limit, else of the machine's memory, when it is unset: the collector runs more often rather than grow the heap past it"},
	{"GOMAXPROCS", "4 × the CPUs (Go's default under a CPU quota)", "Go's count of threads running Go code at once; serve sets 4 per CPU when it is unset, so that threads blocked in fsync or waiting on the network do not leave a CPU idle; under a CPU quota it sees (/sys/fs/cgroup: cpu.max, cpu.cfs_quota_us) it keeps Go's default, as more threads would be throttled in bursts; set it in a container whose quota is set higher up"},
	{envRateLimit, "0 (off)", "requests per second per token (tenant and user), optionally with a burst: 20 or 20,40; over it: 429 with Retry-After; the operator token is not limited"},
}

// serveConfig is the configuration of `seatledger serve`.
type serveConfig struct {
	Addr              string
	DataDir           string
	EventStore        string
	RedisURL          string
	JWTSecret         string
	OperatorToken     string
	HoldPeriod        time.Duration
	SchedulerInterval time.Duration
	BulkLimit         int
	ShutdownTimeout   time.Duration
	LogFormat         string
	NodeID            string
	PurgeRate         float64
	RateLimit         string // "R" or "R,B"; see parseRateLimit
	SyncDelay         time.Duration

	// for `seatledger bench` only: embedded store without fsync
	noSync bool
	// byFlag holds the variables whose value a flag gave, as the flag's
	// name: an error about the value names what the user typed.
	byFlag map[string]string
}

// flagVars are the variables of serve's flags, by flag name.
var flagVars = map[string]string{
	"addr": envAddr, "data-dir": envDataDir, "eventstore": envEventStore, "redis-url": envRedisURL,
	"jwt-secret": envJWTSecret, "operator-token": envOperatorToken, "data-hold-period": envHoldPeriod,
	"scheduler-interval": envSchedulerInterval, "bulk-limit": envBulkLimit, "sync-delay": envSyncDelay,
	"shutdown-timeout": envShutdownTimeout, "log-format": envLogFormat, "node-id": envNodeID,
	"rate-limit": envRateLimit, "purge-rate": envPurgeRate,
}

// source is how the user gave the variable name's value: "--flag" when a
// flag set it, else the variable's name.
func (c *serveConfig) source(name string) string {
	if f, ok := c.byFlag[name]; ok {
		return f
	}
	return name
}

// configError is a bad configuration value: exit code 2.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func badValue(name, value, why string) error {
	return &configError{fmt.Sprintf("invalid %s=%q: %s", name, value, why)}
}

// loadServeConfig reads the environment (through getenv) and then the flags
// in args, which override it.
func loadServeConfig(args []string, getenv func(string) string, fs *flag.FlagSet) (serveConfig, error) {
	cfg := serveConfig{
		Addr: "127.0.0.1:8080", DataDir: "./data", EventStore: "embedded",
		HoldPeriod: 720 * time.Hour, SchedulerInterval: time.Minute, BulkLimit: 20,
		ShutdownTimeout: 30 * time.Second, LogFormat: "text", PurgeRate: 5000, SyncDelay: 500 * time.Microsecond,
	}
	if h, err := os.Hostname(); err == nil {
		cfg.NodeID = h
	}
	str := func(name string, dst *string) {
		if v, ok := lookup(getenv, name); ok {
			*dst = v
		}
	}
	var errs []error
	dur := func(name string, dst *time.Duration) {
		if v, ok := lookup(getenv, name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, badValue(name, v, "not a duration such as 720h or 1m"))
				return
			}
			*dst = d
		}
	}
	str(envAddr, &cfg.Addr)
	str(envDataDir, &cfg.DataDir)
	str(envEventStore, &cfg.EventStore)
	str(envRedisURL, &cfg.RedisURL)
	str(envJWTSecret, &cfg.JWTSecret)
	str(envOperatorToken, &cfg.OperatorToken)
	str(envLogFormat, &cfg.LogFormat)
	str(envNodeID, &cfg.NodeID)
	str(envRateLimit, &cfg.RateLimit)
	if v, ok := lookup(getenv, envPurgeRate); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, badValue(envPurgeRate, v, "not a number"))
		} else {
			cfg.PurgeRate = f
		}
	}
	dur(envHoldPeriod, &cfg.HoldPeriod)
	dur(envSchedulerInterval, &cfg.SchedulerInterval)
	dur(envShutdownTimeout, &cfg.ShutdownTimeout)
	dur(envSyncDelay, &cfg.SyncDelay)
	if v, ok := lookup(getenv, envBulkLimit); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, badValue(envBulkLimit, v, "not an integer"))
		} else {
			cfg.BulkLimit = n
		}
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}

	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address ("+envAddr+")")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory ("+envDataDir+")")
	fs.StringVar(&cfg.EventStore, "eventstore", cfg.EventStore, "embedded, a KurrentDB connection string (kurrentdb://… / esdb://…) or postgres://… ("+envEventStore+")")
	fs.StringVar(&cfg.RedisURL, "redis-url", cfg.RedisURL, "Redis URL; empty: in-process ("+envRedisURL+")")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", cfg.JWTSecret, "HS256 secret ("+envJWTSecret+"; prefer the variable: flags show in ps)")
	fs.StringVar(&cfg.OperatorToken, "operator-token", cfg.OperatorToken, "operator token ("+envOperatorToken+"; prefer the variable)")
	fs.DurationVar(&cfg.HoldPeriod, "data-hold-period", cfg.HoldPeriod, "held data kept before purge ("+envHoldPeriod+")")
	fs.DurationVar(&cfg.SchedulerInterval, "scheduler-interval", cfg.SchedulerInterval, "scheduler period: purges and subscription lifecycles ("+envSchedulerInterval+")")
	fs.IntVar(&cfg.BulkLimit, "bulk-limit", cfg.BulkLimit, "users per bulk request ("+envBulkLimit+")")
	fs.DurationVar(&cfg.SyncDelay, "sync-delay", cfg.SyncDelay, "embedded store: longest wait of a commit for concurrent appends ("+envSyncDelay+")")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "wait for in-flight requests on shutdown ("+envShutdownTimeout+")")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json ("+envLogFormat+")")
	fs.StringVar(&cfg.NodeID, "node-id", cfg.NodeID, "this node's stable name ("+envNodeID+")")
	fs.StringVar(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "requests/s per token[,burst]; 0 or empty: off ("+envRateLimit+")")
	fs.Float64Var(&cfg.PurgeRate, "purge-rate", cfg.PurgeRate, "held-data purges per second at most ("+envPurgeRate+")")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	fs.Visit(func(f *flag.Flag) {
		if name, ok := flagVars[f.Name]; ok {
			if cfg.byFlag == nil {
				cfg.byFlag = map[string]string{}
			}
			cfg.byFlag[name] = "--" + f.Name
		}
	})
	if fs.NArg() > 0 {
		return cfg, &configError{fmt.Sprintf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return cfg, cfg.validate()
}

// validPort reports whether port is a TCP port number (0: any free port)
// or a service name such as http.
func validPort(port string) bool {
	if port == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		_, err := net.LookupPort("tcp", port)
		return err == nil
	}
	return n >= 0 && n <= 65535
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := strings.TrimSpace(getenv(name))
	return v, v != ""
}

func (c *serveConfig) validate() error {
	var errs []error
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || !validPort(port) {
		errs = append(errs, badValue(c.source(envAddr), c.Addr, "want host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080"))
	}
	if c.DataDir == "" {
		errs = append(errs, badValue(c.source(envDataDir), c.DataDir, "must not be empty"))
	}
	if !isEmbedded(c.EventStore) && !isKurrent(c.EventStore) && !postgres.IsURL(c.EventStore) {
		errs = append(errs, badValue(c.source(envEventStore), redactURL(c.EventStore), "want embedded, kurrentdb://… / esdb://…, or postgres://…"))
	}
	if c.RedisURL != "" {
		if _, _, err := readmodel.ParseURL(c.RedisURL); err != nil {
			errs = append(errs, badValue(c.source(envRedisURL), redactURL(c.RedisURL), err.Error()))
		}
	}
	if c.HoldPeriod <= 0 {
		errs = append(errs, badValue(c.source(envHoldPeriod), c.HoldPeriod.String(), "must be positive"))
	}
	if c.SchedulerInterval < 10*time.Millisecond {
		errs = append(errs, badValue(c.source(envSchedulerInterval), c.SchedulerInterval.String(), "must be at least 10ms"))
	}
	if !(c.PurgeRate > 0) || math.IsInf(c.PurgeRate, 0) { // NaN too
		errs = append(errs, badValue(c.source(envPurgeRate), strconv.FormatFloat(c.PurgeRate, 'f', -1, 64), "must be a positive, finite number"))
	}
	if !domain.ValidID(c.NodeID) {
		errs = append(errs, badValue(c.source(envNodeID), c.NodeID, "use 1 to 128 characters of A-Z a-z 0-9 . _ @ -"))
	}
	if c.BulkLimit < 1 || c.BulkLimit > 10000 {
		errs = append(errs, badValue(c.source(envBulkLimit), strconv.Itoa(c.BulkLimit), "must be between 1 and 10000"))
	}
	if _, err := parseRateLimit(c.RateLimit); err != nil {
		errs = append(errs, badValue(c.source(envRateLimit), c.RateLimit, err.Error()))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, badValue(c.source(envShutdownTimeout), c.ShutdownTimeout.String(), "must be positive"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, badValue(c.source(envLogFormat), c.LogFormat, "want text or json"))
	}
	if err := checkSecrets(c.JWTSecret, c.OperatorToken); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// Least lengths of the secrets.
const (
	minJWTSecret     = 16
	minOperatorToken = 32
)

// checkSecrets checks the JWT secret and the operator token that are set
// (empty: not configured): long enough, and not the same value (a token
// signed with the secret must not also be the operator's key, and the
// other way round). The errors are configErrors naming the variable,
// without its value.
func checkSecrets(jwtSecret, operatorToken string) error {
	var errs []error
	if jwtSecret != "" && len(jwtSecret) < minJWTSecret {
		errs = append(errs, &configError{fmt.Sprintf("invalid %s: use at least %d characters", envJWTSecret, minJWTSecret)})
	}
	if operatorToken != "" && len(operatorToken) < minOperatorToken {
		errs = append(errs, &configError{fmt.Sprintf("invalid %s: use at least %d characters", envOperatorToken, minOperatorToken)})
	}
	if operatorToken != "" && operatorToken == jwtSecret {
		errs = append(errs, &configError{fmt.Sprintf("invalid %s: it must differ from %s", envOperatorToken, envJWTSecret)})
	}
	return errors.Join(errs...)
}

func isEmbedded(s string) bool { return s == "" || s == "embedded" }

func isKurrent(s string) bool { return kurrentdb.IsConnString(s) }

// redactURL hides the credentials of a connection string.
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || scheme > at {
		return s
	}
	return s[:scheme+3] + "***" + s[at:]
}

// parseRateLimit reads SEATLEDGER_RATE_LIMIT: "" or "0" (off), "R" (R
// requests per second per token, burst 2R) or "R,B" (burst B).
func parseRateLimit(v string) (api.RateLimit, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return api.RateLimit{}, nil
	}
	r, b, hasBurst := strings.Cut(v, ",")
	rate, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
	if err != nil || rate < 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		return api.RateLimit{}, errors.New("want requests per second, optionally with a burst: 20 or 20,40 (0: off)")
	}
	rl := api.RateLimit{PerSecond: rate}
	if hasBurst {
		n, err := strconv.Atoi(strings.TrimSpace(b))
		if err != nil || n < 1 {
			return api.RateLimit{}, errors.New("the burst after the comma must be a positive integer")
		}
		rl.Burst = n
	}
	return rl, nil
}
