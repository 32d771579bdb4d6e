package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
func (e *Engine) recordEvalErrors(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, errs []evalError) error {
	if len(errs) == 0 {
		return nil
	}
	ruleIDs := make([]string, len(errs))
	versions := make([]int32, len(errs))
	readings := make([]*uuid.UUID, len(errs))
	texts := make([]string, len(errs))
	for i, ee := range errs {
		ruleIDs[i], versions[i], readings[i], texts[i] = ee.RuleID, int32(ee.Version), nilIfZero(ee.readingID), evalErrorText(ee.Err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rule_eval_errors (rule_id, rule_version, patient_id, reading_id, error, at)
		SELECT r, v, $1, d, t, $6 FROM unnest($2::text[], $3::int[], $4::uuid[], $5::text[]) AS x(r, v, d, t)`,
		patientID, ruleIDs, versions, readings, texts, e.now()); err != nil {
		return fmt.Errorf("record rule evaluation errors: %w", err)
	}
	return nil
}

// maxEvalErrorText bounds the stored error text.
const maxEvalErrorText = 300

// evalErrorText describes an evaluation error without PHI. The rules
// package builds its own errors from the rule's text (an aggregate and its
// window: `avg("7d"): no readings in the window`), never from values; other
// errors (from the CEL interpreter) have their digits masked, since they
// could quote a value.
func evalErrorText(err error) string {
	switch {
	case err == nil:
		return "evaluation failed"
	case errors.Is(err, rules.ErrNoHistory), errors.Is(err, rules.ErrNoBaseline):
		return truncateText(err.Error(), maxEvalErrorText)
	}
	s := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, err.Error())
	return truncateText(s, maxEvalErrorText)
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// RuleEvalError is a stored rule evaluation error.
type RuleEvalError struct {
	ID          int64      `json:"id"`
	RuleID      string     `json:"rule_id"`
	RuleVersion int        `json:"rule_version"`
	PatientID   uuid.UUID  `json:"patient_id"`
	ReadingID   *uuid.UUID `json:"reading_id"`
	Error       string     `json:"error"`
	At          time.Time  `json:"at"`
}

// RuleErrorFilter selects evaluation errors, newest first.
type RuleErrorFilter struct {
	// RuleID restricts the list to one rule; empty means every rule.
	RuleID string
	Cursor string
	Limit  int
}

// ListRuleErrors returns rule evaluation errors, newest first, and the
// cursor of the next page ("" at the end). Admins only.
func (e *Engine) ListRuleErrors(ctx context.Context, a Actor, f RuleErrorFilter) ([]RuleEvalError, string, error) {
	if err := forbid(a, RoleAdmin); err != nil {
		return nil, "", err
	}
	before := int64(1<<63 - 1)
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", fieldError("cursor", "is not a cursor returned by this endpoint")
		}
		before = n
	}
	limit := clampLimit(f.Limit)
	var out []RuleEvalError
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, rule_id, rule_version, patient_id, reading_id, error, at FROM rule_eval_errors
			WHERE id < $1 AND ($2 = '' OR rule_id = $2) ORDER BY id DESC LIMIT $3`, before, f.RuleID, limit+1)
		if err != nil {
			return fmt.Errorf("list rule errors: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RuleEvalError, error) {
			var x RuleEvalError
			err := r.Scan(&x.ID, &x.RuleID, &x.RuleVersion, &x.PatientID, &x.ReadingID, &x.Error, &x.At)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("list rule errors: %w", err)
		}
		// The list names patients and readings: its reading is audited.
		return e.audit(ctx, tx, a, Audit{Action: "rule_error.list", ObjectType: "rule_error", ObjectID: f.RuleID,
			Detail: map[string]any{"count": min(len(out), limit)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := page(out, limit, func(last RuleEvalError) string { return strconv.FormatInt(last.ID, 10) })
	return out, next, nil
}
