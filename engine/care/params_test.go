package care_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestPatientParamsPersonaliseThresholds(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	got, err := w.Eng.SetPatientParams(ctx, w.Clinician, w.Patient.ID, map[string]map[string]float64{
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
	if got.UpdatedBy == nil || *got.UpdatedBy != w.Clinician.UserID {
		t.Errorf("updated_by = %v", got.UpdatedBy)
	}

	// 185/100 pages nobody for this patient now.
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(185, 100, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 0 {
		t.Errorf("alerts = %+v, want none above the personal threshold", res.Alerts)
	}
	// The diastolic default still applies (confirmed by a retake).
	if _, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(150, 125, time.Now(), "")}}); err != nil {
		t.Fatal(err)
	}
	res, err = w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(150, 126, time.Now().Add(30*time.Second), "")}})
	if err != nil || len(res.Alerts) != 1 {
		t.Errorf("diastolic 125: alerts %+v, %v", res.Alerts, err)
	}

	read, err := w.Eng.GetPatientParams(ctx, w.Clinician, w.Patient.ID)
	if err != nil || read.Overrides["bp-crisis"]["systolic_max"] != 200 {
		t.Errorf("get = %+v, %v", read, err)
	}
	// An empty body removes every override.
	cleared, err := w.Eng.SetPatientParams(ctx, w.Admin, w.Patient.ID, map[string]map[string]float64{})
	if err != nil || len(cleared.Overrides) != 0 || cleared.Effective["bp-crisis"]["systolic_max"] != 180 {
		t.Errorf("cleared = %+v, %v", cleared, err)
	}
	for _, action := range []string{"patient_params.update", "patient_params.read"} {
		if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = $1 AND patient_id = $2`, action, w.Patient.ID); n == 0 {
			t.Errorf("no %s audit entry", action)
		}
	}
}

func TestPatientParamsValidationAndScope(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	_, err := w.Eng.SetPatientParams(ctx, w.Clinician, w.Patient.ID, map[string]map[string]float64{
		"bp-crisis":  {"systolic_max": 170, "sytolic_max": 1},
		"no-such":    {"x": 1},
		"chest-pain": {"min_severity": 3},
	})
	if fields := enginetest.WantFields(t, err, "bp-crisis.sytolic_max", "no-such"); len(fields) != 2 {
		t.Errorf("fields = %+v, want bp-crisis.sytolic_max and no-such", fields)
	}
	if n := w.Count(t, `SELECT count(*) FROM patient_params`); n != 0 {
		t.Errorf("invalid overrides stored")
	}
	other, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	stranger := engine.Actor{UserID: other.ID, Role: engine.RoleClinician}
	if _, err := w.Eng.SetPatientParams(ctx, stranger, w.Patient.ID, nil); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("stranger: err = %v, want ErrNotFound", err)
	}
	if _, err := w.Eng.GetPatientParams(ctx, stranger, w.Patient.ID); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("stranger read: err = %v, want ErrNotFound", err)
	}
	if _, err := w.Eng.SetPatientParams(ctx, w.Device, w.Patient.ID, nil); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("device: err = %v, want ErrForbidden", err)
	}
}

// A patient's parameters are checked against, and resolved with, their
// organisation's pack: a rule only one organisation has takes parameters
// for that organisation's patients alone.
func TestPatientParamsFollowTheOrganisationsPack(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	b := enginetest.NewOrg(t, w, "clinic-b")
	if _, err := w.Eng.CreateRule(ctx, b.Admin, []byte(`{"id": "hr-very-high", "title": "Very high heart rate", "kind": "heart_rate",
		"when": "value > params.max", "params": {"max": 150}, "urgency": "high"}`)); err != nil {
		t.Fatal(err)
	}
	own := map[string]map[string]float64{"hr-very-high": {"max": 160}}
	got, err := w.Eng.SetPatientParams(ctx, b.Clinician, b.Patient.ID, own)
	if err != nil || got.Effective["hr-very-high"]["max"] != 160 {
		t.Errorf("org B's patient: %+v, %v; want hr-very-high's max at 160", got.Effective["hr-very-high"], err)
	}
	_, err = w.Eng.SetPatientParams(ctx, w.Clinician, w.Patient.ID, own)
	enginetest.WantFields(t, err, "hr-very-high")
	mine, err := w.Eng.GetPatientParams(ctx, w.Clinician, w.Patient.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mine.Effective["hr-very-high"]; ok {
		t.Error("the default organisation's patient has parameters of org B's rule")
	}
}
