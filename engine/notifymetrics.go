package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tendhealth/tend/notify"
)

// notifyMetrics are the Prometheus collectors of quiet hours and delivery
// outcomes that live in the database.
type notifyMetrics struct {
	held     prometheus.Counter
	catchups prometheus.Counter
	tooLarge *prometheus.CounterVec
}

func newNotifyMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) (*notifyMetrics, error) {
	m := &notifyMetrics{
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_notifications_held_total", Help: "Medium and low notifications held for a user's quiet hours.",
		}),
		catchups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_notifications_catchups_total", Help: "Catch-up notifications sent at the end of quiet hours.",
		}),
		tooLarge: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_push_payload_too_large_total",
			Help: "Pushes a provider refused as too large (HTTP 413): Tend's sizing error, not the device's.",
		}, []string{"platform"}),
	}
	for _, c := range []prometheus.Collector{m.held, m.catchups, m.tooLarge, &undeliveredCollector{pool: pool}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
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
	if err := c.pool.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE undelivered AND status <> 'resolved'`).Scan(&n); err != nil {
		ch <- prometheus.NewInvalidMetric(undeliveredDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(undeliveredDesc, prometheus.GaugeValue, float64(n))
}

// noteTooLarge counts and logs, at error level, a push refused as too large:
// the payload or its encoding outgrew what the provider accepts, which
// retrying or disabling the device cannot fix. It logs ids only.
func (e *Engine) noteTooLarge(ctx context.Context, sendErr error, platform, deviceID string, notificationID uuid.UUID) {
	if !errors.Is(sendErr, notify.ErrPayloadTooLarge) {
		return
	}
	e.notifyMetrics.tooLarge.WithLabelValues(platform).Inc()
	perr := notify.Classify(sendErr)
	e.log.ErrorContext(ctx, "push refused as too large: the payload outgrew the provider's limit",
		"platform", platform, "device_id", deviceID, "notification_id", notificationID,
		"status", perr.Status, "code", perr.Code)
}
