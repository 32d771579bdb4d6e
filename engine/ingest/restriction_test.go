package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// TestRestrictionStopsRules: while a patient's processing is restricted,
// their readings and symptom reports are stored but no rule runs — no alert,
// no retake request — and the missing-data job passes them by; lifting the
// restriction resumes all three. Only an admin of the patient's organisation
// restricts, with a reason; the patient shows as restricted.
func TestRestrictionStopsRules(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng, clk := w.NewClockedEngine(t, time.Time{}, engine.Config{})
	hf := enginetest.HeartFailurePatient(t, w, eng, clk.Now().Add(-37*time.Hour))
	pat := w.PatientUser(t)

	for _, a := range []engine.Actor{w.Clinician, pat, w.Device} {
		if _, err := eng.RestrictPatient(ctx, a, w.Patient.ID, "asked"); !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("restriction by %s = %v, want forbidden", a.Role, err)
		}
	}
	_, err := eng.RestrictPatient(ctx, w.Admin, w.Patient.ID, " ")
	enginetest.WantFields(t, err, "reason")
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'patient.restrict'`) +
		w.Count(t, `SELECT count(*) FROM patients WHERE restricted_at IS NOT NULL`); n != 0 {
		t.Fatalf("refused restrictions left %d rows", n)
	}
	for _, id := range []engine.Patient{w.Patient, hf} {
		p, err := eng.RestrictPatient(ctx, w.Admin, id.ID, "patient contests the data")
		if err != nil || !p.Restricted {
			t.Fatalf("restrict = %+v, %v", p, err)
		}
	}
	if p, err := eng.GetPatient(ctx, w.Clinician, w.Patient.ID); err != nil || !p.Restricted {
		t.Fatalf("restricted patient reads %+v, %v", p, err)
	}

	critical := func() engine.IngestResult {
		t.Helper()
		clk.Advance(time.Minute)
		res, err := eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
			Readings: []rpm.Reading{enginetest.BP(195, 125, clk.Now().Add(-time.Second), "")}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := critical(); len(res.Alerts) != 0 || len(res.Retakes) != 0 {
		t.Errorf("restricted ingest raised %+v", res)
	}
	rep, err := eng.ReportSymptoms(ctx, pat, engine.NewSymptomReport{PatientID: w.Patient.ID,
		Symptoms: []rpm.Symptom{{Code: "chest_pain", Severity: 9}}})
	if err != nil || len(rep.Alerts) != 0 || len(rep.Retakes) != 0 {
		t.Errorf("restricted symptom report = %+v, %v; want stored, nothing raised", rep, err)
	}
	if res, err := eng.CheckMissingData(ctx); err != nil || res.Findings != 0 {
		t.Errorf("missing data while restricted = %+v, %v; want nothing", res, err)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts`) + w.Count(t, `SELECT count(*) FROM retakes`); n != 0 {
		t.Fatalf("%d alerts and retakes while restricted", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM readings WHERE patient_id = $1`, w.Patient.ID) +
		w.Count(t, `SELECT count(*) FROM symptom_reports WHERE patient_id = $1`, w.Patient.ID); n != 2 {
		t.Fatalf("%d readings and reports stored while restricted, want 2", n)
	}

	for _, id := range []engine.Patient{w.Patient, hf} {
		if p, err := eng.LiftPatientRestriction(ctx, w.Admin, id.ID); err != nil || p.Restricted {
			t.Fatalf("lift = %+v, %v", p, err)
		}
	}
	if res := critical(); len(res.Alerts) == 0 {
		t.Errorf("after lifting, a critical reading raised nothing: %+v", res)
	}
	// The gap that opened while restricted is not reported after the fact;
	// the next one is.
	if _, err := eng.Ingest(ctx, w.Clinician, engine.IngestRequest{PatientID: hf.ID,
		Readings: []rpm.Reading{{Kind: rpm.BodyWeight, Value: enginetest.Ptr(81), Unit: "kg", ObservedAt: clk.Now().Add(-time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(37 * time.Hour)
	if res, err := eng.CheckMissingData(ctx); err != nil || res.Findings != 1 {
		t.Errorf("missing data after lifting = %+v, %v; want the heart-failure patient's next gap", res, err)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action IN ('patient.restrict', 'patient.unrestrict')
		AND detail ? 'reason_sha256' = (action = 'patient.restrict')`); n != 4 {
		t.Errorf("%d restriction audit entries, want 4 (the reason as its hash on restrict only)", n)
	}
}
