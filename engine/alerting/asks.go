package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
)

// PendingRetake is a request to the patient to measure again that is still
// open: the kind to measure and the deadline. It names the rule and the
// reading that asked, never a value.
type PendingRetake struct {
	RuleID    string    `json:"rule_id"`
	Kind      rpm.Kind  `json:"kind"`
	ReadingID uuid.UUID `json:"reading_id"`
	RetakeBy  time.Time `json:"retake_by"`
}

// PendingRetakes lists the patient's open requests to measure again whose
// deadline has not passed, soonest first: what a patient's app shows when a
// "please measure again" push opens it, whoever sent the first reading.
// The patient's own users, devices, and the clinicians and admins who may
// see the patient may ask; the read is audited.
func (al *Service) PendingRetakes(ctx context.Context, a access.Actor, patientID uuid.UUID) ([]PendingRetake, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician, access.RolePatient, access.RoleDevice); err != nil {
		return nil, err
	}
	var out []PendingRetake
	err := pg.InTx(ctx, al.pool, func(tx pgx.Tx) error {
		if _, err := scope.OfPatient(ctx, tx, a, patientID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, pendingRetakesSQL, patientID, al.now())
		if err != nil {
			return fmt.Errorf("pending retakes: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingRetake, error) {
			var p PendingRetake
			return p, r.Scan(&p.RuleID, &p.Kind, &p.ReadingID, &p.RetakeBy)
		})
		if err != nil {
			return fmt.Errorf("pending retakes: %w", err)
		}
		return al.audit.Write(ctx, tx, a, audit.Entry{Action: "retake.list", PatientID: patientID, ObjectType: "retake",
			Detail: map[string]any{"count": len(out)}})
	})
	return out, err
}
