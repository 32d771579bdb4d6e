package rulestore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
)

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
// cursor of the next page ("" at the end). Admins only: of their
// organisation's patients (every patient's for Tend itself).
func (rs *Service) ListRuleErrors(ctx context.Context, a access.Actor, f RuleErrorFilter) ([]RuleEvalError, string, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return nil, "", err
	}
	before := int64(1<<63 - 1)
	if f.Cursor != "" {
		n, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", check.FieldError("cursor", "is not a cursor returned by this endpoint")
		}
		before = n
	}
	limit := pg.ClampLimit(f.Limit)
	var out []RuleEvalError
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, listRuleErrorsSQL, before, f.RuleID, limit+1, a.Role, a.UserID)
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
		return rs.audit.Write(ctx, tx, a, audit.Entry{Action: "rule_error.list", ObjectType: "rule_error", ObjectID: f.RuleID,
			Detail: map[string]any{"count": min(len(out), limit)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pg.Page(out, limit, func(last RuleEvalError) string { return strconv.FormatInt(last.ID, 10) })
	return out, next, nil
}
