package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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

// patientParams loads a patient's personalised rule parameters
// (rule id → param → value) inside the caller's transaction; nil when the
// patient has none.
func (e *Engine) patientParams(ctx context.Context, tx pgx.Tx, patientID uuid.UUID) (map[string]map[string]float64, error) {
	var out map[string]map[string]float64
	err := tx.QueryRow(ctx, `SELECT overrides FROM patient_params WHERE patient_id = $1`, patientID).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("patient params: %w", err)
	}
	return out, nil
}

// GetPatientParams returns a patient's overrides and the effective values
// (admins and clinicians of the patient's care team).
func (e *Engine) GetPatientParams(ctx context.Context, a Actor, patientID uuid.UUID) (PatientParams, error) {
	if err := forbid(a, RoleAdmin, RoleClinician); err != nil {
		return PatientParams{}, err
	}
	var out PatientParams
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		scope, err := scopePatient(ctx, tx, a, patientID)
		if err != nil {
			return err
		}
		out, err = e.loadPatientParams(ctx, tx, patientID, scope)
		if err != nil {
			return err
		}
		return e.audit(ctx, tx, a, Audit{Action: "patient_params.read", PatientID: patientID, ObjectType: "patient_params", ObjectID: patientID.String()})
	})
	return out, err
}

// SetPatientParams replaces a patient's overrides (admins and clinicians of
// the patient's care team). Unknown rules or params and non-finite values are
// a *rpm.ValidationError with fields "<rule id>.<param>". An empty map
// removes every override.
func (e *Engine) SetPatientParams(ctx context.Context, a Actor, patientID uuid.UUID, overrides map[string]map[string]float64) (PatientParams, error) {
	if err := forbid(a, RoleAdmin, RoleClinician); err != nil {
		return PatientParams{}, err
	}
	if err := e.ensureRulesSeeded(ctx); err != nil {
		return PatientParams{}, err
	}
	clean := make(map[string]map[string]float64, len(overrides))
	for id, ps := range overrides {
		if len(ps) > 0 {
			clean[id] = ps
		}
	}
	var out PatientParams
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		// Scope first: an out-of-scope patient is a 404 whatever the body.
		scope, err := scopePatient(ctx, tx, a, patientID)
		if err != nil {
			return err
		}
		if ps := e.pack().CheckParams(clean); len(ps) > 0 {
			var v rpm.ValidationError
			for _, p := range ps {
				v.Add(p.Field, p.Reason)
			}
			return &v
		}
		if _, err := tx.Exec(ctx, `INSERT INTO patient_params (patient_id, overrides, updated_at, updated_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (patient_id) DO UPDATE SET overrides = excluded.overrides, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			patientID, clean, e.now(), nilIfZero(a.UserID)); err != nil {
			return fmt.Errorf("store patient params: %w", err)
		}
		if out, err = e.loadPatientParams(ctx, tx, patientID, scope); err != nil {
			return err
		}
		ruleIDs := slices.Sorted(maps.Keys(clean))
		return e.audit(ctx, tx, a, Audit{Action: "patient_params.update", PatientID: patientID, ObjectType: "patient_params",
			ObjectID: patientID.String(), Detail: map[string]any{"rules": ruleIDs}})
	})
	return out, err
}

func (e *Engine) loadPatientParams(ctx context.Context, tx pgx.Tx, patientID uuid.UUID, scope patientScope) (PatientParams, error) {
	out := PatientParams{PatientID: patientID, Overrides: map[string]map[string]float64{}}
	err := tx.QueryRow(ctx, `SELECT overrides, updated_at, updated_by FROM patient_params WHERE patient_id = $1`, patientID).
		Scan(&out.Overrides, &out.UpdatedAt, &out.UpdatedBy)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return PatientParams{}, fmt.Errorf("load patient params: %w", err)
	}
	if out.Overrides == nil {
		out.Overrides = map[string]map[string]float64{}
	}
	out.Effective = effectiveParams(e.pack(), scope.Programs, out.Overrides)
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
