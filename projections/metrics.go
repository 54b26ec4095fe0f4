package projections

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	position, head, lagEvents, lagSeconds, stopped *prometheus.GaugeVec
	events, errors, retries                        *prometheus.CounterVec
	flush                                          *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	g := func(name, help string) *prometheus.GaugeVec {
		return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "seatledger", Subsystem: "projection", Name: name, Help: help}, []string{"projection"}))
	}
	c := func(name, help string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "seatledger", Subsystem: "projection", Name: name, Help: help}, []string{"projection"}))
	}
	return &metrics{
		position:   g("position", "Last global position written to the read models (the checkpoint)."),
		head:       g("head_position", "Last global position of the event store."),
		lagEvents:  g("lag_events", "Events of the global log not yet written to the read models."),
		lagSeconds: g("lag_seconds", "Age of the oldest event not yet written to the read models."),
		stopped:    g("stopped", "1 when the projection stopped on an event it could not apply."),
		events:     c("events_total", "Events projected."),
		errors:     c("errors_total", "Events the projection could not apply after retries."),
		retries:    c("retries_total", "Retries of a failing event."),
		flush: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "seatledger", Subsystem: "projection",
			Name: "flush_seconds", Help: "Time to write one batch to Redis.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)},
			[]string{"projection"})),
	}
}

// register registers c, or returns the collector already registered under
// the same name (several projections share one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
