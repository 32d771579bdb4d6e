package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

func TestPatientParamsPersonaliseThresholds(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	got, err := w.eng.SetPatientParams(ctx, w.clinician, w.patient.ID, map[string]map[string]float64{
		"bp-crisis": {"systolic_max": 200},
		"hr-high":   {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Overrides["bp-crisis"]["systolic_max"] != 200 || len(got.Overrides) != 1 {
		t.Errorf("overrides = %v", got.Overrides)
	}
	if eff := got.Effective["bp-crisis"]; eff["systolic_max"] != 200 || eff["diastolic_max"] != 120 {
		t.Errorf("effective bp-crisis = %v, want systolic_max 200 (own) and diastolic_max 120 (default)", eff)
	}
	if _, ok := got.Effective["hf-weight-gain-24h"]; ok {
		t.Error("effective params list a heart-failure rule for a hypertension patient")
	}
	if got.UpdatedBy == nil || *got.UpdatedBy != w.clinician.UserID {
		t.Errorf("updated_by = %v", got.UpdatedBy)
	}

	// 185/100 pages nobody for this patient now.
	res, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(185, 100, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 0 {
		t.Errorf("alerts = %+v, want none above the personal threshold", res.Alerts)
	}
	// The diastolic default still applies (confirmed by a retake).
	if _, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(150, 125, time.Now(), "")}}); err != nil {
		t.Fatal(err)
	}
	res, err = w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID, Readings: []rpm.Reading{bp(150, 126, time.Now().Add(30*time.Second), "")}})
	if err != nil || len(res.Alerts) != 1 {
		t.Errorf("diastolic 125: alerts %+v, %v", res.Alerts, err)
	}

	read, err := w.eng.GetPatientParams(ctx, w.clinician, w.patient.ID)
	if err != nil || read.Overrides["bp-crisis"]["systolic_max"] != 200 {
		t.Errorf("get = %+v, %v", read, err)
	}
	// An empty body removes every override.
	cleared, err := w.eng.SetPatientParams(ctx, w.admin, w.patient.ID, map[string]map[string]float64{})
	if err != nil || len(cleared.Overrides) != 0 || cleared.Effective["bp-crisis"]["systolic_max"] != 180 {
		t.Errorf("cleared = %+v, %v", cleared, err)
	}
	for _, action := range []string{"patient_params.update", "patient_params.read"} {
		if n := w.count(t, `SELECT count(*) FROM audit_entries WHERE action = $1 AND patient_id = $2`, action, w.patient.ID); n == 0 {
			t.Errorf("no %s audit entry", action)
		}
	}
}

func TestPatientParamsValidationAndScope(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	_, err := w.eng.SetPatientParams(ctx, w.clinician, w.patient.ID, map[string]map[string]float64{
		"bp-crisis":  {"systolic_max": 170, "sytolic_max": 1},
		"no-such":    {"x": 1},
		"chest-pain": {"min_severity": 3},
	})
	if fields := wantFields(t, err, "bp-crisis.sytolic_max", "no-such"); len(fields) != 2 {
		t.Errorf("fields = %+v, want bp-crisis.sytolic_max and no-such", fields)
	}
	if n := w.count(t, `SELECT count(*) FROM patient_params`); n != 0 {
		t.Errorf("invalid overrides stored")
	}
	other, err := w.eng.CreateUser(ctx, w.admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	stranger := engine.Actor{UserID: other.ID, Role: engine.RoleClinician}
	if _, err := w.eng.SetPatientParams(ctx, stranger, w.patient.ID, nil); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("stranger: err = %v, want ErrNotFound", err)
	}
	if _, err := w.eng.GetPatientParams(ctx, stranger, w.patient.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("stranger read: err = %v, want ErrNotFound", err)
	}
	if _, err := w.eng.SetPatientParams(ctx, w.device, w.patient.ID, nil); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("device: err = %v, want ErrForbidden", err)
	}
}
