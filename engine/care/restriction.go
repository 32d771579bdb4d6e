package care

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
)

// RestrictPatient restricts the processing of a patient's data (GDPR article 18)
// without deleting anything: readings are still stored as sent, but no rule
// is evaluated on them, no alert or retake request follows, and no reminder,
// missed dose or missing-data alert is raised until the restriction is
// lifted. Admins of the patient's organisation only (ErrForbidden for other
// roles, ErrNotFound for another organisation's patient); reason is
// required and kept in the audit entry (patient.restrict) as its length and
// SHA-256. Restricting again keeps the first restriction's time.
func (cr *Service) RestrictPatient(ctx context.Context, a access.Actor, id uuid.UUID, reason string) (Patient, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return Patient{}, err
	}
	if err := check.Reason("reason", reason); err != nil {
		return Patient{}, err
	}
	return cr.setRestriction(ctx, a, id, true, check.ReasonDetail(reason))
}

// LiftPatientRestriction lifts a patient's restriction: rules, alerts, retakes and
// reminders resume from the next reading or dose (what arrived while
// restricted is not evaluated after the fact). Admins of the patient's
// organisation only; audited (patient.unrestrict). An erased patient stays
// restricted: ErrConflict.
func (cr *Service) LiftPatientRestriction(ctx context.Context, a access.Actor, id uuid.UUID) (Patient, error) {
	if err := access.Require(a, access.RoleAdmin); err != nil {
		return Patient{}, err
	}
	return cr.setRestriction(ctx, a, id, false, map[string]any{})
}

func (cr *Service) setRestriction(ctx context.Context, a access.Actor, id uuid.UUID, on bool, detail map[string]any) (Patient, error) {
	var p Patient
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, id); err != nil {
			return err
		}
		var erased bool
		action := "patient.restrict"
		var err error
		if on {
			err = tx.QueryRow(ctx, restrictSQL, id, cr.now().Truncate(time.Microsecond)).Scan(&erased)
		} else {
			action = "patient.unrestrict"
			err = tx.QueryRow(ctx, unrestrictSQL, id).Scan(&erased)
		}
		if err != nil {
			return fmt.Errorf("patient restriction: %w", err)
		}
		if !on && erased {
			return fmt.Errorf("the patient was erased: their processing stays restricted: %w", access.ErrConflict)
		}
		if err := tx.QueryRow(ctx, getPatientSQL, id).Scan(&p.ID, &p.DisplayName, &p.Timezone, &p.CareTeamID, &p.Programs,
			&p.ExternalID, &p.EnrolledAt, &p.CreatedAt, &p.Restricted, &p.Erased); err != nil {
			return fmt.Errorf("patient restriction: %w", err)
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: action, PatientID: id, ObjectType: "patient",
			ObjectID: id.String(), Detail: detail})
	})
	if err != nil {
		return Patient{}, err
	}
	return p, nil
}
