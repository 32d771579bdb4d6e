package rulestore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// engineWith builds and starts another engine on w's database with cfg
// adjusted by opt.
// bpCrisis is the default bp-crisis rule with other thresholds.
func bpCrisis(systolic, diastolic int) string {
	return fmt.Sprintf(`{"id": "bp-crisis", "title": "Blood pressure in crisis range", "kind": "blood_pressure",
		"when": "systolic >= params.systolic_max || diastolic >= params.diastolic_max",
		"params": {"systolic_max": %d, "diastolic_max": %d}, "urgency": "critical", "retake": {"enabled": false}}`, systolic, diastolic)
}

func TestRulesAreSeededOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	pool := enginetest.NewPool(t)
	defaults, err := rules.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			eng, err := engine.New(engine.Config{Pool: pool, RulesRefresh: -1})
			if err == nil {
				err = eng.Start(context.Background())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n, v1, seeds int
	if err := pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE version = 1 AND created_by IS NULL),
		(SELECT count(*) FROM audit_entries WHERE action = 'rule.seed') FROM rule_versions`).Scan(&n, &v1, &seeds); err != nil {
		t.Fatal(err)
	}
	if n != len(defaults) || v1 != len(defaults) || seeds != 1 {
		t.Errorf("rule_versions = %d (%d seeded version 1), seed audits %d; want %d, %d, 1", n, v1, seeds, len(defaults), len(defaults))
	}
}

func TestRuleChangeIsVersionedAuditedAndFiresWithItsVersion(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	r, changed, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(bpCrisis(170, 110)))
	if err != nil || !changed {
		t.Fatalf("update: changed %v, %v", changed, err)
	}
	if r.Version != 2 || len(r.Versions) != 2 || r.Versions[0].Version != 2 || !r.Enabled || r.Definition.Params["systolic_max"] != 170 {
		t.Fatalf("updated rule = %+v", r)
	}
	// The same definition again is no change.
	if _, changed, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(bpCrisis(170, 110))); err != nil || changed {
		t.Errorf("repeated update: changed %v, %v; want no new version", changed, err)
	}
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(175, 90, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "bp-crisis" {
		t.Fatalf("alerts = %+v, want bp-crisis at the new threshold", res.Alerts)
	}
	if n := w.Count(t, `SELECT rule_version FROM alerts WHERE id = $1`, res.Alerts[0].ID); n != 2 {
		t.Errorf("alert rule_version = %d, want 2", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM alert_findings WHERE alert_id = $1 AND rule_version = 2`, res.Alerts[0].ID); n != 1 {
		t.Errorf("findings of version 2 = %d, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'rule.update' AND object_id = 'bp-crisis'`); n != 1 {
		t.Errorf("rule.update audit entries = %d, want 1", n)
	}
}

