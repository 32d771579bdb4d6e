package alerting_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func TestEvaluationErrorsAreRecordedNotSwallowed(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	// Without a guard on count, an empty window is an evaluation error.
	if _, err := w.Eng.CreateRule(ctx, w.Admin, []byte(`{"id": "hr-above-usual", "title": "Heart rate above usual",
		"kind": "heart_rate", "when": "value > avg(\"7d\") + 20.0", "urgency": "medium"}`)); err != nil {
		t.Fatal(err)
	}
	res, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{{Kind: rpm.HeartRate, Value: enginetest.Ptr(97), Unit: "/min", ObservedAt: time.Now()}}})
	if err != nil {
		t.Fatalf("ingest failed because a rule could not be evaluated: %v", err)
	}
	if res.Readings[0].Status != "created" {
		t.Fatalf("reading = %+v", res.Readings[0])
	}
	items, next, err := w.Eng.ListRuleErrors(ctx, w.Admin, engine.RuleErrorFilter{RuleID: "hr-above-usual"})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || next != "" {
		t.Fatalf("errors = %+v (next %q), want one", items, next)
	}
	e := items[0]
	if e.RuleVersion != 1 || e.PatientID != w.Patient.ID || e.ReadingID == nil || *e.ReadingID != res.Readings[0].ID ||
		!strings.Contains(e.Error, "no readings in the window") {
		t.Errorf("error = %+v", e)
	}
	if strings.Contains(e.Error, "97") {
		t.Errorf("error text leaks the value: %q", e.Error)
	}
	if _, _, err := w.Eng.ListRuleErrors(ctx, w.Clinician, engine.RuleErrorFilter{}); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("clinician: err = %v, want ErrForbidden", err)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'rule_error.list'`); n != 1 {
		t.Errorf("rule_error.list audit entries = %d, want 1", n)
	}
}
