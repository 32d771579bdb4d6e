package ingest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestChestPainReportPagesTheTeamInTheSameTransaction(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	patientUser, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Sam Lee", Role: engine.RolePatient, PatientID: w.Patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	sam := engine.Actor{UserID: patientUser.ID, Role: engine.RolePatient, PatientID: w.Patient.ID}
	res, err := w.Eng.ReportSymptoms(ctx, sam, engine.NewSymptomReport{PatientID: w.Patient.ID, Note: "after climbing stairs",
		Symptoms: []rpm.Symptom{{Code: rpm.ChestPain, Severity: 6}, {Code: rpm.Fainting, Severity: 2}, {Code: rpm.Cough, Severity: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "created" || len(res.Alerts) != 1 || res.Alerts[0].RuleID != "chest-pain" || res.Alerts[0].Urgency != rpm.Critical ||
		res.Alerts[0].Status != "opened" {
		t.Fatalf("result = %+v, want one critical chest-pain alert (fainting rides along)", res)
	}
	alert := res.Alerts[0].ID
	if n := w.Count(t, `SELECT count(*) FROM alert_findings WHERE alert_id = $1 AND reading_id IS NULL`, alert); n != 2 {
		t.Errorf("findings on the alert = %d, want chest-pain and fainting", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n == 0 {
		t.Error("no delivery job: the team was not paged")
	}
	if n := w.Count(t, `SELECT count(*) FROM symptom_report_alerts WHERE report_id = $1 AND alert_id = $2`, res.ID, alert); n != 1 {
		t.Error("report not linked to its alert")
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'symptom_report.create' AND patient_id = $1`, w.Patient.ID); n != 1 {
		t.Error("report not audited")
	}
	reports, _, err := w.Eng.ListSymptomReports(ctx, w.Clinician, engine.SymptomReportFilter{PatientID: w.Patient.ID})
	if err != nil || len(reports) != 1 || len(reports[0].Symptoms) != 3 || len(reports[0].AlertIDs) != 1 || *reports[0].Note != "after climbing stairs" {
		t.Errorf("reports = %+v, %v", reports, err)
	}

	// A mild cough raises nothing.
	res, err = w.Eng.ReportSymptoms(ctx, w.Clinician, engine.NewSymptomReport{PatientID: w.Patient.ID,
		Symptoms: []rpm.Symptom{{Code: rpm.Cough, Severity: 2}, {Code: rpm.ChestPain, Severity: 0}}})
	if err != nil || len(res.Alerts) != 0 {
		t.Errorf("cough: %+v, %v", res, err)
	}
}

func TestSymptomReportIdempotencyValidationAndScope(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	in := engine.NewSymptomReport{PatientID: w.Patient.ID, IdempotencyKey: "app-42",
		Symptoms: []rpm.Symptom{{Code: rpm.WeaknessOneSide, Severity: 8}}}
	first, err := w.Eng.ReportSymptoms(ctx, w.Clinician, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.Eng.ReportSymptoms(ctx, w.Clinician, in)
	if err != nil || again.Status != "duplicate" || again.ID != first.ID || len(again.Alerts) != 0 {
		t.Errorf("retry = %+v, %v; want the stored report, nothing raised", again, err)
	}
	if n := w.Count(t, `SELECT occurrences FROM alerts WHERE rule_id = 'weakness-one-side'`); n != 1 {
		t.Errorf("occurrences after retry = %d, want 1", n)
	}

	_, err = w.Eng.ReportSymptoms(ctx, w.Clinician, engine.NewSymptomReport{PatientID: w.Patient.ID,
		Symptoms: []rpm.Symptom{{Code: "hiccups", Severity: 3}, {Code: rpm.OtherSymptom, Severity: 11}}})
	enginetest.WantFields(t, err, "symptoms[0].code", "symptoms[1].severity", "symptoms[1].text")
	var v *rpm.ValidationError
	if _, err := w.Eng.ReportSymptoms(ctx, w.Clinician, engine.NewSymptomReport{PatientID: w.Patient.ID}); !errors.As(err, &v) {
		t.Errorf("empty report: err = %v", err)
	}
	if _, err := w.Eng.ReportSymptoms(ctx, w.Device, in); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("device: err = %v, want ErrForbidden", err)
	}
	stranger := engine.Actor{UserID: uuid.New(), Role: engine.RolePatient, PatientID: uuid.New()}
	if _, err := w.Eng.ReportSymptoms(ctx, stranger, in); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("another patient: err = %v, want ErrNotFound", err)
	}
	if n := w.Count(t, `SELECT count(*) FROM symptom_reports`); n != 1 {
		t.Errorf("%d reports stored, want 1", n)
	}
}