func TestCreateRuleRefusesDuplicatesAndListsEveryProblem(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	src := []byte(`{"id": "hr-very-high", "title": "Very high heart rate", "kind": "heart_rate",
		"when": "value > params.max", "params": {"max": 150}, "urgency": "critical", "retake": {"enabled": false}}`)
	r, err := w.Eng.CreateRule(ctx, w.Admin, src)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 || r.Type != rules.ReadingRule || r.Urgency != rpm.Critical || r.UpdatedBy != nil {
		t.Errorf("created = %+v", r)
	}
	if _, err := w.Eng.CreateRule(ctx, w.Admin, src); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("second create: err = %v, want ErrConflict", err)
	}
	bad := []byte(`{
  "id": "broken",
  "title": "Broken",
  "kind": "heart_rate",
  "when": "value > params.nope",
  "urgency": "urgent-ish"
}`)
	_, err = w.Eng.CreateRule(ctx, w.Admin, bad)
	var le *rules.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *rules.LoadError", err)
	}
	got := map[string]int{}
	for _, p := range le.Problems {
		got[p.Field] = p.Line
	}
	if got["when"] != 5 || got["urgency"] != 6 {
		t.Errorf("problems = %+v, want when (line 5) and urgency (line 6)", le.Problems)
	}
	if _, err := w.Eng.CreateRule(ctx, w.Admin, []byte(`{"id": "errors", "title": "x", "symptom": "cough", "urgency": "low"}`)); !errors.As(err, &le) {
		t.Errorf("reserved id: err = %v, want a *rules.LoadError", err)
	}
	if _, err := w.Eng.CreateRule(ctx, w.Clinician, src); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("clinician create: err = %v, want ErrForbidden", err)
	}
	if n := w.Count(t, `SELECT count(*) FROM rule_versions WHERE rule_id IN ('broken', 'errors')`); n != 0 {
		t.Errorf("%d invalid rules stored", n)
	}
	// The new rule is active in this process at once.
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{{Kind: rpm.HeartRate, Value: enginetest.Ptr(160), Unit: "/min", ObservedAt: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "hr-very-high" {
		t.Errorf("alerts = %+v, want hr-very-high", res.Alerts)
	}
}

func TestDisabledRuleDoesNotFire(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	r, changed, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(`{"enabled": false}`))
	if err != nil || !changed || r.Enabled || r.Version != 2 {
		t.Fatalf("disable: %+v, changed %v, %v", r, changed, err)
	}
	if _, changed, _ := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(`{"enabled": false}`)); changed {
		t.Error("disabling a disabled rule added a version")
	}
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(200, 125, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Alerts {
		if a.RuleID == "bp-crisis" {
			t.Errorf("disabled bp-crisis fired: %+v", res.Alerts)
		}
	}
	// A full definition without "enabled" keeps the rule disabled.
	r, _, err = w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(bpCrisis(175, 115)))
	if err != nil || r.Enabled || r.Version != 3 {
		t.Errorf("edit of a disabled rule: %+v, %v; want version 3, still disabled", r, err)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'rule.disable' AND object_id = 'bp-crisis'`); n != 1 {
		t.Errorf("rule.disable audit entries = %d, want 1", n)
	}
}

func TestUpdateRuleChecksVersionAndID(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	if _, _, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(`{"enabled": false, "version": 1}`)); err != nil {
		t.Fatal(err)
	}
	// Someone read version 1 and edits it after the change: a conflict.
	stale := strings.Replace(bpCrisis(170, 110), `{"id"`, `{"version": 1, "id"`, 1)
	if _, _, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(stale)); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("stale version: err = %v, want ErrConflict", err)
	}
	var le *rules.LoadError
	if _, _, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-low", []byte(bpCrisis(170, 110))); !errors.As(err, &le) || le.Problems[0].Field != "id" {
		t.Errorf("id mismatch: err = %v, want a problem on id", err)
	}
	// The id may be left out of the body.
	noID := `{"title": "Blood pressure in crisis range", "kind": "blood_pressure", "when": "systolic >= 170.0", "urgency": "critical"}`
	if r, _, err := w.Eng.UpdateRule(ctx, w.Admin, "bp-crisis", []byte(noID)); err != nil || r.Version != 3 {
		t.Errorf("update without id: %+v, %v", r, err)
	}
	if _, _, err := w.Eng.UpdateRule(ctx, w.Admin, "no-such-rule", []byte(`{"enabled": true}`)); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("unknown rule: err = %v, want ErrNotFound", err)
	}
}

func TestOtherProcessesPickUpRuleChanges(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	other := w.NewEngineWith(t, engine.Config{RulesRefresh: 20 * time.Millisecond})
	if _, _, err := w.Eng.UpdateRule(context.Background(), w.Admin, "bp-crisis", []byte(bpCrisis(160, 100))); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFor(t, func() bool {
		r, ok := other.Rules().Rule("bp-crisis")
		return ok && r.Version == 2 && r.Params["systolic_max"] == 160
	})
	res, err := other.Ingest(context.Background(), w.Device, engine.IngestRequest{PatientID: w.Patient.ID, Readings: []rpm.Reading{enginetest.BP(165, 90, time.Now(), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RuleID != "bp-crisis" {
		t.Errorf("other process alerts = %+v, want bp-crisis at 160", res.Alerts)
	}
}

func TestListAndGetRules(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	list, err := w.Eng.ListRules(ctx, w.Clinician)
	if err != nil {
		t.Fatal(err)
	}
	defaults, _ := rules.DefaultRules()
	if len(list) != len(defaults) || list[0].ID != defaults[0].ID || list[0].Version != 1 {
		t.Fatalf("list = %d rules starting %s; want the default pack in order", len(list), list[0].ID)
	}
	r, err := w.Eng.GetRule(ctx, w.Clinician, "no-weight-36h")
	if err != nil || r.Type != rules.MissingRule || len(r.Versions) != 1 || r.Definition.Missing.Std() != 36*time.Hour {
		t.Errorf("get = %+v, %v", r, err)
	}
	if _, err := w.Eng.GetRule(ctx, w.Clinician, "nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("unknown rule: %v", err)
	}
	if _, err := w.Eng.ListRules(ctx, w.Device); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("device list: %v", err)
	}
}
