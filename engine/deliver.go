package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/notify"
)

// queueNotify is the River queue for push deliveries.
const queueNotify = "notify"

// deliverArgs is one push of one notification to one device. The kind string
// is stored in the database and must never change.
type deliverArgs struct {
	NotificationID uuid.UUID `json:"notification_id"`
	DeviceID       uuid.UUID `json:"device_id"`
	AlertID        uuid.UUID `json:"alert_id,omitzero"`
}

func (deliverArgs) Kind() string { return "notify.deliver" }

type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	e *Engine
}

// Timeout bounds one delivery attempt (providers' own timeouts are shorter).
func (w *deliverWorker) Timeout(*river.Job[deliverArgs]) time.Duration { return 30 * time.Second }

// NextRetry spaces transient failures exponentially: 2 s after the first
// attempt, doubling up to 10 minutes, with ±10 % jitter so that a provider
// outage does not end in a thundering herd.
func (w *deliverWorker) NextRetry(job *river.Job[deliverArgs]) time.Time {
	d := retryDelay(job.Attempt)
	jitter := time.Duration(rand.Int64N(int64(d/5))) - d/10
	return time.Now().Add(d + jitter)
}

// retryDelay is the backoff before the retry that follows attempt.
func retryDelay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 10 {
		return maxRetryDelay
	}
	return min(2*time.Second<<(attempt-1), maxRetryDelay)
}

const maxRetryDelay = 10 * time.Minute

// delivery is what a delivery job needs to know, loaded in one query.
type delivery struct {
	deviceID     uuid.UUID
	device       notify.Device
	enabled      bool
	typ          string
	urgency      notify.Urgency
	alertID      *uuid.UUID
	createdAt    time.Time
	itemCount    int
	alreadySent  bool
	attemptsMade int
}

// Work sends one push and records its outcome. It is idempotent: a job re-run
// after a crash finds the recorded success and stops; one that crashed between
// send and record re-sends with the same id and collapse id, so the device
// shows one banner, and the unique index on successful deliveries keeps the
// record to one.
//
// Retries are bounded by the attempts recorded in deliveries, not by River's
// attempt counter, which a snooze (Retry-After) does not advance: a provider
// answering 429 forever gets maxDeliveryAttempts requests, then the delivery
// is recorded failed. A retry that would fall after the message's TTL (the
// provider would drop it anyway) is not made either.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	e := w.e
	t0 := time.Now()
	defer func() { DebugTimes[3].Add(int64(time.Since(t0))) }()
	d, err := e.loadDelivery(ctx, job.Args)
	DebugTimes[0].Add(int64(time.Since(t0)))
	if errors.Is(err, ErrNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if d.alreadySent {
		return nil
	}
	platform := string(d.device.Platform)
	if !d.enabled {
		e.recordDelivery(ctx, job, d, outcome{name: "undeliverable", code: "device_disabled"})
		e.metrics.deliveries.WithLabelValues(platform, "undeliverable").Inc()
		e.checkUndelivered(ctx, job.Args.AlertID)
		return nil
	}
	msg := buildMessage(job.Args, d)
	t1 := time.Now()
	res, sendErr := e.senders.Send(ctx, d.device, msg)
	DebugTimes[1].Add(int64(time.Since(t1)))
	if sendErr == nil {
		t2 := time.Now()
		e.recordDelivery(ctx, job, d, outcome{name: "sent", status: res.Status, providerID: res.ProviderID})
		DebugTimes[2].Add(int64(time.Since(t2)))
		e.metrics.deliveries.WithLabelValues(platform, "sent").Inc()
		return nil
	}
	perr := notify.Classify(sendErr)
	o := outcome{status: perr.Status, code: perr.Code}
	if o.code == "" {
		o.code = perr.Kind.String()
	}
	wait := perr.RetryAfter
	if wait <= 0 {
		wait = retryDelay(job.Attempt)
	}
	switch {
	case errors.Is(sendErr, notify.ErrNotConfigured):
		o.name = "undeliverable"
	case perr.Kind == notify.Unregistered:
		o.name = "unregistered"
	case perr.Kind == notify.Permanent:
		o.name = "failed"
	case job.Attempt >= job.MaxAttempts || d.attemptsMade+1 >= maxDeliveryAttempts:
		o.name = "failed"
	case e.now().Add(wait).After(d.createdAt.Add(d.urgency.TTL())):
		o.name, o.code = "failed", "expired"
	default:
		o.name = "retrying"
	}
	e.metrics.deliveries.WithLabelValues(platform, o.name).Inc()
	e.log.WarnContext(ctx, "push delivery failed", "device_id", d.device.ID, "notification_id", job.Args.NotificationID,
		"platform", platform, "outcome", o.name, "status", perr.Status, "code", o.code, "attempt", d.attemptsMade+1)
	e.recordDelivery(ctx, job, d, o)
	switch o.name {
	case "unregistered":
		if err := e.disableDevice(ctx, d.deviceID, o.code); err != nil {
			return err
		}
		e.checkUndelivered(ctx, job.Args.AlertID)
		return nil
	case "failed", "undeliverable":
		e.checkUndelivered(ctx, job.Args.AlertID)
		return river.JobCancel(perr)
	}
	if perr.RetryAfter > 0 {
		return river.JobSnooze(perr.RetryAfter)
	}
	return perr
}

