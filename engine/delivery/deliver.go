package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rpm"
)

// Queue is the River queue for push deliveries.
const Queue = "notify"

// deliverArgs is one push of one notification to one device. The kind string
// is stored in the database and must never change.
type deliverArgs struct {
	NotificationID uuid.UUID `json:"notification_id"`
	DeviceID       uuid.UUID `json:"device_id"`
	AlertID        uuid.UUID `json:"alert_id,omitzero"`
}

func (deliverArgs) Kind() string { return "notify.deliver" }

// deliverWorker works notify.deliver jobs. River calls one instance from
// all its workers, which share its load and record batches.
type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	dl *Service

	once sync.Once
	b    *deliveryBatches
}

// Timeout bounds one delivery attempt (providers' own timeouts are shorter).
func (w *deliverWorker) Timeout(*river.Job[deliverArgs]) time.Duration { return 30 * time.Second }

// NextRetry spaces transient failures exponentially: 2 s after the first
// attempt, doubling up to 10 minutes, with ±10 % jitter so that a provider
// outage does not end in a thundering herd.
func (w *deliverWorker) NextRetry(job *river.Job[deliverArgs]) time.Time {
	d := retryDelay(job.Attempt)
	jitter := time.Duration(rand.Int64N(int64(d/5))) - d/10
	return w.dl.now().Add(d + jitter)
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
	// reminderKind is what a reminder is for: "medication" or a vital kind.
	reminderKind string
	// messageID and threadID name the message a message push is about;
	// messageCount is how many of a catch-up's items are messages.
	messageID, threadID *uuid.UUID
	messageCount        int
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
	dl := w.dl
	d, err := w.load(ctx, job.Args, firstRun(job))
	if errors.Is(err, access.ErrNotFound) {
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
		w.record(ctx, job, d, outcome{name: "undeliverable", code: "device_disabled"})
		dl.metrics.Deliveries.WithLabelValues(platform, "undeliverable").Inc()
		dl.checkUndelivered(ctx, job.Args.AlertID)
		return nil
	}
	msg := buildMessage(job.Args, d)
	res, sendErr := dl.senders.Send(ctx, d.device, msg)
	if sendErr == nil {
		w.record(ctx, job, d, outcome{name: "sent", status: res.Status, providerID: res.ProviderID})
		dl.metrics.Deliveries.WithLabelValues(platform, "sent").Inc()
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
	case dl.now().Add(wait).After(d.createdAt.Add(d.urgency.TTL())):
		o.name, o.code = "failed", "expired"
	default:
		o.name = "retrying"
	}
	dl.metrics.Deliveries.WithLabelValues(platform, o.name).Inc()
	dl.noteTooLarge(ctx, sendErr, platform, d.device.ID, job.Args.NotificationID)
	dl.log.WarnContext(ctx, "push delivery failed", "device_id", d.device.ID, "notification_id", job.Args.NotificationID,
		"platform", platform, "outcome", o.name, "status", perr.Status, "code", o.code, "attempt", d.attemptsMade+1)
	w.record(ctx, job, d, o)
	switch o.name {
	case "unregistered":
		if err := dl.disableDevice(ctx, d.deviceID, o.code); err != nil {
			return err
		}
		dl.checkUndelivered(ctx, job.Args.AlertID)
		return nil
	case "failed", "undeliverable":
		dl.checkUndelivered(ctx, job.Args.AlertID)
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
	case "retake":
		// Asked when a single reading crossed a threshold: nothing about the
		// reading itself travels.
		m.Title = "Please measure again"
		m.Body = "Rest for a few minutes, then take the measurement again in Tend."
	case "measure":
		// Asked when a reported symptom calls for a reading: neither the
		// symptom nor the vital sign travels (the report's answer names the
		// kind to measure).
		m.Title = "Please take a reading now"
		m.Body = "Open Tend and take the measurement you were asked for."
	case "reminder":
		// Package reminder: the kind of reminder only, never the medication.
		m.Title, m.Body = reminderText(d.reminderKind), "Open Tend to confirm."
	case "message", "care_team_message":
		// Generic words only: never the text, nor who wrote it.
		m.Title, m.Body = "New message", "Open Tend to read it."
		if d.typ == "care_team_message" {
			m.Title = "New message from your care team"
		}
		if d.messageID != nil {
			m.CollapseID = d.messageID.String()
			m.Data["message_id"] = d.messageID.String()
		}
		if d.threadID != nil {
			m.Data["thread_id"] = d.threadID.String()
		}
	case "catchup":
		// Alerts and messages are held for quiet hours (routing.go,
		// message.go): the count says which.
		m.Title = catchupTitle(d.itemCount-d.messageCount, d.messageCount)
		m.Body = "Open Tend to review them."
		m.Data["count"] = strconv.Itoa(d.itemCount)
	default:
		m.Title = fmt.Sprintf("New %s alert", d.urgency)
		m.Body = "Open Tend to review it."
	}
	return m
}

