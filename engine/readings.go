package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/rpm"
)

// Reading is a stored vital-sign observation in canonical units.
type Reading struct {
	ID         uuid.UUID `json:"id"`
	PatientID  uuid.UUID `json:"patient_id"`
	Kind       rpm.Kind  `json:"kind"`
	Value      *float64  `json:"value,omitempty"`
	Systolic   *float64  `json:"systolic,omitempty"`
	Diastolic  *float64  `json:"diastolic,omitempty"`
	Unit       string    `json:"unit"`
	ObservedAt time.Time `json:"observed_at"`
	ReceivedAt time.Time `json:"received_at"`
	SourceID   *string   `json:"source_id,omitempty"`
}

const readingColumns = `r.id, r.patient_id, r.kind, r.value, r.systolic, r.diastolic, r.unit, r.observed_at, r.received_at, r.source_id`

func scanReading(row pgx.CollectableRow) (Reading, error) {
	var x Reading
	var value float64
	err := row.Scan(&x.ID, &x.PatientID, &x.Kind, &value, &x.Systolic, &x.Diastolic, &x.Unit, &x.ObservedAt, &x.ReceivedAt, &x.SourceID)
	if x.Kind != rpm.BloodPressure {
		x.Value = &value
	}
	return x, err
}

// ReadingFilter selects a patient's readings, newest first.
type ReadingFilter struct {
	PatientID uuid.UUID
	Kind      rpm.Kind
	Since     time.Time // inclusive; zero means unbounded
	Until     time.Time // exclusive; zero means unbounded
	Cursor    string
	Limit     int
}

type readingCursor struct {
	At time.Time `json:"t"`
	ID uuid.UUID `json:"i"`
}

func (c *readingCursor) valid() bool { return cursorTimeOK(c.At) }

// ListReadings returns a page of a patient's readings, newest first, and the
// cursor of the next page ("" at the end).
func (e *Engine) ListReadings(ctx context.Context, a Actor, f ReadingFilter) ([]Reading, string, error) {
	var v rpm.ValidationError
	if f.Kind != "" && !f.Kind.Valid() {
		v.Add("kind", "unknown vital kind")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		v.Add("until", "must be after since")
	}
	var cur *readingCursor
	if f.Cursor != "" {
		cur = &readingCursor{}
		if err := decodeCursor(f.Cursor, cur); err != nil {
			v.Add("cursor", "is not a cursor returned by this endpoint")
		}
	}
	if err := v.OrNil(); err != nil {
		return nil, "", err
	}
	limit := clampLimit(f.Limit)
	var out []Reading
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := scopePatient(ctx, tx, a, f.PatientID); err != nil {
			return err
		}
		var since, until, curAt *time.Time
		var curID *uuid.UUID
		if !f.Since.IsZero() {
			since = &f.Since
		}
		if !f.Until.IsZero() {
			until = &f.Until
		}
		if cur != nil {
			curAt, curID = &cur.At, &cur.ID
		}
		rows, err := tx.Query(ctx, `SELECT `+readingColumns+` FROM readings r WHERE r.patient_id = $1
			AND ($2 = '' OR r.kind = $2) AND ($3::timestamptz IS NULL OR r.observed_at >= $3)
			AND ($4::timestamptz IS NULL OR r.observed_at < $4)
			AND ($5::timestamptz IS NULL OR (r.observed_at, r.id) < ($5, $6::uuid))
			AND r.entered_in_error_at IS NULL
			ORDER BY r.observed_at DESC, r.id DESC LIMIT $7`, f.PatientID, string(f.Kind), since, until, curAt, curID, limit+1)
		if err != nil {
			return fmt.Errorf("list readings: %w", err)
		}
		if out, err = pgx.CollectRows(rows, scanReading); err != nil {
			return fmt.Errorf("list readings: %w", err)
		}
		return e.audit(ctx, tx, a, Audit{Action: "reading.list", PatientID: f.PatientID, ObjectType: "reading",
			Detail: map[string]any{"count": min(len(out), limit)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := page(out, limit, func(last Reading) string { return encodeCursor(readingCursor{At: last.ObservedAt, ID: last.ID}) })
	return out, next, nil
}
