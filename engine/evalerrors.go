package engine

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rules"
)

// evalError is a rule that could not be evaluated on one reading.
type evalError struct {
	rules.EvalError
	readingID uuid.UUID
}

// recordEvalErrors stores rule evaluation errors in the ingest transaction,
// for admins to see. Until they are stored (issue: rules engine) they are
// counted in /metrics and logged by the caller.
func (e *Engine) recordEvalErrors(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, errs []evalError) error {
	return nil
}
