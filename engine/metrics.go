package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors.
type metrics struct {
	readings    prometheus.Counter
	alerts      *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	ruleErrors  *prometheus.CounterVec
	undelivered prometheus.Counter
	groupSize   prometheus.Histogram
	rescued     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) (*metrics, error) {
	m := &metrics{
		readings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_readings_ingested_total", Help: "Readings stored (duplicates excluded).",
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_alerts_opened_total", Help: "Alerts opened, by urgency.",
		}, []string{"urgency"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_push_deliveries_total", Help: "Push delivery attempts, by platform and outcome.",
		}, []string{"platform", "outcome"}),
		ruleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_rule_evaluation_errors_total", Help: "Rule evaluations that failed at run time, by rule.",
		}, []string{"rule_id"}),
		undelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_alerts_undelivered_total", Help: "Critical alerts that reached no device.",
		}),
		rescued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_jobs_rescued_total", Help: "Running jobs of crashed worker processes made available again (heartbeat rescue).",
		}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tend_ingest_group_size", Help: "Ingest requests committed per transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
	}
	for _, c := range []prometheus.Collector{m.readings, m.alerts, m.deliveries, m.ruleErrors, m.undelivered, m.groupSize, m.rescued, &queueCollector{pool: pool}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// queueCollector reports River's job counts by queue and state at scrape time.
type queueCollector struct{ pool *pgxpool.Pool }

var queueDepthDesc = prometheus.NewDesc("tend_jobs", "River jobs by queue and state (at scrape time).",
	[]string{"queue", "state"}, nil)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDepthDesc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.pool.Query(ctx, `SELECT queue, state::text, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running', 'pending') GROUP BY 1, 2`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var q, s string
		var n int64
		if err := rows.Scan(&q, &s, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n), q, s)
	}
}
