package engine

// Hooks for the external tests of push delivery and quiet hours
// (package engine_test): River's workers run these in production.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// WorkDelivery runs the notify.deliver worker on a job row as River would
// (a retry, a snoozed job coming back, or a re-run after a crash).
func (e *Engine) WorkDelivery(ctx context.Context, row *rivertype.JobRow) error {
	var args deliverArgs
	if err := json.Unmarshal(row.EncodedArgs, &args); err != nil {
		return err
	}
	return (&deliverWorker{e: e}).Work(ctx, &river.Job[deliverArgs]{JobRow: row, Args: args})
}

// CatchUp runs the notify.catchup work for a user now.
func (e *Engine) CatchUp(ctx context.Context, userID uuid.UUID) (uuid.UUID, error) {
	return e.catchUp(ctx, userID)
}

// SweepHeld runs the periodic catch-up sweep now.
func (e *Engine) SweepHeld(ctx context.Context) (int, error) { return e.sweepHeld(ctx) }

// QuietEnd reports whether t is inside the quiet window start–end of zone,
// and the window's end.
func QuietEnd(zone, start, end string, t time.Time) (time.Time, bool) {
	return newQuietWindow(zone, start, end).at(t)
}

// RetryDelay is the delivery backoff after attempt.
func RetryDelay(attempt int) time.Duration { return retryDelay(attempt) }

// EnqueueDeliveries inserts one notify.deliver job per (notification,
// device) pair with COPY, for benchmarks that measure delivery alone.
func (e *Engine) EnqueueDeliveries(ctx context.Context, notifications, devices []uuid.UUID) error {
	jobs := make([]river.InsertManyParams, len(notifications))
	for i := range notifications {
		jobs[i] = river.InsertManyParams{Args: deliverArgs{NotificationID: notifications[i], DeviceID: devices[i]},
			InsertOpts: &river.InsertOpts{Queue: queueNotify, MaxAttempts: maxDeliveryAttempts}}
	}
	_, err := e.river.InsertManyFast(ctx, jobs)
	return err
}

// Beat runs one heartbeat: record this process, rescue dead workers' jobs.
func (e *Engine) Beat(ctx context.Context) (int64, error) { return e.beat(ctx) }
