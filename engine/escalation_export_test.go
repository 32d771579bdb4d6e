package engine

import (
	"context"

	"github.com/google/uuid"
)

// Escalate runs escalation step of alert id now, as its River job would.
func (e *Engine) Escalate(ctx context.Context, id uuid.UUID, step int) (bool, error) {
	return e.alerting.Escalate(ctx, id, step)
}