// buildMessage turns a notification into a PHI-free push: generic words, ids.
func buildMessage(args deliverArgs, d delivery) notify.Message {
	m := notify.Message{
		ID:      args.NotificationID.String(),
		Type:    d.typ,
		Urgency: d.urgency,
		Data:    map[string]string{"notification_id": args.NotificationID.String()},
	}
	if d.alertID != nil {
		m.CollapseID = d.alertID.String()
		m.Data["alert_id"] = d.alertID.String()
	}
	switch d.typ {
	case "safety":
		m.Title = "Your care team has been alerted"
		m.Body = "If you have chest pain or trouble breathing, call emergency services."
		m.CollapseID = ""
	case "catchup":
		// Only alerts are held for quiet hours (routing.go), so the count is
		// of alerts.
		noun := "alerts"
		if d.itemCount == 1 {
			noun = "alert"
		}
		m.Title = fmt.Sprintf("%d new %s while quiet hours were on", d.itemCount, noun)
		m.Body = "Open Tend to review them."
		m.Data["count"] = strconv.Itoa(d.itemCount)
	default:
		m.Title = fmt.Sprintf("New %s alert", d.urgency)
		m.Body = "Open Tend to review it."
	}
	return m
}

func (e *Engine) loadDelivery(ctx context.Context, args deliverArgs) (delivery, error) {
	var d delivery
	var platform string
	var p256dh, auth, topic *string
	err := e.pool.QueryRow(ctx, `SELECT d.id, d.platform, d.address, d.p256dh, d.auth, d.topic, d.sandbox, d.enabled,
			n.type, n.urgency, n.alert_id, n.created_at, coalesce(n.item_count, 0),
			EXISTS (SELECT 1 FROM deliveries x WHERE x.notification_id = n.id AND x.device_id = d.id AND x.outcome = 'sent'),
			(SELECT count(*) FROM deliveries x WHERE x.notification_id = n.id AND x.device_id = d.id)
		FROM notifications n, devices d WHERE n.id = $1 AND d.id = $2`, args.NotificationID, args.DeviceID).
		Scan(&d.deviceID, &platform, &d.device.Token, &p256dh, &auth, &topic, &d.device.Sandbox, &d.enabled,
			&d.typ, &d.urgency, &d.alertID, &d.createdAt, &d.itemCount, &d.alreadySent, &d.attemptsMade)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("delivery: %w", ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("load delivery: %w", err)
	}
	d.device.ID = d.deviceID.String()
	d.device.Platform = notify.Platform(platform)
	d.device.Topic = deref(topic)
	if d.device.Platform == notify.WebPush {
		d.device.Endpoint, d.device.Token = d.device.Token, ""
		d.device.P256dh, d.device.Auth = deref(p256dh), deref(auth)
	}
	if d.device.Platform == notify.APNs && d.device.Topic == "" {
		d.device.Topic = e.cfg.APNsTopic
	}
	return d, nil
}

