package engine

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Escalate runs escalation step of alert id now, as its River job would.
func (e *Engine) Escalate(ctx context.Context, id uuid.UUID, step int) (bool, error) {
	return e.alerting.Escalate(ctx, id, step)
}

// EnqueueEscalations inserts step of each alert's escalation, due at at.
func (e *Engine) EnqueueEscalations(ctx context.Context, alerts []uuid.UUID, step int, at time.Time) error {
	return e.alerting.EnqueueEscalations(ctx, alerts, step, at)
}
