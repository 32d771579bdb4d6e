package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// Symptom reports and FHIR transaction bundles are judged by the patient's
// organisation's pack: org B disabled chest-pain and lowered bp-crisis to
// 150, the default organisation kept the default pack.
func TestOrgPackJudgesSymptomsAndBundles(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	b := enginetest.NewOrg(t, w, "clinic-b")
	if _, _, err := w.Eng.UpdateRule(ctx, b.Admin, "chest-pain", []byte(`{"enabled": false}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Eng.UpdateRule(ctx, b.Admin, "bp-crisis", []byte(`{"title": "BP crisis", "kind": "blood_pressure",
		"when": "systolic >= params.systolic_max", "params": {"systolic_max": 150}, "urgency": "critical", "retake": {"enabled": false}}`)); err != nil {
		t.Fatal(err)
	}
	pain := []rpm.Symptom{{Code: rpm.ChestPain, Severity: 6}}
	resB, err := w.Eng.ReportSymptoms(ctx, b.Clinician, engine.NewSymptomReport{PatientID: b.Patient.ID, Symptoms: pain})
	if err != nil || len(resB.Alerts) != 0 {
		t.Errorf("chest pain in org B: %+v, %v; want no alert (disabled there)", resB.Alerts, err)
	}
	resA, err := w.Eng.ReportSymptoms(ctx, w.Clinician, engine.NewSymptomReport{PatientID: w.Patient.ID, Symptoms: pain})
	if err != nil || len(resA.Alerts) != 1 || resA.Alerts[0].RuleID != "chest-pain" {
		t.Errorf("chest pain in the default organisation: %+v, %v; want chest-pain", resA.Alerts, err)
	}

	second, err := w.Eng.CreatePatient(ctx, b.Clinician, engine.NewPatient{DisplayName: "Lee Fox", Timezone: "UTC",
		CareTeamID: b.Patient.CareTeamID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res, err := w.Eng.IngestAll(ctx, b.Clinician, []engine.IngestRequest{
		{PatientID: b.Patient.ID, Readings: []rpm.Reading{enginetest.BP(160, 80, now, "")}},
		{PatientID: second.ID, Readings: []rpm.Reading{enginetest.BP(155, 80, now, "")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if len(r.Alerts) != 1 || r.Alerts[0].RuleID != "bp-crisis" {
			t.Errorf("bundle entry %d in org B raised %+v, want bp-crisis at 150", i, r.Alerts)
		}
	}
	resA2, err := w.Eng.IngestAll(ctx, w.Clinician, []engine.IngestRequest{
		{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(160, 80, now, "")}},
	})
	if err != nil || len(resA2[0].Alerts) != 0 {
		t.Errorf("160 in the default organisation: %+v, %v; want nothing", resA2, err)
	}
}