type outcome struct {
	name       string
	status     int
	providerID string
	code       string
}

// recordDelivery stores one attempt's outcome. A failure to record is logged,
// not retried: the push itself already happened (or not), and re-sending to
// record it would page twice. A device's last_success_at is kept to the
// minute, so that a burst of pushes to one device does not queue on its row.
func (e *Engine) recordDelivery(ctx context.Context, job *river.Job[deliverArgs], d delivery, o outcome) {
	ctx = context.WithoutCancel(ctx)
	_, err := e.pool.Exec(ctx, `WITH ins AS (
			INSERT INTO deliveries (notification_id, device_id, job_id, attempt, outcome, provider_status, provider_id, error_code, created_at)
			VALUES ($1, $2, $3, $4, $5, nullif($6, 0), nullif($7, ''), nullif($8, ''), $9)
			ON CONFLICT (notification_id, device_id) WHERE outcome = 'sent' DO NOTHING
			RETURNING 1)
		UPDATE devices SET last_success_at = $9 WHERE id = $2 AND $5 = 'sent' AND EXISTS (SELECT 1 FROM ins)
			AND (last_success_at IS NULL OR last_success_at < $9 - interval '1 minute')`,
		job.Args.NotificationID, d.deviceID, job.ID, d.attemptsMade+1, o.name, o.status, o.providerID, o.code, e.now())
	if err != nil {
		e.log.ErrorContext(ctx, "record delivery", "notification_id", job.Args.NotificationID, "device_id", d.device.ID, "error", err)
	}
}

func (e *Engine) disableDevice(ctx context.Context, id uuid.UUID, reason string) error {
	if _, err := e.pool.Exec(ctx, `UPDATE devices SET enabled = false, disabled_reason = $2, updated_at = $3 WHERE id = $1`,
		id, reason, e.now()); err != nil {
		return fmt.Errorf("disable device: %w", err)
	}
	return nil
}

// checkUndelivered flags a critical alert that no device of anyone accepted:
// no successful delivery, and every delivery job of the alert has reached a
// final failure. Each job records its outcome before checking, so the last
// one to finish always sees the others' outcomes.
func (e *Engine) checkUndelivered(ctx context.Context, alertID uuid.UUID) {
	if alertID == uuid.Nil {
		return
	}
	tag, err := e.pool.Exec(context.WithoutCancel(ctx), `UPDATE alerts a SET undelivered = true
		WHERE a.id = $1 AND a.urgency = 'critical' AND NOT a.undelivered
		AND NOT EXISTS (SELECT 1 FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE n.alert_id = a.id AND n.type = 'alert' AND d.outcome = 'sent')
		AND (SELECT count(DISTINCT (d.notification_id, d.device_id)) FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE n.alert_id = a.id AND n.type = 'alert' AND d.outcome IN ('failed', 'unregistered', 'undeliverable'))
		>= (SELECT count(*) FROM river_job j JOIN notifications n ON n.id = (j.args->>'notification_id')::uuid
			WHERE j.kind = 'notify.deliver' AND j.args @> jsonb_build_object('alert_id', $1::text) AND n.type = 'alert')`, alertID)
	if err != nil {
		e.log.ErrorContext(ctx, "check undelivered", "alert_id", alertID, "error", err)
		return
	}
	if tag.RowsAffected() > 0 {
		e.metrics.undelivered.Inc()
		e.log.WarnContext(ctx, "critical alert reached no device", "alert_id", alertID)
	}
}

var DebugTimes [4]atomic.Int64
