package api

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seatledger/seatledger/commands"
	"github.com/seatledger/seatledger/eventstore"
)

// Metrics are the Prometheus metrics of the HTTP layer and the command side.
// It implements commands.Observer: pass it as commands.Config.Observer.
type Metrics struct {
	httpDuration    *prometheus.HistogramVec
	commandsTotal   *prometheus.CounterVec
	commandDuration *prometheus.HistogramVec
	appendDuration  *prometheus.HistogramVec
	appendedEvents  prometheus.Counter
}

var _ commands.Observer = (*Metrics)(nil)

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered anywhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "seatledger", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by route, method and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
		commandsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "seatledger", Subsystem: "commands", Name: "total",
			Help: "Commands handled by type and outcome (ok, a domain error code, conflict, unavailable, error).",
		}, []string{"command", "outcome"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "seatledger", Subsystem: "commands", Name: "duration_seconds",
			Help:    "Command latency (load, decide, append) by type.",
			Buckets: prometheus.DefBuckets,
		}, []string{"command"}),
		appendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "seatledger", Subsystem: "eventstore", Name: "append_duration_seconds",
			Help:    "Event store append latency by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		appendedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seatledger", Subsystem: "eventstore", Name: "appended_events_total",
			Help: "Events appended to the event store.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.httpDuration, m.commandsTotal, m.commandDuration, m.appendDuration, m.appendedEvents)
	}
	return m
}

// CommandDone implements commands.Observer.
func (m *Metrics) CommandDone(name, outcome string, d time.Duration) {
	m.commandsTotal.WithLabelValues(name, outcome).Inc()
	m.commandDuration.WithLabelValues(name).Observe(d.Seconds())
}

// AppendDone implements commands.Observer.
func (m *Metrics) AppendDone(events int, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, eventstore.ErrConflict):
		outcome = "conflict"
	case errors.Is(err, eventstore.ErrUnavailable):
		outcome = "unavailable"
	default:
		outcome = "error"
	}
	m.appendDuration.WithLabelValues(outcome).Observe(d.Seconds())
	if err == nil {
		m.appendedEvents.Add(float64(events))
	}
}
