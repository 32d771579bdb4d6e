package rulestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// bpAlerts ingests a blood pressure for a patient and returns the rule ids
// of the alerts it raised or updated.
func bpAlerts(t *testing.T, eng *engine.Engine, dev engine.Actor, sys float64) []string {
	t.Helper()
	res, err := eng.Ingest(context.Background(), dev, engine.IngestRequest{PatientID: dev.PatientID,
		Readings: []rpm.Reading{enginetest.BP(sys, 90, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range res.Alerts {
		ids = append(ids, a.RuleID)
	}
	return ids
}

func ruleIDs(rs []engine.Rule) map[string]engine.Rule {
	out := map[string]engine.Rule{}
	for _, r := range rs {
		out[r.ID] = r
	}
	return out
}

// An organisation's admin changes a threshold: the organisation's patients
// are judged by the change, every other organisation's by the default pack;
// each organisation lists its own effective pack, and cannot see or change
// another's overrides.
func TestOrgOverrideJudgesOnlyItsOwnPatients(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	b := enginetest.NewOrg(t, w, "clinic-b")
	adminA := enginetest.DefaultOrgAdmin(t, w)
	orgA := uuid.MustParse("00000000-0000-0000-0000-000000000001") // the default organisation
	devA := w.Device

	r, changed, err := w.Eng.UpdateRule(ctx, b.Admin, "bp-crisis", []byte(bpCrisis(150, 100)))
	if err != nil || !changed {
		t.Fatalf("org B's update: changed %v, %v", changed, err)
	}
	if r.Version != 2 || r.OrgID == nil || *r.OrgID != b.ID || !r.Overridden || r.DefaultVersion == nil || *r.DefaultVersion != 1 ||
		len(r.Versions) != 2 || r.Versions[0].OrgID == nil || r.Versions[1].OrgID != nil {
		t.Fatalf("org B's override = %+v", r)
	}
	if got := bpAlerts(t, w.Eng, b.Device, 160); len(got) != 1 || got[0] != "bp-crisis" {
		t.Errorf("160/90 in org B raised %v, want bp-crisis at B's 150", got)
	}
	if got := bpAlerts(t, w.Eng, devA, 160); len(got) != 0 {
		t.Errorf("160/90 in the default organisation raised %v, want nothing (the default pack's 180)", got)
	}
	if n := w.Count(t, `SELECT rule_version FROM alerts WHERE patient_id = $1 AND rule_id = 'bp-crisis'`, b.Patient.ID); n != 2 {
		t.Errorf("org B's alert has rule_version %d, want its override's 2", n)
	}

	// Each organisation lists its own effective pack.
	listB, err := w.Eng.ListRules(ctx, b.Clinician)
	if err != nil {
		t.Fatal(err)
	}
	listA, err := w.Eng.ListRules(ctx, adminA)
	if err != nil {
		t.Fatal(err)
	}
	if len(listA) != len(listB) || listB[0].ID != listA[0].ID {
		t.Fatalf("org B lists %d rules, the default organisation %d, in another order", len(listB), len(listA))
	}
	gotB, gotA := ruleIDs(listB)["bp-crisis"], ruleIDs(listA)["bp-crisis"]
	if gotB.Version != 2 || !gotB.Overridden || gotB.Definition.Params["systolic_max"] != 150 {
		t.Errorf("org B lists bp-crisis as %+v, want its override", gotB)
	}
	if gotA.Version != 1 || gotA.Overridden || gotA.OrgID != nil || gotA.Definition.Params["systolic_max"] != 180 {
		t.Errorf("the default organisation lists bp-crisis as %+v, want the default pack's", gotA)
	}
	if one, err := w.Eng.GetRule(ctx, adminA, "bp-crisis"); err != nil || one.Version != 1 || len(one.Versions) != 1 {
		t.Errorf("the default organisation's bp-crisis = %+v, %v; want version 1 alone", one, err)
	}

	// A rule org B creates exists for org B only: 404 elsewhere, and the id
	// stays free for another organisation.
	src := []byte(`{"id": "hr-very-high", "title": "Very high heart rate", "kind": "heart_rate",
		"when": "value > params.max", "params": {"max": 150}, "urgency": "high", "retake": {"enabled": false}}`)
	if _, err := w.Eng.CreateRule(ctx, b.Admin, src); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Eng.GetRule(ctx, adminA, "hr-very-high"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("another organisation's rule: %v, want ErrNotFound", err)
	}
	if _, _, err := w.Eng.UpdateRule(ctx, adminA, "hr-very-high", []byte(`{"enabled": false}`)); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("disabling another organisation's rule: %v, want ErrNotFound", err)
	}
	if _, ok := ruleIDs(mustList(t, w.Eng, adminA))["hr-very-high"]; ok {
		t.Error("the default organisation lists org B's rule")
	}
	if r, err := w.Eng.CreateRule(ctx, adminA, src); err != nil || r.Version != 1 || r.OrgID == nil || *r.OrgID != orgA {
		t.Errorf("the same id in the default organisation: %+v, %v", r, err)
	}
	if _, err := w.Eng.CreateRule(ctx, b.Admin, src); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("org B creating its rule twice: %v, want ErrConflict", err)
	}

	// Disabling is an override too.
	if _, _, err := w.Eng.UpdateRule(ctx, b.Admin, "hr-high", []byte(`{"enabled": false}`)); err != nil {
		t.Fatal(err)
	}
	hr := func(dev engine.Actor) int {
		res, err := w.Eng.Ingest(ctx, dev, engine.IngestRequest{PatientID: dev.PatientID,
			Readings: []rpm.Reading{{Kind: rpm.HeartRate, Value: enginetest.Ptr(140), Unit: "/min", ObservedAt: time.Now()}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Alerts) + len(res.Retakes) // hr-high asks for a retake before it pages
	}
	if n := hr(b.Device); n != 0 {
		t.Errorf("HR 140 in org B, which disabled hr-high, raised or asked %d", n)
	}
	if n := hr(devA); n != 1 {
		t.Errorf("HR 140 in the default organisation raised or asked %d, want hr-high's retake", n)
	}

	// The writes are audited in their organisation.
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action IN ('rule.update', 'rule.create', 'rule.disable')
		AND actor_id = $1 AND org_id = $2`, b.Admin.UserID, b.ID); n != 3 {
		t.Errorf("%d audit entries of org B's rule writes in org B, want 3", n)
	}
	// The default pack itself is unchanged.
	if n := w.Count(t, `SELECT max(version) FROM rule_versions WHERE rule_id = 'bp-crisis' AND org_id IS NULL`); n != 1 {
		t.Errorf("the default pack's bp-crisis is at version %d, want 1", n)
	}
}

func mustList(t *testing.T, eng *engine.Engine, a engine.Actor) []engine.Rule {
	t.Helper()
	rs, err := eng.ListRules(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// Tend itself edits the default pack: every organisation without an
// override of the rule follows it, an organisation with one keeps its own.
func TestDefaultPackEditReachesOrganisationsWithoutOverride(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	b := enginetest.NewOrg(t, w, "clinic-b")
	c := enginetest.NewOrg(t, w, "clinic-c")
	if _, _, err := w.Eng.UpdateRule(ctx, c.Admin, "bp-crisis", []byte(bpCrisis(200, 130))); err != nil {
		t.Fatal(err)
	}
	r, _, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(bpCrisis(170, 110)))
	if err != nil || r.OrgID != nil || r.Version != 2 {
		t.Fatalf("default pack edit = %+v, %v", r, err)
	}
	if got := bpAlerts(t, w.Eng, b.Device, 175); len(got) != 1 {
		t.Errorf("175 in org B (no override) raised %v, want the default pack's new 170", got)
	}
	if got := bpAlerts(t, w.Eng, c.Device, 190); len(got) != 0 {
		t.Errorf("190 in org C (its own 200) raised %v", got)
	}
	rc, err := w.Eng.GetRule(ctx, c.Admin, "bp-crisis")
	if err != nil || rc.Version != 2 || rc.OrgID == nil || rc.DefaultVersion == nil || *rc.DefaultVersion != 2 ||
		rc.Default == nil || rc.Default.Version != 2 || rc.Default.Definition.Params["systolic_max"] != 170 {
		t.Errorf("org C's bp-crisis = %+v, %v; want its override (2) over the default pack's version 2, shown", rc, err)
	}
	if rb, err := w.Eng.GetRule(ctx, b.Clinician, "bp-crisis"); err != nil || rb.Default != nil || rb.Overridden {
		t.Errorf("org B's bp-crisis = %+v, %v; want the default pack's own, no default beside it", rb, err)
	}
	// Org C edits again: its next version follows its own.
	if r, _, err := w.Eng.UpdateRule(ctx, c.Admin, "bp-crisis", []byte(bpCrisis(195, 125))); err != nil || r.Version != 3 || len(r.Versions) != 3 {
		t.Errorf("org C's second edit = %+v, %v; want version 3 over its 2 and the default's 1", r, err)
	}
}

// Another process picks up an organisation's change and recompiles that
// organisation's pack alone.
func TestOtherProcessesPickUpOrgOverrides(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	b := enginetest.NewOrg(t, w, "clinic-b")
	other := w.NewEngineWith(t, engine.Config{RulesRefresh: 20 * time.Millisecond})
	def := other.Rules()
	if other.RulesFor(b.ID) != def {
		t.Fatal("an organisation without overrides does not share the default pack")
	}
	if _, _, err := w.Eng.UpdateRule(context.Background(), b.Admin, "bp-crisis", []byte(bpCrisis(150, 100))); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFor(t, func() bool {
		r, ok := other.RulesFor(b.ID).Rule("bp-crisis")
		return ok && r.Version == 2 && r.Params["systolic_max"] == 150
	})
	if other.Rules() != def {
		t.Error("an organisation's change recompiled the default pack")
	}
	if other.RulesFor(uuid.MustParse("00000000-0000-0000-0000-000000000001")) != def {
		t.Error("the default organisation no longer shares the default pack")
	}
	if got := bpAlerts(t, other, b.Device, 155); len(got) != 1 {
		t.Errorf("the other process raised %v for org B, want bp-crisis at 150", got)
	}
}

// Backtests and simulations use the actor's organisation's pack, and a
// backtest replays only that organisation's patients.
func TestBacktestAndSimulateUseTheOrganisationsPack(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	b := enginetest.NewOrg(t, w, "clinic-b")
	adminA := enginetest.DefaultOrgAdmin(t, w)
	at := time.Now().Add(-time.Hour)
	for _, dev := range []engine.Actor{w.Device, b.Device} {
		if _, err := w.Eng.Ingest(ctx, dev, engine.IngestRequest{PatientID: dev.PatientID,
			Readings: []rpm.Reading{enginetest.BP(160, 90, at, "")}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Eng.UpdateRule(ctx, b.Admin, "bp-crisis", []byte(bpCrisis(150, 100))); err != nil {
		t.Fatal(err)
	}
	resB, err := w.Eng.Backtest(ctx, b.Admin, engine.BacktestRequest{RuleID: "bp-crisis"})
	if err != nil {
		t.Fatal(err)
	}
	if resB.RuleVersion != 2 || resB.PatientsScanned != 1 || len(resB.Patients) != 1 || resB.Patients[0].PatientID != b.Patient.ID {
		t.Errorf("org B's backtest = %+v, want its override (version 2) over its one patient, who finds", resB)
	}
	resA, err := w.Eng.Backtest(ctx, adminA, engine.BacktestRequest{RuleID: "bp-crisis"})
	if err != nil {
		t.Fatal(err)
	}
	if resA.RuleVersion != 1 || resA.PatientsScanned != 1 || resA.Findings != 0 {
		t.Errorf("the default organisation's backtest = %+v, want version 1 over its one patient, no finding at 160", resA)
	}
	all, err := w.Eng.Backtest(ctx, w.Admin, engine.BacktestRequest{RuleID: "bp-crisis"})
	if err != nil || all.RuleVersion != 1 || all.PatientsScanned != 2 {
		t.Errorf("Tend's backtest = %+v, %v; want the default pack's rule over both organisations' patients", all, err)
	}

	// A proposal equal to org B's override changes nothing for org B, and
	// lowers the threshold for the default organisation.
	req := engine.SimulateRequest{Rules: []json.RawMessage{json.RawMessage(bpCrisis(150, 100))}, Patients: 30, Weeks: 2, Profiles: []string{"normal"}}
	simB, err := w.Eng.Simulate(ctx, b.Admin, req)
	if err != nil {
		t.Fatal(err)
	}
	if simB.Current[0].Needless.PerPatientWeek != simB.Proposed[0].Needless.PerPatientWeek {
		t.Errorf("org B's simulation of its own override: current %v, proposed %v; want equal",
			simB.Current[0].Needless, simB.Proposed[0].Needless)
	}
	simA, err := w.Eng.Simulate(ctx, adminA, req)
	if err != nil {
		t.Fatal(err)
	}
	if simA.Proposed[0].Needless.PerPatientWeek <= simA.Current[0].Needless.PerPatientWeek {
		t.Errorf("the default organisation's simulation of 150/100: current %v, proposed %v; want more pages proposed",
			simA.Current[0].Needless, simA.Proposed[0].Needless)
	}
}

// An organisation's admin lists the evaluation errors of their own
// organisation's patients only.
func TestRuleErrorsAreTheOrganisations(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	b := enginetest.NewOrg(t, w, "clinic-b")
	adminA := enginetest.DefaultOrgAdmin(t, w)
	for _, p := range []uuid.UUID{w.Patient.ID, b.Patient.ID} {
		if _, err := w.Pool.Exec(ctx, `INSERT INTO rule_eval_errors (rule_id, rule_version, patient_id, error) VALUES ('bp-crisis', 1, $1, 'x')`, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		a    engine.Actor
		want uuid.UUID
	}{{b.Admin, b.Patient.ID}, {adminA, w.Patient.ID}} {
		errs, _, err := w.Eng.ListRuleErrors(ctx, c.a, engine.RuleErrorFilter{})
		if err != nil || len(errs) != 1 || errs[0].PatientID != c.want {
			t.Errorf("rule errors = %+v, %v; want the organisation's patient's alone", errs, err)
		}
	}
	if errs, _, err := w.Eng.ListRuleErrors(ctx, w.Admin, engine.RuleErrorFilter{}); err != nil || len(errs) != 2 {
		t.Errorf("Tend's rule errors = %d, %v; want both", len(errs), err)
	}
}
