package care

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/scope"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// PatientParams are a patient's personalised rule parameters.
type PatientParams struct {
	PatientID uuid.UUID `json:"patient_id"`
	// Overrides are the patient's own values: rule id → param → value.
	Overrides map[string]map[string]float64 `json:"overrides"`
	// Effective are the values the active rules use for the patient, for
	// every rule that applies to the patient's programs and has params: the
	// rule's defaults, overridden by its program_params for the patient's
	// programs, overridden by the patient's own values.
	Effective map[string]map[string]float64 `json:"effective"`
	// UpdatedAt and UpdatedBy tell who last replaced the overrides; null
	// when they never were.
	UpdatedAt *time.Time `json:"updated_at"`
	UpdatedBy *uuid.UUID `json:"updated_by"`
}

// GetPatientParams returns a patient's overrides and the effective values
// (admins and clinicians of the patient's care team).
func (cr *Service) GetPatientParams(ctx context.Context, a access.Actor, patientID uuid.UUID) (PatientParams, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return PatientParams{}, err
	}
	var out PatientParams
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		scope, err := scope.OfPatient(ctx, tx, a, patientID)
		if err != nil {
			return err
		}
		out, err = cr.loadPatientParams(ctx, tx, patientID, scope)
		if err != nil {
			return err
		}
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "patient_params.read", PatientID: patientID, ObjectType: "patient_params", ObjectID: patientID.String()})
	})
	return out, err
}

// SetPatientParams replaces a patient's overrides (admins and clinicians of
// the patient's care team). Unknown rules or params and non-finite values are
// a *rpm.ValidationError with fields "<rule id>.<param>". An empty map
// removes every override.
func (cr *Service) SetPatientParams(ctx context.Context, a access.Actor, patientID uuid.UUID, overrides map[string]map[string]float64) (PatientParams, error) {
	if err := access.Require(a, access.RoleAdmin, access.RoleClinician); err != nil {
		return PatientParams{}, err
	}
	if err := cr.ensureRules(ctx); err != nil {
		return PatientParams{}, err
	}
	clean := make(map[string]map[string]float64, len(overrides))
	for id, ps := range overrides {
		if len(ps) > 0 {
			clean[id] = ps
		}
	}
	var out PatientParams
	err := pg.InTx(ctx, cr.pool, func(tx pgx.Tx) error {
		// Scope first: an out-of-scope patient is a 404 whatever the body.
		scope, err := scope.OfPatient(ctx, tx, a, patientID)
		if err != nil {
			return err
		}
		if ps := cr.pack(scope.OrgID).CheckParams(clean); len(ps) > 0 {
			var v rpm.ValidationError
			for _, p := range ps {
				v.Add(p.Field, p.Reason)
			}
			return &v
		}
		if _, err := tx.Exec(ctx, setParamsSQL, patientID, clean, cr.now(), pg.NilIfZero(a.UserID)); err != nil {
			return fmt.Errorf("store patient params: %w", err)
		}
		if out, err = cr.loadPatientParams(ctx, tx, patientID, scope); err != nil {
			return err
		}
		ruleIDs := slices.Sorted(maps.Keys(clean))
		return cr.audit.Write(ctx, tx, a, audit.Entry{Action: "patient_params.update", PatientID: patientID, ObjectType: "patient_params",
			ObjectID: patientID.String(), Detail: map[string]any{"rules": ruleIDs}})
	})
	return out, err
}

func (cr *Service) loadPatientParams(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, scope scope.Patient) (PatientParams, error) {
	out := PatientParams{PatientID: patientID, Overrides: map[string]map[string]float64{}}
	err := tx.QueryRow(ctx, getParamsSQL, patientID).
		Scan(&out.Overrides, &out.UpdatedAt, &out.UpdatedBy)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return PatientParams{}, fmt.Errorf("load patient params: %w", err)
	}
	if out.Overrides == nil {
		out.Overrides = map[string]map[string]float64{}
	}
	out.Effective = effectiveParams(cr.pack(scope.OrgID), scope.Programs, out.Overrides)
	return out, nil
}

// effectiveParams resolves the params of every rule that applies to a
// patient in programs. Overrides of params a rule no longer has (it changed
// since they were set) are ignored, as evaluation ignores them.
func effectiveParams(pack *rules.Pack, programs []string, overrides map[string]map[string]float64) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, r := range pack.Rules() {
		if len(r.Programs) > 0 && !slices.ContainsFunc(r.Programs, func(p string) bool { return slices.Contains(programs, p) }) {
			continue
		}
		defaults, err := pack.EffectiveParams(r.ID, programs, nil)
		if err != nil || len(defaults) == 0 {
			continue
		}
		own := map[string]float64{}
		for name, v := range overrides[r.ID] {
			if _, ok := defaults[name]; ok {
				own[name] = v
			}
		}
		eff, err := pack.EffectiveParams(r.ID, programs, own)
		if err != nil {
			continue
		}
		out[r.ID] = eff
	}
	return out
}
