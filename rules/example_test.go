package rules_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// A rule firing on a reading.
func ExamplePack_Evaluate() {
	pack, err := rules.Default()
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	res := pack.Evaluate(rules.Input{
		Reading: rules.Observation{
			ID: "r1", Kind: rpm.BloodPressure, Value: 184, Systolic: 184, Diastolic: 121,
			Unit: "mm[Hg]", ObservedAt: now,
		},
		Programs: []string{"hypertension"},
		Now:      now,
	})
	for _, f := range res.Findings {
		fmt.Println(f.RuleID, f.Urgency, f.Title)
	}
	// Output:
	// bp-crisis critical Blood pressure in crisis range
}

// Personalised thresholds: a patient's own params win over the pack's.
func ExamplePack_Evaluate_personalised() {
	pack, err := rules.Load([]byte(`
- id: spo2-low
  title: Low oxygen saturation
  kind: spo2
  when: value < params.min
  params: {min: 92}
  program_params:
    copd: {min: 88}
  urgency: high
`))
	if err != nil {
		panic(err)
	}
	reading := rules.Observation{ID: "r1", Kind: rpm.SpO2, Value: 90, Unit: "%", ObservedAt: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	for _, in := range []rules.Input{
		{Reading: reading},
		{Reading: reading, Programs: []string{"copd"}},
		{Reading: reading, Programs: []string{"copd"}, Params: map[string]map[string]float64{"spo2-low": {"min": 91}}},
	} {
		fmt.Println(len(pack.Evaluate(in).Findings))
	}
	// Output:
	// 1
	// 0
	// 1
}

// Every problem of a pack, with its line.
func ExampleCheck() {
	src := []byte(`
- id: chest-pain
  title: Chest pain reported
  symptom: chest_pain
  when: value > 1
  urgency: critical
- id: hr-high
  title: High heart rate
  kind: heart_rate
  when: value > params.max
  urgency: urgent
`)
	for _, p := range rules.Check(src) {
		fmt.Println(p)
	}
	// Output:
	// line 5: [0].when (rule chest-pain): when cannot be combined with symptom: a symptom rule fires on the reported severity (use min_severity)
	// line 10: [1].when (rule hr-high): params.max has no default: add it to params
	// line 11: [1].urgency (rule hr-high): unknown urgency "urgent": expected critical, high, medium or low
}

// Load reports a *LoadError listing every problem.
func ExampleLoad() {
	_, err := rules.Load([]byte("- id: a\n  title: A\n  kind: spo2\n  when: value <\n  urgency: high\n"))
	var le *rules.LoadError
	if errors.As(err, &le) {
		fmt.Println(len(le.Problems), le.Problems[0].Line, le.Problems[0].Field)
	}
	// Output:
	// 1 4 [0].when
}
