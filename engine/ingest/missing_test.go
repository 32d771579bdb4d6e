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
