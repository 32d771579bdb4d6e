package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestMissingWeightRaisesOneAlertPerGap(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng, clk := w.NewClockedEngine(t, time.Time{}, engine.Config{})
	hf := enginetest.HeartFailurePatient(t, w, eng, clk.Now().Add(-30*time.Hour))

	// 30 h after enrolment: not missing yet (36 h). The hypertension
	// patient is not watched at all.
	res, err := eng.CheckMissingData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Patients != 1 || res.Findings != 0 {
		t.Fatalf("first check = %+v, want 1 patient checked and nothing found", res)
	}

	clk.Advance(7 * time.Hour) // 37 h after enrolment, no weight ever
	res, err = eng.CheckMissingData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Findings != 1 || len(res.Alerts) != 1 || res.Alerts[0].RuleID != "no-weight-36h" || res.Alerts[0].Urgency != rpm.Low || res.Alerts[0].Status != "opened" {
		t.Fatalf("second check = %+v, want one low no-weight-36h alert", res)
	}
	alert := res.Alerts[0].ID
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND patient_id = $2 AND first_reading_id IS NULL`, alert, hf.ID); n != 1 {
		t.Error("alert not stored for the heart-failure patient without a reading")
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'alert.create' AND request_id = 'missing-data' AND patient_id = $1`, hf.ID); n != 1 {
		t.Error("missing-data alert not audited as the missing-data job")
	}

	// The same gap is not reported again, by a later check or a rerun.
	clk.Advance(10 * time.Minute)
	if res, err = eng.CheckMissingData(ctx); err != nil || res.Findings != 0 {
		t.Fatalf("third check = %+v, %v; want nothing new", res, err)
	}
	if _, err := w.Pool.Exec(ctx, `DELETE FROM rule_job_runs`); err != nil {
		t.Fatal(err)
	}
	if res, err = eng.CheckMissingData(ctx); err != nil || res.Findings != 0 {
		t.Fatalf("rerun without state = %+v, %v; want the recorded gap skipped", res, err)
	}

	// A weight arrives; 36 h later the next gap is one more finding.
	dev := engine.Actor{UserID: w.Clinician.UserID, Role: engine.RoleClinician}
	if _, err := eng.Ingest(ctx, dev, engine.IngestRequest{PatientID: hf.ID,
		Readings: []rpm.Reading{{Kind: rpm.BodyWeight, Value: enginetest.Ptr(81), Unit: "kg", ObservedAt: clk.Now().Add(-time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Hour)
	if res, err = eng.CheckMissingData(ctx); err != nil || res.Findings != 0 {
		t.Fatalf("30 h after the weight = %+v, %v; want nothing", res, err)
	}
	clk.Advance(7 * time.Hour)
	if res, err = eng.CheckMissingData(ctx); err != nil || res.Findings != 1 {
		t.Fatalf("37 h after the weight = %+v, %v; want the new gap", res, err)
	}
	if n := w.Count(t, `SELECT count(*) FROM alert_findings f JOIN alerts a ON a.id = f.alert_id WHERE a.patient_id = $1 AND f.rule_id = 'no-weight-36h'`, hf.ID); n != 2 {
		t.Errorf("no-weight findings = %d, want 2 (one per gap)", n)
	}
}

type missingJobArgs struct{}

func (missingJobArgs) Kind() string { return "rules.missing_data" }

func TestMissingDataJobRunsOnRiver(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, true)
	ctx := context.Background()
	hf := enginetest.HeartFailurePatient(t, w, w.Eng, time.Now().Add(-48*time.Hour))
	if _, err := w.Eng.Jobs().Insert(ctx, missingJobArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFor(t, func() bool {
		return w.Count(t, `SELECT count(*) FROM alerts WHERE patient_id = $1 AND rule_id = 'no-weight-36h'`, hf.ID) == 1
	})
	enginetest.WaitFor(t, func() bool {
		return w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'rules.missing_data' AND state = 'completed'`) == 1
	})
}

// The missing-data check judges each patient by their organisation's pack:
// an organisation that shortened no-weight-36h to 12 h hears of a gap at
// 13 h, the default organisation at 36 h, each once.
func TestMissingDataUsesTheOrganisationsPack(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng, clk := w.NewClockedEngine(t, time.Time{}, engine.Config{RulesRefresh: -1})
	b := enginetest.NewOrg(t, w, "clinic-b", "heart_failure")
	enrolled := clk.Now().Add(-time.Hour)
	hfA := enginetest.HeartFailurePatient(t, w, eng, enrolled)
	if _, err := w.Pool.Exec(ctx, `UPDATE patients SET enrolled_at = $2 WHERE id = $1`, b.Patient.ID, enrolled); err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.UpdateRule(ctx, b.Admin, "no-weight-36h", []byte(`{"title": "No weight for 12 h", "kind": "body_weight",
		"programs": ["heart_failure"], "missing": "12h", "urgency": "low"}`)); err != nil {
		t.Fatal(err)
	}
	gaps := func() map[string]int {
		t.Helper()
		res, err := eng.CheckMissingData(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Patients != 2 {
			t.Errorf("%d patients checked, want the two heart-failure patients", res.Patients)
		}
		out := map[string]int{}
		for _, a := range res.Alerts {
			var org string
			if err := w.Pool.QueryRow(ctx, `SELECT org_id::text FROM patients p JOIN alerts a ON a.patient_id = p.id WHERE a.id = $1`, a.ID).Scan(&org); err != nil {
				t.Fatal(err)
			}
			out[org]++
		}
		return out
	}
	clk.Advance(12 * time.Hour) // 13 h after enrolment
	if got := gaps(); got[b.ID.String()] != 1 || len(got) != 1 {
		t.Errorf("at 13 h: alerts per organisation %v, want org B's alone", got)
	}
	clk.Advance(24 * time.Hour) // 37 h
	if got := gaps(); got[b.ID.String()] != 0 || len(got) != 1 {
		t.Errorf("at 37 h: alerts per organisation %v, want the default organisation's alone", got)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE patient_id = $1 AND rule_id = 'no-weight-36h'`, hfA.ID); n != 1 {
		t.Errorf("the default organisation's patient has %d no-weight alerts, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM rule_job_runs WHERE name LIKE '%:' || $1`, b.ID.String()); n != 1 {
		t.Errorf("%d missing-data runs recorded for org B's own rule, want 1", n)
	}
}
