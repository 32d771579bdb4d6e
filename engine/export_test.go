package engine

// Hooks for the external tests (package engine_test): River's workers run
// these in production.

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tendhealth/tend/engine/delivery"
)

// River is the engine's River client.
func (e *Engine) River() *river.Client[pgx.Tx] { return e.river }

// WorkDelivery runs the notify.deliver worker on a job row as River would.
func (e *Engine) WorkDelivery(ctx context.Context, row *rivertype.JobRow) error {
	return e.delivery.Work(ctx, row)
}

// CatchUp runs the notify.catchup work for a user now.
func (e *Engine) CatchUp(ctx context.Context, userID uuid.UUID) (uuid.UUID, error) {
	return e.delivery.CatchUp(ctx, userID)
}

// SweepHeld runs the periodic catch-up sweep now.
func (e *Engine) SweepHeld(ctx context.Context) (int, error) { return e.delivery.SweepHeld(ctx) }

// QuietEnd reports whether t is inside the quiet window start–end of zone,
// and the window's end.
func QuietEnd(zone, start, end string, t time.Time) (time.Time, bool) {
	return delivery.QuietUntil(zone, start, end, t)
}

// RetryDelay is the delivery backoff after attempt.
func RetryDelay(attempt int) time.Duration { return delivery.RetryDelay(attempt) }

// EnqueueDeliveries inserts one notify.deliver job per (notification,
// device) pair with COPY, for benchmarks that measure delivery alone.
func (e *Engine) EnqueueDeliveries(ctx context.Context, notifications, devices []uuid.UUID) error {
	return e.delivery.EnqueueDeliveries(ctx, notifications, devices)
}

// Beat runs one heartbeat: record this process, rescue dead workers' jobs.
func (e *Engine) Beat(ctx context.Context) (int64, error) { return e.heartbeat.Beat(ctx) }

// RetakeDeadline runs the retake deadline job of retake id now.
func (e *Engine) RetakeDeadline(ctx context.Context, id uuid.UUID) error {
	return e.alerting.RetakeDeadline(ctx, id)
}
