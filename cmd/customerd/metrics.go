package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partnerhub/customers/eventstore"
	"github.com/partnerhub/customers/eventstore/relay"
	"github.com/partnerhub/customers/projections"
)

// positionCollector reports where the log's consumers are, read at scrape
// time so the numbers are never stale: the store head, the relay's
// position, each projector's checkpoint, and how far each is behind.
type positionCollector struct {
	store      eventstore.Store
	relay      *relay.Relay
	projectors []projections.Projector
	log        *slog.Logger

	head, relayPos, relayLag, checkpoint, projectorLag *prometheus.Desc
}

func newPositionCollector(store eventstore.Store, r *relay.Relay, log *slog.Logger, projectors ...projections.Projector) *positionCollector {
	return &positionCollector{
		store: store, relay: r, projectors: projectors, log: log,
		head: prometheus.NewDesc("customers_store_head_position",
			"Highest event-log position a reader may have seen.", nil, nil),
		relayPos: prometheus.NewDesc("customers_relay_position",
			"Event-log position the relay has published up to.", nil, nil),
		relayLag: prometheus.NewDesc("customers_relay_lag_events",
			"Store head minus the relay's position.", nil, nil),
		checkpoint: prometheus.NewDesc("customers_projector_checkpoint_position",
			"Event-log position the projector has applied up to.", []string{"projector"}, nil),
		projectorLag: prometheus.NewDesc("customers_projector_lag_events",
			"Store head minus the projector's checkpoint.", []string{"projector"}, nil),
	}
}

func (c *positionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.head, c.relayPos, c.relayLag, c.checkpoint, c.projectorLag} {
		ch <- d
	}
}

// Collect leaves out what it cannot read rather than failing the scrape:
// the HTTP metrics stay visible while a database is down.
func (c *positionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	head, err := c.store.Head(ctx)
	if err != nil {
		c.log.Warn("metrics: reading the store head", "err", err)
		return
	}
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(c.head, head)
	pos := c.relay.Position()
	gauge(c.relayPos, pos)
	gauge(c.relayLag, max(head-pos, 0))
	for _, p := range c.projectors {
		cp, err := p.Checkpoint(ctx)
		if err != nil {
			c.log.Warn("metrics: reading a projector checkpoint", "projector", p.Name(), "err", err)
			continue
		}
		gauge(c.checkpoint, cp, p.Name())
		gauge(c.projectorLag, max(head-cp, 0), p.Name())
	}
}

// newCommandCounter counts command outcomes; commands.WithOutcomes feeds it.
func newCommandCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "customers_commands_total",
		Help: "Commands handled, by command and outcome (ok, invalid, not_found, conflict, precondition, canceled, error).",
	}, []string{"command", "outcome"})
}
