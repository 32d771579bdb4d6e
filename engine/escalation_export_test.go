package engine

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Escalate runs escalation step of alert id now, as its immediate job would.
func (e *Engine) Escalate(ctx context.Context, id uuid.UUID, step int) (bool, error) {
	return e.alerting.Escalate(ctx, id, step)
}

// SweepEscalations runs the escalation sweep once, as its periodic job would.
func (e *Engine) SweepEscalations(ctx context.Context) (int, error) {
	return e.alerting.Sweep(ctx)
}

// ScheduleEscalations sets the due time of each alert's next escalation step.
func (e *Engine) ScheduleEscalations(ctx context.Context, alerts []uuid.UUID, at time.Time) error {
	return e.alerting.ScheduleEscalations(ctx, alerts, at)
}

// EnqueueEscalations inserts an immediate job for step of each alert.
func (e *Engine) EnqueueEscalations(ctx context.Context, alerts []uuid.UUID, step int) error {
	return e.alerting.EnqueueEscalations(ctx, alerts, step)
}
