// Package delivery sends notifications: the River jobs that deliver one push
// to one device, their retry policy, quiet hours and the catch-up that ends
// them, and the undelivered flag of a critical alert that reached no device.
// Jobs are enqueued by whoever decides to notify (alerting), inside that use
// case's transaction, with Job and CatchupJob.
package delivery

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/metrics"
	"github.com/tendhealth/tend/notify"
)

// Config wires a Service.
type Config struct {
	Pool    *pgxpool.Pool
	Logger  *slog.Logger
	Now     func() time.Time
	Jobs    func() *river.Client[pgx.Tx]
	Senders notify.Senders
	Metrics *metrics.Set
	Audit   audit.Writer
	// APNsTopic is the default APNs topic for devices registered without one.
	APNsTopic string
	// OnUndelivered is called after a critical alert is flagged undelivered
	// (every delivery failed), to escalate it at once. Optional.
	OnUndelivered func(ctx context.Context, alertID uuid.UUID)
}

// Service delivers notifications.
type Service struct {
	pool      *pgxpool.Pool
	log       *slog.Logger
	now       func() time.Time
	jobs      func() *river.Client[pgx.Tx]
	senders   notify.Senders
	metrics   *metrics.Set
	audit     audit.Writer
	apnsTopic string
	onUndeliv func(ctx context.Context, alertID uuid.UUID)
}

// New builds a Service.
func New(c Config) *Service {
	return &Service{pool: c.Pool, log: c.Logger, now: c.Now, jobs: c.Jobs, senders: c.Senders, metrics: c.Metrics,
		audit: c.Audit, apnsTopic: c.APNsTopic, onUndeliv: c.OnUndelivered}
}

// Work runs the notify.deliver worker on a job row as River would (a retry,
// a snoozed job coming back, or a re-run after a crash): for tests and tools.
func (dl *Service) Work(ctx context.Context, row *rivertype.JobRow) error {
	var args deliverArgs
	if err := json.Unmarshal(row.EncodedArgs, &args); err != nil {
		return err
	}
	return (&deliverWorker{dl: dl}).Work(ctx, &river.Job[deliverArgs]{JobRow: row, Args: args})
}

// CatchUp sends user's catch-up notification now.
func (dl *Service) CatchUp(ctx context.Context, userID uuid.UUID) (uuid.UUID, error) {
	return dl.catchUp(ctx, userID)
}

// SweepHeld runs the periodic catch-up sweep now.
func (dl *Service) SweepHeld(ctx context.Context) (int, error) { return dl.sweepHeld(ctx) }

// RetryDelay is the delivery backoff after attempt.
func RetryDelay(attempt int) time.Duration { return retryDelay(attempt) }

// EnqueueDeliveries inserts one notify.deliver job per (notification,
// device) pair with COPY, for benchmarks that measure delivery alone.
func (dl *Service) EnqueueDeliveries(ctx context.Context, notifications, devices []uuid.UUID) error {
	jobs := make([]river.InsertManyParams, len(notifications))
	for i := range notifications {
		jobs[i] = river.InsertManyParams{Args: deliverArgs{NotificationID: notifications[i], DeviceID: devices[i]},
			InsertOpts: &river.InsertOpts{Queue: Queue, MaxAttempts: maxDeliveryAttempts}}
	}
	_, err := dl.jobs().InsertManyFast(ctx, jobs)
	return err
}
