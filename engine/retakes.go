package engine

import (
	"context"

	"github.com/google/uuid"
)

// PendingRetakes lists the patient's open requests to measure again
// (alerting.Service.PendingRetakes).
func (e *Engine) PendingRetakes(ctx context.Context, a Actor, patientID uuid.UUID) ([]PendingRetake, error) {
	return e.alerting.PendingRetakes(ctx, a, patientID)
}