// loadReq is one delivery to load in a batch.
type loadReq struct {
	args deliverArgs
	// fresh says the job runs for the first time: the delivery has no
	// history to load.
	fresh bool
	d     delivery
	found bool
}

// firstRun reports whether job runs for the first time: River has fetched
// it once (a retry, a snoozed job coming back and a job rescued after a
// crash were fetched before). Only such a job can skip loading its
// delivery's history: each (notification, device) pair has one job.
func firstRun(job *river.Job[deliverArgs]) bool {
	return job.Attempt == 1 && len(job.AttemptedBy) == 1
}

// loadDeliveries loads a batch of deliveries in one query.
func (dl *Service) loadDeliveries(ctx context.Context, reqs []*loadReq) error {
	nIDs, dIDs, fresh := make([]uuid.UUID, len(reqs)), make([]uuid.UUID, len(reqs)), make([]bool, len(reqs))
	for i, r := range reqs {
		nIDs[i], dIDs[i], fresh[i] = r.args.NotificationID, r.args.DeviceID, r.fresh
	}
	// Each LATERAL part is an index lookup per delivery (LIMIT 1 and the
	// aggregate keep the planner from turning them into scans of whole
	// tables, which it would for a batch on stale statistics).
	rows, err := dl.pool.Query(ctx, loadDeliveriesSQL, nIDs, dIDs, fresh)
	if err != nil {
		return fmt.Errorf("load deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int64
		var d delivery
		var platform string
		var p256dh, auth, topic *string
		if err := rows.Scan(&i, &d.deviceID, &platform, &d.device.Token, &p256dh, &auth, &topic, &d.device.Sandbox, &d.enabled,
			&d.typ, &d.urgency, &d.alertID, &d.createdAt, &d.itemCount, &d.alreadySent, &d.attemptsMade, &d.reminderKind,
			&d.messageID, &d.threadID, &d.messageCount); err != nil {
			return fmt.Errorf("load deliveries: %w", err)
		}
		d.device.ID = d.deviceID.String()
		d.device.Platform = notify.Platform(platform)
		d.device.Topic = pg.Deref(topic)
		if d.device.Platform == notify.WebPush {
			d.device.Endpoint, d.device.Token = d.device.Token, ""
			d.device.P256dh, d.device.Auth = pg.Deref(p256dh), pg.Deref(auth)
		}
		if d.device.Platform == notify.APNs && d.device.Topic == "" {
			d.device.Topic = dl.apnsTopic
		}
		reqs[i-1].d, reqs[i-1].found = d, true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load deliveries: %w", err)
	}
	return nil
}

// load loads one delivery, batched with the other workers' loads; fresh
// skips its history (see firstRun).
func (w *deliverWorker) load(ctx context.Context, args deliverArgs, fresh bool) (delivery, error) {
	r := &loadReq{args: args, fresh: fresh}
	if err := w.batches().loads.Do(ctx, r); err != nil {
		return delivery{}, err
	}
	if !r.found {
		return delivery{}, fmt.Errorf("delivery: %w", access.ErrNotFound)
	}
	return r.d, nil
}

type outcome struct {
	name       string
	status     int
	providerID string
	code       string
}

// recordReq is one attempt's outcome to record in a batch.
type recordReq struct {
	notificationID, deviceID uuid.UUID
	jobID                    int64
	attempt                  int
	o                        outcome
	at                       time.Time
}

// recordDeliveries stores a batch of outcomes in one statement. The unique
// index on successful deliveries keeps a re-sent success to one record. A
// device's last_success_at is kept to the minute, and a device row another
// batch holds is skipped rather than waited for: concurrent batches neither
// queue nor deadlock on a busy device. If the batch fails all the same, each
// outcome is recorded on its own, so one bad row loses no other.
func (dl *Service) recordDeliveries(ctx context.Context, reqs []*recordReq) error {
	err := dl.insertDeliveries(ctx, reqs)
	if err == nil || len(reqs) == 1 {
		return err
	}
	dl.log.WarnContext(ctx, "record deliveries: batch failed, recording one by one", "deliveries", len(reqs), "error", err)
	var errs []error
	for _, r := range reqs {
		if err := dl.insertDeliveries(ctx, []*recordReq{r}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (dl *Service) insertDeliveries(ctx context.Context, reqs []*recordReq) error {
	n := len(reqs)
	var (
		nIDs, dIDs        = make([]uuid.UUID, n), make([]uuid.UUID, n)
		jobs              = make([]int64, n)
		attempts, status  = make([]int32, n), make([]int32, n)
		names, pids, code = make([]string, n), make([]string, n), make([]string, n)
		ats               = make([]time.Time, n)
	)
	for i, r := range reqs {
		nIDs[i], dIDs[i], jobs[i], attempts[i] = r.notificationID, r.deviceID, r.jobID, int32(r.attempt)
		names[i], status[i], pids[i], code[i], ats[i] = r.o.name, int32(r.o.status), r.o.providerID, r.o.code, r.at
	}
	_, err := dl.pool.Exec(ctx, insertDeliveriesSQL, nIDs, dIDs, jobs, attempts, names, status, pids, code, ats)
	if err != nil {
		return fmt.Errorf("record deliveries: %w", err)
	}
	return nil
}

// record stores one attempt's outcome, batched with the other workers'. A
// failure to record is logged, not retried: the push itself already happened
// (or not), and re-sending to record it would page twice.
func (w *deliverWorker) record(ctx context.Context, job *river.Job[deliverArgs], d delivery, o outcome) {
	dl := w.dl
	r := &recordReq{notificationID: job.Args.NotificationID, deviceID: d.deviceID, jobID: job.ID, attempt: d.attemptsMade + 1, o: o, at: dl.now()}
	if err := w.batches().records.Do(context.WithoutCancel(ctx), r); err != nil {
		dl.log.ErrorContext(ctx, "record delivery", "notification_id", job.Args.NotificationID, "device_id", d.device.ID, "error", err)
	}
}

// deliveryBatches are a worker's load and record batchers: a few statements
// in flight at once, each for up to 200 deliveries.
type deliveryBatches struct {
	loads   pg.Batcher[loadReq]
	records pg.Batcher[recordReq]
}

func (w *deliverWorker) batches() *deliveryBatches {
	w.once.Do(func() {
		w.b = &deliveryBatches{
			loads:   pg.Batcher[loadReq]{MaxRunning: 4, MaxBatch: 200, Run: w.dl.loadDeliveries},
			records: pg.Batcher[recordReq]{MaxRunning: 4, MaxBatch: 200, Run: w.dl.recordDeliveries},
		}
	})
	return w.b
}

func (dl *Service) disableDevice(ctx context.Context, id uuid.UUID, reason string) error {
	if _, err := dl.pool.Exec(ctx, disableDeviceSQL, id, reason, dl.now()); err != nil {
		return fmt.Errorf("disable device: %w", err)
	}
	return nil
}

// checkUndelivered flags a critical alert that no device of anyone accepted:
// no successful delivery, and every delivery job of the alert has reached a
// final failure. Each job records its outcome before checking, so the last
// one to finish always sees the others' outcomes.
func (dl *Service) checkUndelivered(ctx context.Context, alertID uuid.UUID) {
	if alertID == uuid.Nil {
		return
	}
	tag, err := dl.pool.Exec(context.WithoutCancel(ctx), markAlertUndeliveredSQL, alertID)
	if err != nil {
		dl.log.ErrorContext(ctx, "check undelivered", "alert_id", alertID, "error", err)
		return
	}
	if tag.RowsAffected() > 0 {
		dl.metrics.Undelivered.Inc()
		dl.log.WarnContext(ctx, "critical alert reached no device", "alert_id", alertID)
		if dl.onUndeliv != nil {
			dl.onUndeliv(context.WithoutCancel(ctx), alertID)
		}
	}
}

// Job is the delivery job of notification to one device, for an alert
// (uuid.Nil for none) of urgency: on the notify queue, most urgent first.
func Job(notification, device, alert uuid.UUID, u rpm.Urgency) river.InsertManyParams {
	return river.InsertManyParams{
		Args:       deliverArgs{NotificationID: notification, DeviceID: device, AlertID: alert},
		InsertOpts: deliverOpts(u),
	}
}

// deliverOpts puts deliveries on the notify queue, most urgent first.
func deliverOpts(u rpm.Urgency) *river.InsertOpts {
	return &river.InsertOpts{Queue: Queue, Priority: 5 - u.Rank(), MaxAttempts: maxDeliveryAttempts}
}

// maxDeliveryAttempts bounds the attempts of one delivery, counted from its
// recorded outcomes (snoozes included): with deliverWorker.NextRetry's
// backoff, about 40 minutes of retries.
const maxDeliveryAttempts = 12

// reminderText is a reminder's generic title: "medication" or the vital
// kind to measure.
func reminderText(kind string) string {
	switch kind {
	case "medication":
		return "Time for your medication"
	case "":
		return "Time for your reminder"
	case "spo2":
		return "Time to check your oxygen level"
	}
	return "Time to check your " + strings.ReplaceAll(kind, "_", " ")
}

// catchupTitle is a catch-up's title for its held alerts and messages.
func catchupTitle(alerts, messages int) string {
	plural := func(n int, noun string) string {
		if n == 1 {
			return "1 new " + noun
		}
		return fmt.Sprintf("%d new %ss", n, noun)
	}
	switch {
	case messages == 0:
		return plural(alerts, "alert") + " while quiet hours were on"
	case alerts <= 0:
		return plural(messages, "message") + " while quiet hours were on"
	}
	return plural(alerts, "alert") + " and " + plural(messages, "message") + " while quiet hours were on"
}
