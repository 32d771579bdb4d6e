package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/readings"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
)

// ReadingFilter selects a patient's readings, newest first.
type ReadingFilter struct {
	PatientID uuid.UUID
	Kind      rpm.Kind
	Since     time.Time // inclusive; zero means unbounded
	Until     time.Time // exclusive; zero means unbounded
	Cursor    string
	Limit     int
}

// ListReadings returns a page of a patient's readings, newest first, and the
// cursor of the next page ("" at the end).
func (ig *Service) ListReadings(ctx context.Context, a access.Actor, f ReadingFilter) ([]readings.Reading, string, error) {
	var v rpm.ValidationError
	if f.Kind != "" && !f.Kind.Valid() {
		v.Add("kind", "unknown vital kind")
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		v.Add("until", "must be after since")
	}
	var cur *pg.TimeCursor
	if f.Cursor != "" {
		cur = &pg.TimeCursor{}
		if err := pg.DecodeCursor(f.Cursor, cur); err != nil {
			v.Add("cursor", "is not a cursor returned by this endpoint")
		}
	}
	if err := v.OrNil(); err != nil {
		return nil, "", err
	}
	limit := pg.ClampLimit(f.Limit)
	var out []readings.Reading
	err := pg.InTx(ctx, ig.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, f.PatientID); err != nil {
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
		rows, err := tx.Query(ctx, listReadingsSQL, f.PatientID, string(f.Kind), since, until, curAt, curID, limit+1)
		if err != nil {
			return fmt.Errorf("list readings: %w", err)
		}
		if out, err = pgx.CollectRows(rows, readings.Scan); err != nil {
			return fmt.Errorf("list readings: %w", err)
		}
		return ig.audit.Write(ctx, tx, a, audit.Entry{Action: "reading.list", PatientID: f.PatientID, ObjectType: "reading",
			Detail: map[string]any{"count": min(len(out), limit)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pg.Page(out, limit, func(last readings.Reading) string {
		return pg.EncodeCursor(pg.TimeCursor{At: last.ObservedAt, ID: last.ID})
	})
	return out, next, nil
}
