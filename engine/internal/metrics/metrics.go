// Package metrics holds the engine's Prometheus collectors, registered in one
// place; each use case counts into the ones it owns.
package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Set is the engine's Prometheus collectors.
type Set struct {
	Readings    prometheus.Counter
	Alerts      *prometheus.CounterVec
	Deliveries  *prometheus.CounterVec
	RuleErrors  *prometheus.CounterVec
	Undelivered prometheus.Counter
	GroupSize   prometheus.Histogram
	Rescued     prometheus.Counter
	Held        prometheus.Counter
	Catchups    prometheus.Counter
	TooLarge    *prometheus.CounterVec
	// BroadcastMessages counts broadcast copies appended (sent) or given up
	// (failed).
	BroadcastMessages *prometheus.CounterVec
	// AttachmentsUploaded counts attachments stored.
	AttachmentsUploaded prometheus.Counter
	// AttachmentIntegrity counts downloads refused because the stored
	// attachment did not decrypt or did not match its SHA-256.
	AttachmentIntegrity prometheus.Counter
	// RetentionDeleted counts rows retention deleted past their
	// organisation's period, by kind (readings, messages, attachments,
	// deliveries).
	RetentionDeleted *prometheus.CounterVec
	// RetentionBatches counts retention's committed batches (each one
	// transaction and one audit entry).
	RetentionBatches prometheus.Counter
}

// New creates the collectors and registers them, with the scrape-time
// collectors of the job queue and undelivered alerts, on reg.
func New(reg prometheus.Registerer, pool *pgxpool.Pool) (*Set, error) {
	m := &Set{
		Readings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_readings_ingested_total", Help: "Readings stored (duplicates excluded).",
		}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_alerts_opened_total", Help: "Alerts opened, by urgency.",
		}, []string{"urgency"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_push_deliveries_total", Help: "Push delivery attempts, by platform and outcome.",
		}, []string{"platform", "outcome"}),
		RuleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_rule_evaluation_errors_total", Help: "Rule evaluations that failed at run time, by rule.",
		}, []string{"rule_id"}),
		Undelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_alerts_undelivered_total", Help: "Critical alerts that reached no device.",
		}),
		Rescued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_jobs_rescued_total", Help: "Running jobs of crashed worker processes made available again (heartbeat rescue).",
		}),
		GroupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tend_ingest_group_size", Help: "Ingest requests committed per transaction (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
		Held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_notifications_held_total", Help: "Medium and low notifications held for a user's quiet hours.",
		}),
		Catchups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_notifications_catchups_total", Help: "Catch-up notifications sent at the end of quiet hours.",
		}),
		TooLarge: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_push_payload_too_large_total",
			Help: "Pushes a provider refused as too large (HTTP 413): Tend's sizing error, not the device's.",
		}, []string{"platform"}),
		BroadcastMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_broadcast_messages_total", Help: "Broadcast copies appended to patient threads (sent) or given up (failed).",
		}, []string{"status"}),
		AttachmentsUploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_attachments_uploaded_total", Help: "Attachments stored.",
		}),
		AttachmentIntegrity: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_attachment_integrity_failures_total",
			Help: "Attachment downloads refused: the stored bytes did not decrypt or did not match their SHA-256.",
		}),
		RetentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_retention_deleted_total", Help: "Rows deleted past their organisation's retention period, by kind.",
		}, []string{"kind"}),
		RetentionBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_retention_batches_total", Help: "Retention batches committed (one transaction and one audit entry each).",
		}),
	}
	for _, c := range []prometheus.Collector{m.Readings, m.Alerts, m.Deliveries, m.RuleErrors, m.Undelivered, m.GroupSize, m.Rescued,
		m.Held, m.Catchups, m.TooLarge, m.BroadcastMessages, m.AttachmentsUploaded, m.AttachmentIntegrity, m.RetentionDeleted, m.RetentionBatches, &queueCollector{pool: pool}, &undeliveredCollector{pool: pool}} {
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
	rows, err := c.pool.Query(ctx, queueDepthSQL)
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

// undeliveredCollector reports, at scrape time, the unresolved critical
// alerts that reached no device. Unlike tend_alerts_undelivered_total, a
// per-process counter, it is the same whichever process is scraped.
type undeliveredCollector struct{ pool *pgxpool.Pool }

var undeliveredDesc = prometheus.NewDesc("tend_alerts_undelivered",
	"Unresolved critical alerts flagged undelivered: no device of anyone accepted a push (at scrape time).", nil, nil)

func (c *undeliveredCollector) Describe(ch chan<- *prometheus.Desc) { ch <- undeliveredDesc }

func (c *undeliveredCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	if err := c.pool.QueryRow(ctx, undeliveredSQL).Scan(&n); err != nil {
		ch <- prometheus.NewInvalidMetric(undeliveredDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(undeliveredDesc, prometheus.GaugeValue, float64(n))
}
