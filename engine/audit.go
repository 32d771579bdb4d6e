package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Audit describes one read or write of PHI (or of security-relevant data).
type Audit struct {
	Action     string // e.g. "reading.create", "patient.read"
	PatientID  uuid.UUID
	ObjectType string
	ObjectID   string
	Detail     map[string]any // ids and counts only, never PHI values
}

const auditSQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// audit appends an audit entry in tx, so the entry commits or rolls back with
// the access it records. Every use case that touches PHI calls it.
func (e *Engine) audit(ctx context.Context, tx pgx.Tx, a Actor, entry Audit) error {
	if _, err := tx.Exec(ctx, auditSQL, auditArgs(a, entry, e.now())...); err != nil {
		return fmt.Errorf("audit %s: %w", entry.Action, err)
	}
	return nil
}

// queueAudit adds the audit insert to a batch (same transaction, no extra
// round trip).
func (e *Engine) queueAudit(b *pgx.Batch, a Actor, entry Audit) {
	b.Queue(auditSQL, auditArgs(a, entry, e.now())...)
}

func auditArgs(a Actor, entry Audit, now time.Time) []any {
	var actor, patient *uuid.UUID
	if a.UserID != uuid.Nil {
		actor = &a.UserID
	}
	if entry.PatientID != uuid.Nil {
		patient = &entry.PatientID
	}
	var obj *string
	if entry.ObjectID != "" {
		obj = &entry.ObjectID
	}
	var detail any
	if entry.Detail != nil {
		detail = entry.Detail
	}
	return []any{now, actor, string(a.Role), entry.Action, patient, entry.ObjectType, obj, a.RequestID, detail}
}

// AuditEntry is a stored audit entry.
type AuditEntry struct {
	ID         int64          `json:"id"`
	At         time.Time      `json:"at"`
	ActorID    *uuid.UUID     `json:"actor_id"`
	ActorRole  string         `json:"actor_role"`
	Action     string         `json:"action"`
	PatientID  *uuid.UUID     `json:"patient_id"`
	ObjectType string         `json:"object_type"`
	ObjectID   *string        `json:"object_id"`
	RequestID  *string        `json:"request_id"`
	Detail     map[string]any `json:"detail,omitempty"`
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	PatientID uuid.UUID
	After     int64 // cursor: entries with a larger id
	Limit     int
}

// ListAudit returns audit entries in order (admins only).
func (e *Engine) ListAudit(ctx context.Context, a Actor, f AuditFilter) ([]AuditEntry, string, error) {
	if err := forbid(a, RoleAdmin); err != nil {
		return nil, "", err
	}
	f.Limit = clampLimit(f.Limit)
	var patient *uuid.UUID
	if f.PatientID != uuid.Nil {
		patient = &f.PatientID
	}
	rows, err := e.pool.Query(ctx, `SELECT id, at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail
		FROM audit_entries WHERE id > $1 AND ($2::uuid IS NULL OR patient_id = $2) ORDER BY id LIMIT $3`, f.After, patient, f.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var x AuditEntry
		err := r.Scan(&x.ID, &x.At, &x.ActorID, &x.ActorRole, &x.Action, &x.PatientID, &x.ObjectType, &x.ObjectID, &x.RequestID, &x.Detail)
		return x, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	out, next := page(out, f.Limit, func(last AuditEntry) string { return strconv.FormatInt(last.ID, 10) })
	return out, next, nil
}

// clampLimit bounds page sizes: default 50, at most 500.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}
