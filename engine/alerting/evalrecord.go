package alerting

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rules"
)

// evalError is a rule that could not be evaluated on one reading.
type evalError struct {
	rules.EvalError
	readingID uuid.UUID
}

// recordEvalErrors stores rule evaluation errors in the ingest transaction
// (one statement), for admins to see with ListRuleErrors. The caller counts
// them in /metrics.
func (al *Service) recordEvalErrors(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, errs []evalError) error {
	if len(errs) == 0 {
		return nil
	}
	ruleIDs := make([]string, len(errs))
	versions := make([]int32, len(errs))
	readings := make([]*uuid.UUID, len(errs))
	texts := make([]string, len(errs))
	for i, ee := range errs {
		ruleIDs[i], versions[i], readings[i], texts[i] = ee.RuleID, int32(ee.Version), pg.NilIfZero(ee.readingID), EvalErrorText(ee.Err)
	}
	if _, err := tx.Exec(ctx, insertEvalErrorsSQL, patientID, ruleIDs, versions, readings, texts, al.now()); err != nil {
		return fmt.Errorf("record rule evaluation errors: %w", err)
	}
	return nil
}

// maxEvalErrorText bounds the stored error text.
const maxEvalErrorText = 300

// EvalErrorText describes an evaluation error without PHI. The rules
// package builds its own errors from the rule's text (an aggregate and its
// window: `avg("7d"): no readings in the window`), never from values; other
// errors (from the CEL interpreter) have their digits masked, since they
// could quote a value.
func EvalErrorText(err error) string {
	switch {
	case err == nil:
		return "evaluation failed"
	case errors.Is(err, rules.ErrNoHistory), errors.Is(err, rules.ErrNoBaseline):
		return text.Truncate(err.Error(), maxEvalErrorText)
	}
	s := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, err.Error())
	return text.Truncate(s, maxEvalErrorText)
}
