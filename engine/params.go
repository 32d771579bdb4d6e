package engine

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// patientParams loads a patient's personalised rule parameters
// (rule id → param → value). Personalised parameters are not stored yet
// (issue: rules engine), so every patient uses the pack's and program's
// defaults.
func (e *Engine) patientParams(ctx context.Context, tx pgx.Tx, patientID uuid.UUID) (map[string]map[string]float64, error) {
	return nil, nil
}
