package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/audit"
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

// TestReadingAuditEntriesCarryTheOrganisation: a reading's audit entry
// belongs to the patient's organisation, so that organisation's admin finds
// it in the audit trail, whether the device posts one reading or a batch, and
// another organisation's admin does not.
func TestReadingAuditEntriesCarryTheOrganisation(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	b := enginetest.NewOrg(t, w, "clinic-b")
	now := time.Now()
	for _, rs := range [][]rpm.Reading{
		{enginetest.BP(120, 80, now.Add(-time.Minute), "")},
		{enginetest.BP(121, 80, now.Add(-2*time.Minute), "s1"), enginetest.BP(122, 80, now.Add(-3*time.Minute), "s2")},
	} {
		if _, err := w.Eng.Ingest(ctx, b.Device, engine.IngestRequest{PatientID: b.Patient.ID, Readings: rs, Batch: len(rs) > 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{enginetest.BP(120, 80, now, "")}}); err != nil {
		t.Fatal(err)
	}
	var wrong int
	if err := w.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries e JOIN patients p ON p.id = e.patient_id
		WHERE e.action = 'reading.create' AND e.org_id IS DISTINCT FROM p.org_id`).Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("%d reading.create entries outside their patient's organisation (%v)", wrong, err)
	}
	f := audit.Filter{Action: "reading.create", Limit: 10}
	if got, _, err := w.Eng.ListAudit(ctx, b.Admin, f); err != nil || len(got) != 2 {
		t.Errorf("org B's admin lists %d reading.create entries, %v; want its 2", len(got), err)
	}
	got, _, err := w.Eng.ListAudit(ctx, enginetest.DefaultOrgAdmin(t, w), f)
	if err != nil || len(got) != 1 || *got[0].PatientID != w.Patient.ID {
		t.Errorf("the default organisation's admin lists %+v, %v; want its own patient's entry only", got, err)
	}
}

// TestReadingCreateEntryNamesWhatWasCreated: a request's reading.create
// entry names its first created reading and counts the created ones, the
// same whether the request carries source ids (checked against what the
// insert stored) or not (every reading is created); a request of duplicates
// only writes none.
func TestReadingCreateEntryNamesWhatWasCreated(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	now := time.Now()
	ingest := func(rs ...rpm.Reading) engine.IngestResult {
		t.Helper()
		res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: rs, Batch: len(rs) > 1})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	at := func(i int) time.Time { return now.Add(-time.Duration(i) * time.Minute) }
	unsourced := ingest(enginetest.BP(120, 80, at(1), ""), enginetest.BP(121, 80, at(2), ""), enginetest.BP(122, 80, at(3), ""))
	ingest(enginetest.BP(123, 80, at(4), "s1"))
	// s1 is a duplicate now: the entry starts at the first reading created.
	sourced := ingest(enginetest.BP(123, 80, at(4), "s1"), enginetest.BP(124, 80, at(5), "s2"), enginetest.BP(125, 80, at(6), ""))
	ingest(enginetest.BP(124, 80, at(5), "s2")) // duplicates only
	rows, err := w.Pool.Query(ctx, `SELECT object_id, (detail->>'count')::int FROM audit_entries
		WHERE action = 'reading.create' AND patient_id = $1 ORDER BY id`, w.Patient.ID)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		first string
		count int
	}
	var got []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.first, &e.count); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []entry{{unsourced.Readings[0].ID.String(), 3}, {"", 1}, {sourced.Readings[1].ID.String(), 2}}
	if len(got) != 3 || got[0] != want[0] || got[1].count != 1 || got[2] != want[2] {
		t.Errorf("reading.create entries = %+v, want %+v (the second: any id, count 1)", got, want)
	}
}
