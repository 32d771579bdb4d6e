package rules

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

func fuzzSeeds(f *testing.F) {
	f.Add(DefaultSource())
	for _, s := range []string{
		"", "[]", "{}", "~", "- id: a\n", "- &a {id: x}\n- *a\n- <<: *a\n",
		"- id: a\n  title: A\n  kind: spo2\n  when: value < params.min\n  params: {min: 92}\n  consecutive: 3\n  urgency: high\n",
		"- id: a\n  title: A\n  kind: heart_rate\n  any: [{when: 'avg(\"1h\") > 1.0'}, {delta: {window: 1h, rise: 3}}]\n  urgency: low\n",
		`[{"id": "a", "title": "A", "symptom": "chest_pain", "min_severity": 2, "urgency": "critical"}]`,
		`{"id": "a", "title": "A", "event": {"type": "missed_dose", "count": 2, "window": "72h"}, "urgency": "medium"}`,
		"- id: a\n  when: |\n    value <\n",
		"a: &a [*a, *a]\n",
		"- [[[[[[[[[[]]]]]]]]]]\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzLoadRules: Load never panics; a pack that loads also checks clean,
// evaluates without panicking, and survives a JSON round trip.
func FuzzLoadRules(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			return
		}
		if probs := Check(data); len(probs) != 0 {
			t.Fatalf("Load succeeded but Check reports %v", probs)
		}
		js, err := json.Marshal(p.Rules())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(js); err != nil {
			t.Fatalf("JSON form of a valid pack does not load: %v\n%s", err, js)
		}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		hist := []Observation{
			{ID: "h1", Kind: rpm.SpO2, Value: 91, ObservedAt: base.Add(-time.Hour)},
			{ID: "h2", Kind: rpm.HeartRate, Value: 150, ObservedAt: base.Add(-time.Hour)},
			{ID: "h3", Kind: rpm.BloodPressure, Value: 190, Systolic: 190, Diastolic: 125, ObservedAt: base.Add(time.Hour)},
		}
		for _, k := range p.Kinds() {
			p.Evaluate(Input{Reading: Observation{ID: "x", Kind: k, Value: 91, Systolic: 180, Diastolic: 100, ObservedAt: base}, History: hist, Programs: rpm.Programs()})
		}
		p.EvaluateSymptoms(SymptomInput{Symptoms: []rpm.Symptom{{Code: rpm.ChestPain, Severity: 5}}, Now: base})
		p.EvaluateMissing(MissingInput{EnrolledAt: base, Now: base.Add(100 * time.Hour)})
		p.EvaluateEvents(EventInput{Event: Event{Type: MissedDose, At: base}, History: []Event{{Type: MissedDose, At: base.Add(-time.Hour)}}})
		p.Replay(ReplayInput{Readings: hist, EnrolledAt: base.Add(-48 * time.Hour), Until: base.Add(48 * time.Hour)})
	})
}

// FuzzCheck: Check never panics and every problem says what is wrong.
func FuzzCheck(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range Check(data) {
			if p.Reason == "" || p.Line < 0 {
				t.Fatalf("bad problem %+v", p)
			}
		}
	})
}
