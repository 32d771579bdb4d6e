package care

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// PatientFilter selects patients.
type PatientFilter struct {
	// Query matches a part of the display name (case-insensitive) or the
	// whole external id.
	Query  string
	Cursor string
	Limit  int
}

type patientCursor struct {
	Name string    `json:"n"`
	ID   uuid.UUID `json:"i"`
}

func (c *patientCursor) Valid() bool { return len(c.Name) <= check.MaxNameLen }

// ListPatients lists the patients the actor may see, by display name: admins
// all, staff their care teams', a patient or device its own. The listing is
// audited (it reads PHI).
func (cr *Service) ListPatients(ctx context.Context, a access.Actor, f PatientFilter) ([]Patient, string, error) {
	var cur *patientCursor
	if f.Cursor != "" {
		cur = &patientCursor{}
		if err := pg.DecodeCursor(f.Cursor, cur); err != nil {
			return nil, "", check.FieldError("cursor", "is not a cursor returned by this endpoint")
		}
	}
	if len(f.Query) > check.MaxNameLen {
		return nil, "", &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "q", Reason: fmt.Sprintf("is longer than %d characters", check.MaxNameLen)}}}
	}
	limit := pg.ClampLimit(f.Limit)
	var afterName *string
	var afterID *uuid.UUID
	if cur != nil {
		afterName, afterID = &cur.Name, &cur.ID
	}
	var out []Patient
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, listPatientsSQL, a.Role, a.PatientID, a.UserID, likeOrAll(f.Query), f.Query, afterName, afterID, limit+1)
		if err != nil {
			return fmt.Errorf("list patients: %w", err)
		}
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Patient, error) {
			var p Patient
			err := r.Scan(&p.ID, &p.DisplayName, &p.Timezone, &p.CareTeamID, &p.Programs, &p.ExternalID, &p.EnrolledAt, &p.CreatedAt,
				&p.Restricted, &p.Erased)
			return p, err
		}); err != nil {
			return fmt.Errorf("list patients: %w", err)
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "patient.list", ObjectType: "patient", Detail: map[string]any{"count": len(out)}})
	})
	if err != nil {
		return nil, "", err
	}
	out, next := pg.Page(out, limit, func(last Patient) string {
		return pg.EncodeCursor(patientCursor{Name: last.DisplayName, ID: last.ID})
	})
	return out, next, nil
}

// likeOrAll is an ILIKE pattern for names containing q ("" matches all).
func likeOrAll(q string) string {
	return "%" + likeEscaper.Replace(q) + "%"
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
