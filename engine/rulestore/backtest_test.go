package rulestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

func TestBacktestReportsFindingsAndAlertsAndCreatesNothing(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	day := func(d int) time.Time { return now.Add(time.Duration(-d) * 24 * time.Hour) }
	// Ten days of SpO2 around 93-95; a dip to 91 on day 6 and 90 on day 3.
	var readings []rpm.Reading
	for d := 10; d >= 1; d-- {
		v := 95.0
		switch d {
		case 6:
			v = 91
		case 5:
			v = 93 // still under 94: the same episode
		case 3:
			v = 90
		}
		readings = append(readings, enginetest.SpO2(v, day(d)))
	}
	if _, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Batch: true, Readings: readings}); err != nil {
		t.Fatal(err)
	}
	// A second patient the rule never fires on.
	other, err := w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Kim Oh", Timezone: "UTC", CareTeamID: w.Patient.CareTeamID,
		Programs: []string{"copd"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `UPDATE patients SET enrolled_at = $1`, day(30)); err != nil {
		t.Fatal(err)
	}
	clin := engine.Actor{UserID: w.Clinician.UserID, Role: engine.RoleClinician}
	if _, err := w.Eng.Ingest(ctx, clin, engine.IngestRequest{PatientID: other.ID, Readings: []rpm.Reading{enginetest.SpO2(97, day(4))}}); err != nil {
		t.Fatal(err)
	}
	before := snapshotCounts(t, w)

	rule := []byte(`{"id": "spo2-under-94", "title": "SpO2 under 94", "kind": "spo2", "when": "value < params.min",
		"params": {"min": 94}, "rearm": {"value": 1, "after": "48h"}, "urgency": "medium", "enabled": false}`)
	res, err := w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{Rule: rule, Since: day(20), Until: now})
	if err != nil {
		t.Fatal(err)
	}
	if res.RuleID != "spo2-under-94" || res.RuleVersion != 0 || res.PatientsScanned != 2 || res.ReadingsScanned != 11 {
		t.Errorf("result = %+v", res)
	}
	// 91 fires; 93 the day after is the same episode (under the re-arm
	// band of 95, within 48 h): a finding, held back; 95 re-arms, so 90
	// fires again. Every finding counts, the suppressed one too.
	if res.Findings != 3 || res.Suppressed != 1 || res.Alerts != 2 || len(res.Patients) != 1 {
		t.Fatalf("findings %d, suppressed %d, alerts %d, patients %+v; want 3, 1, 2, one patient", res.Findings, res.Suppressed, res.Alerts, res.Patients)
	}
	p := res.Patients[0]
	if p.PatientID != w.Patient.ID || p.Findings != 3 || p.Suppressed != 1 || p.Alerts != 2 || len(p.Examples) != 3 || !p.FirstAt.Equal(day(6)) ||
		!p.LastAt.Equal(day(3)) || !p.Examples[0].Opened || p.Examples[1].Opened || !p.Examples[2].Opened || p.Examples[0].ObservationID == "" {
		t.Errorf("patient = %+v", p)
	}
	// One example only when asked.
	res, err = w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{Rule: rule, Since: day(20), Until: now, Examples: 1})
	if err != nil || len(res.Patients) != 1 || len(res.Patients[0].Examples) != 1 {
		t.Errorf("one example: %+v, %v", res, err)
	}

	// Restricted to the other patient, or to a program nobody has: nothing.
	res, err = w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{Rule: rule, Since: day(20), PatientIDs: []uuid.UUID{other.ID}})
	if err != nil || res.PatientsScanned != 1 || res.Findings != 0 {
		t.Errorf("other patient only = %+v, %v", res, err)
	}
	res, err = w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{Rule: rule, Since: day(20), Programs: []string{"diabetes"}})
	if err != nil || res.PatientsScanned != 0 {
		t.Errorf("diabetes only = %+v, %v", res, err)
	}
	// A stored rule by id, over a period before the dip: nothing.
	res, err = w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{RuleID: "spo2-critical", Since: day(20), Until: now})
	if err != nil || res.RuleVersion != 1 || res.Findings != 0 {
		t.Errorf("spo2-critical = %+v, %v", res, err)
	}
	res, err = w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{RuleID: "spo2-low-sustained", Since: day(20), Until: day(2)})
	if err != nil || res.Findings != 0 {
		t.Errorf("spo2-low-sustained = %+v, %v", res, err)
	}

	after := snapshotCounts(t, w)
	for table, n := range before {
		if after[table] != n {
			t.Errorf("%s: %d rows before the backtests, %d after", table, n, after[table])
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'rule.backtest' AND patient_id = $1`, w.Patient.ID); n != 2 {
		t.Errorf("backtest audit entries for the patient = %d, want 2 (one per backtest that listed them)", n)
	}
}

// snapshotCounts counts the rows a backtest must not create.
func snapshotCounts(t *testing.T, w *enginetest.World) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"alerts", "alert_findings", "notifications", "river_job", "rule_versions", "rule_eval_errors", "readings"} {
		out[table] = w.Count(t, `SELECT count(*) FROM `+table)
	}
	return out
}

func TestBacktestMissingAndSymptomRules(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	hf := enginetest.HeartFailurePatient(t, w, w.Eng, now.Add(-10*24*time.Hour))
	clin := engine.Actor{UserID: w.Clinician.UserID, Role: engine.RoleClinician}
	// Weights on days 10, 9 and 5 (9 → 5 is a gap of 4 days), none since.
	for _, d := range []int{10, 9, 5} {
		if _, err := w.Eng.Ingest(ctx, clin, engine.IngestRequest{PatientID: hf.ID,
			Readings: []rpm.Reading{{Kind: rpm.BodyWeight, Value: enginetest.Ptr(80), Unit: "kg", ObservedAt: now.Add(time.Duration(-d)*24*time.Hour + time.Hour)}}}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{RuleID: "no-weight-36h", Since: now.Add(-8 * 24 * time.Hour), Until: now})
	if err != nil {
		t.Fatal(err)
	}
	// Gaps: after day 9 (due day 7.5) and after day 5 (due day 3.5).
	if res.PatientsScanned != 1 || res.Findings != 2 || res.Alerts != 2 {
		t.Errorf("no-weight backtest = %+v, want 1 heart-failure patient with 2 gaps", res)
	}

	if _, err := w.Eng.ReportSymptoms(ctx, clin, engine.NewSymptomReport{PatientID: w.Patient.ID,
		Symptoms: []rpm.Symptom{{Code: rpm.Dizziness, Severity: 4}}}); err != nil {
		t.Fatal(err)
	}
	dizzy := []byte(`{"id": "dizziness", "title": "Dizziness reported", "symptom": "dizziness", "min_severity": 3, "urgency": "medium"}`)
	res, err = w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{Rule: dizzy})
	if err != nil || res.Findings != 1 || res.SymptomReportsScanned != 1 || len(res.Patients) != 1 || res.Patients[0].PatientID != w.Patient.ID {
		t.Errorf("dizziness backtest = %+v, %v", res, err)
	}
}

func TestBacktestValidation(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	var v *rpm.ValidationError
	if _, err := w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{}); !errors.As(err, &v) {
		t.Errorf("no rule: err = %v", err)
	}
	if _, err := w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{RuleID: "nope"}); !errors.As(err, &v) || v.Fields[0].Field != "rule_id" {
		t.Errorf("unknown rule: err = %v", err)
	}
	now := time.Now()
	if _, err := w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{RuleID: "bp-crisis", Since: now, Until: now.Add(-time.Hour)}); !errors.As(err, &v) {
		t.Errorf("until before since: err = %v", err)
	}
	var le *rules.LoadError
	if _, err := w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{Rule: []byte(`{"id": "x", "kind": "spo2", "when": "value <", "urgency": "low"}`)}); !errors.As(err, &le) {
		t.Errorf("invalid rule: err = %v", err)
	}
	if _, err := w.Eng.Backtest(ctx, w.Clinician, engine.BacktestRequest{RuleID: "bp-crisis"}); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("clinician: err = %v, want ErrForbidden", err)
	}
}
