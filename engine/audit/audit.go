// Package audit is the one writer of Tend's audit trail: every read or write
// of PHI appends an entry in the same transaction as the access it records.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// Writer appends audit entries. Now is its clock.
type Writer struct {
	Now func() time.Time
}

// Entry describes one read or write of PHI (or of security-relevant data).
type Entry struct {
	Action     string // e.g. "reading.create", "patient.read"
	PatientID  uuid.UUID
	ObjectType string
	ObjectID   string
	Detail     map[string]any // ids and counts only, never PHI values
	// Outcome is OutcomeOK (the default when empty) or OutcomeRefused (an
	// access that was denied, answered not-found, or out of scope).
	Outcome string
	// OrgID is the organisation the entry is about when the actor has none
	// (Tend itself, an operator) and no patient names it: a user's, a
	// token's.
	OrgID uuid.UUID
}

// Outcomes of an audited access.
const (
	OutcomeOK      = "ok"
	OutcomeRefused = "refused"
)

// Write appends an audit entry in tx, so the entry commits or rolls back with
// the access it records. Every use case that touches PHI calls it.
func (w Writer) Write(ctx context.Context, tx pgx.Tx, a access.Actor, entry Entry) error {
	if _, err := tx.Exec(ctx, auditSQL, args(a, entry, w.Now())...); err != nil {
		return fmt.Errorf("audit %s: %w", entry.Action, err)
	}
	return nil
}

// Queue adds the audit insert to a batch (same transaction, no extra round
// trip).
func (w Writer) Queue(b *pgx.Batch, a access.Actor, entry Entry) {
	b.Queue(auditSQL, args(a, entry, w.Now())...)
}

// Acted is one audit entry of QueueMany: who, and what.
type Acted struct {
	Actor access.Actor
	Entry Entry
}

// QueueMany adds the inserts of many entries to a batch as one statement
// (a group transaction's entries, in order).
func (w Writer) QueueMany(b *pgx.Batch, entries []Acted) {
	if len(entries) == 0 {
		return
	}
	n := len(entries)
	actors, patients := make([]*uuid.UUID, n), make([]*uuid.UUID, n)
	roles, actions, types := make([]string, n), make([]string, n), make([]string, n)
	objects, requests := make([]*string, n), make([]string, n)
	details, outcomes, orgs := make([]*string, n), make([]string, n), make([]*uuid.UUID, n)
	for i, e := range entries {
		a := args(e.Actor, e.Entry, time.Time{})
		actors[i], roles[i], actions[i], patients[i] = a[1].(*uuid.UUID), a[2].(string), a[3].(string), a[4].(*uuid.UUID)
		types[i], objects[i], requests[i], outcomes[i] = a[5].(string), a[6].(*string), a[7].(string), a[9].(string)
		orgs[i] = a[10].(*uuid.UUID)
		if e.Entry.Detail != nil {
			// Ids and counts: always encodable.
			d, _ := json.Marshal(e.Entry.Detail)
			ds := string(d)
			details[i] = &ds
		}
	}
	b.Queue(auditManySQL, w.Now(), actors, roles, actions, patients, types, objects, requests, details, outcomes, orgs)
}

// Role is the actor_role recorded for a: "system" for Tend itself (jobs, the
// rule seed), which acts with an admin's scope but is no admin.
func Role(a access.Actor) string {
	if a.IsSystem() {
		return "system"
	}
	return string(a.Role)
}

func args(a access.Actor, entry Entry, now time.Time) []any {
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
	outcome := entry.Outcome
	if outcome == "" {
		outcome = OutcomeOK
	}
	var org *uuid.UUID
	switch {
	case a.OrgID != uuid.Nil:
		org = &a.OrgID
	case entry.OrgID != uuid.Nil:
		org = &entry.OrgID
	}
	return []any{now, actor, Role(a), entry.Action, patient, entry.ObjectType, obj, a.RequestID, detail, outcome, org}
}

// Stored is a stored audit entry.
type Stored struct {
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
	Outcome    string         `json:"outcome"`
	// Seq is the entry's place in the hash chain; null until the sealer
	// has chained it (normally within a second of its commit).
	Seq *int64 `json:"seq"`
}

// Filter selects audit entries. Zero fields select everything.
type Filter struct {
	PatientID uuid.UUID
	ActorID   uuid.UUID
	Action    string
	Since     time.Time // at or after
	Until     time.Time // before
	After     int64     // cursor: entries with a larger id (newest first: a smaller one)
	// Newest lists the newest entries first.
	Newest bool
	Limit  int
}

// listAuditQuery is the listing's statement for f: the pool plans every
// statement once for all parameters (plan_cache_mode=force_generic_plan), so
// a filter that an index serves gets a statement that names it as a plain
// condition, which the generic plan can use.
func listAuditQuery(f Filter) string {
	switch {
	case f.Newest:
		return listAuditNewestSQL
	case f.PatientID != uuid.Nil:
		return listAuditByPatientSQL
	case f.ActorID != uuid.Nil:
		return listAuditByActorSQL
	}
	return listAuditSQL
}

// List returns audit entries in order (admins only). The listing is itself
// audited ("audit.list"), in the transaction that reads.
func (w Writer) List(ctx context.Context, pool *pgxpool.Pool, a access.Actor, f Filter) ([]Stored, string, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return nil, "", err
	}
	f.Limit = pg.ClampLimit(f.Limit)
	var out []Stored
	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, listAuditQuery(f), f.After, pg.NilIfZero(f.PatientID), pg.NilIfZero(f.ActorID),
			nilIfEmpty(f.Action), nilIfZeroTime(f.Since), nilIfZeroTime(f.Until), f.Limit+1, a.Org())
		if err != nil {
			return fmt.Errorf("list audit: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stored, error) {
			var x Stored
			err := r.Scan(&x.ID, &x.At, &x.ActorID, &x.ActorRole, &x.Action, &x.PatientID, &x.ObjectType, &x.ObjectID,
				&x.RequestID, &x.Detail, &x.Outcome, &x.Seq)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("list audit: %w", err)
		}
		detail := map[string]any{"count": min(len(out), f.Limit)}
		for k, v := range map[string]any{"patient_id": pg.NilIfZero(f.PatientID), "actor_id": pg.NilIfZero(f.ActorID),
			"action": nilIfEmpty(f.Action), "since": nilIfZeroTime(f.Since), "until": nilIfZeroTime(f.Until)} {
			switch x := v.(type) {
			case *uuid.UUID:
				if x != nil {
					detail[k] = x.String()
				}
			case *string:
				if x != nil {
					detail[k] = *x
				}
			case *time.Time:
				if x != nil {
					detail[k] = x.UTC().Format(time.RFC3339Nano)
				}
			}
		}
		return w.Write(ctx, tx, a, Entry{Action: "audit.list", PatientID: f.PatientID, ObjectType: "audit_entry", Detail: detail})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pg.Page(out, f.Limit, func(last Stored) string { return strconv.FormatInt(last.ID, 10) })
	return out, next, nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nilIfZeroTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
