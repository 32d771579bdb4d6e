package rules

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// TestBaselineRuleGetsRetake is the regression test of a defect: a
// single-reading rule that reads baseline got no retake by default, against
// the documentation (windowed() counted the baseline as a window), so in a
// replay it paged at once on every finding.
func TestBaselineRuleGetsRetake(t *testing.T) {
	t.Parallel()
	for _, when := range []string{`has_baseline && value <= baseline - 4.0`, `value <= 88`} {
		p := mustLoad(t, "id: x\ntitle: X\nurgency: high\nkind: spo2\nretake: {within: 10m}\nwhen: "+when)
		if s, _ := p.RetakeOf("x"); !s.Enabled {
			t.Errorf("%s: retake off", when)
		}
	}
	p := mustLoad(t, "id: x\ntitle: X\nurgency: high\nkind: spo2\nwhen: has_baseline && value <= baseline - 4.0")
	var rs []Observation
	for i := range 6 {
		rs = append(rs, obs(string(rune('a'+i)), rpm.SpO2, 93, at(time.Duration(i)*24*time.Hour)))
	}
	rs = append(rs, obs("low", rpm.SpO2, 88, at(6*24*time.Hour)))
	res := p.Replay(ReplayInput{Readings: rs})
	if len(res.Alerts) != 1 || res.Alerts[0].Retake != RetakeTimedOut {
		t.Errorf("a baseline drop with no retake: alerts %+v, want one opened at the retake's deadline", res.Alerts)
	}
}

// TestRetakeConfirm: retake.confirm widens what a retake must show; without
// it the rule's own condition must hold again.
func TestRetakeConfirm(t *testing.T) {
	t.Parallel()
	src := `id: crisis
title: Crisis
urgency: critical
kind: blood_pressure
when: systolic >= params.max
params: {max: 180, band: 8}
retake: {confirm: "systolic >= params.max - params.band"}`
	banded := mustLoad(t, src)
	plain := mustLoad(t, strings.Replace(src, `retake: {confirm: "systolic >= params.max - params.band"}`, "retake: {within: 10m}", 1))
	if s, _ := banded.RetakeOf("crisis"); s.Confirm == "" {
		t.Error("RetakeOf lacks the confirm condition")
	}
	first := bp("a", 186, 100, at(0))
	f := Finding{RuleID: "crisis", Kind: rpm.BloodPressure, ObservationID: "a", At: at(0), RetakeBy: at(10 * time.Minute)}
	tests := []struct {
		retake        float64
		banded, plain RetakeOutcome
	}{
		{184, RetakeConfirmed, RetakeConfirmed},
		{176, RetakeConfirmed, RetakeNotConfirmed}, // a point or two on the normal side: still a crisis
		{171, RetakeNotConfirmed, RetakeNotConfirmed},
	}
	for _, tt := range tests {
		in := RetakeInput{Finding: f, Readings: []Observation{first, bp("b", tt.retake, 100, at(4*time.Minute))}, Now: at(4 * time.Minute)}
		if got := banded.DecideRetake(in).Outcome; got != tt.banded {
			t.Errorf("retake %v with the band: %v, want %v", tt.retake, got, tt.banded)
		}
		if got := plain.DecideRetake(in).Outcome; got != tt.plain {
			t.Errorf("retake %v without: %v, want %v", tt.retake, got, tt.plain)
		}
	}
	if _, err := Load([]byte(src + "\n  # aggregates are refused\n")); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(src, `systolic >= params.max - params.band`, `systolic > avg(\"1d\")`, 1)
	if _, err := Load([]byte(bad)); err == nil || !strings.Contains(err.Error(), "retake.confirm") {
		t.Errorf("an aggregate in retake.confirm: %v", err)
	}
}

const askPack = `
- id: ask-breathless
  title: Breathlessness asks for SpO2
  symptom: shortness_of_breath
  ask: {kind: spo2, within: 30m}
  urgency: low
- id: chest
  title: Chest pain
  symptom: chest_pain
  urgency: critical
- id: low
  title: Low SpO2
  kind: spo2
  when: value < 88
  retake: {enabled: false}
  urgency: high
`

// TestAskCompiles: ask belongs to symptom rules, with a known kind and a
// bounded wait.
func TestAskCompiles(t *testing.T) {
	t.Parallel()
	mustLoad(t, askPack)
	for _, bad := range []struct{ src, field string }{
		{"id: a\ntitle: A\nurgency: low\nsymptom: cough\nask: {kind: mood}", "ask.kind"},
		{"id: a\ntitle: A\nurgency: low\nsymptom: cough\nask: {kind: spo2, within: 5h}", "ask.within"},
		{"id: a\ntitle: A\nurgency: low\nkind: spo2\nwhen: value < 80\nask: {kind: spo2}", "ask"},
		{"id: a\ntitle: A\nurgency: low\nkind: spo2\nmissing: 36h\nask: {kind: spo2}", "ask"},
	} {
		_, err := Load([]byte(bad.src))
		if err == nil || !strings.Contains(err.Error(), bad.field) {
			t.Errorf("%q: %v, want a problem with %s", bad.src, err, bad.field)
		}
	}
}

// TestAskReplay: a report of breathlessness asks for an SpO2 reading and
// pages no one; the reading that answers it is judged by the reading rules;
// a request nobody answers pages no one either.
func TestAskReplay(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, askPack)
	res := p.EvaluateSymptoms(SymptomInput{ReportID: "s1", Symptoms: []rpm.Symptom{{Code: rpm.ShortnessOfBreath, Severity: 4}, {Code: rpm.ChestPain, Severity: 2}}, Now: at(0)})
	var ask *Finding
	for i := range res.Findings {
		if res.Findings[i].Ask {
			ask = &res.Findings[i]
		}
	}
	if ask == nil || ask.Kind != rpm.SpO2 || !ask.RetakeBy.Equal(at(30*time.Minute)) || !slices.Contains(ids(res.Findings), "chest") {
		t.Fatalf("findings %+v", res.Findings)
	}
	d := p.DecideRetake(RetakeInput{Finding: *ask, Readings: []Observation{obs("r", rpm.SpO2, 86, at(12*time.Minute))}, Now: at(12 * time.Minute)})
	if d.Outcome != RetakeAnswered || d.Outcome.Pages() || d.Retake.ID != "r" {
		t.Errorf("answered: %+v", d)
	}
	if d := p.DecideRetake(RetakeInput{Finding: *ask, Now: at(31 * time.Minute)}); d.Outcome != RetakeUnanswered || d.Outcome.Pages() {
		t.Errorf("unanswered: %+v", d)
	}
	reports := []SymptomReport{{ID: "s1", At: at(0), Symptoms: []rpm.Symptom{{Code: rpm.ShortnessOfBreath, Severity: 4}}}}
	answered := p.Replay(ReplayInput{SymptomReports: reports, Readings: []Observation{obs("r", rpm.SpO2, 86, at(12*time.Minute))}})
	if len(answered.Alerts) != 1 || answered.Alerts[0].RuleID != "low" {
		t.Errorf("answered with 86: alerts %+v, want one of the SpO2 rule", answered.Alerts)
	}
	if f := answered.Findings[0]; f.RuleID != "ask-breathless" || f.Retake != RetakeAnswered || f.Alert != -1 {
		t.Errorf("the request: %+v", f)
	}
	quiet := p.Replay(ReplayInput{SymptomReports: reports})
	if len(quiet.Alerts) != 0 || quiet.Findings[0].Retake != RetakeUnanswered || quiet.NotConfirmed != 0 {
		t.Errorf("unanswered: %+v", quiet)
	}
}

// TestRetakePropertyPagesOnRealDeterioration is the property the retake
// mechanism must keep: whatever came before, when two readings within a
// rule's retake window both show a deterioration (both meet the rule's
// condition), the team is paged by the retake's deadline — unless an alert
// of the rule is still open (it was paged already).
func TestRetakePropertyPagesOnRealDeterioration(t *testing.T) {
	t.Parallel()
	p := mustShipped(t)
	type gen func(r *rand.Rand) (normal, bad float64)
	cases := []struct {
		rule string
		kind rpm.Kind
		gen  gen
	}{
		{"bp-crisis", rpm.BloodPressure, func(r *rand.Rand) (float64, float64) { return 110 + 60*r.Float64(), 180 + 50*r.Float64() }},
		{"hr-high", rpm.HeartRate, func(r *rand.Rand) (float64, float64) { return 55 + 50*r.Float64(), 116 + 80*r.Float64() }},
		{"spo2-critical", rpm.SpO2, func(r *rand.Rand) (float64, float64) { return 89 + 10*r.Float64(), 76 + 11*r.Float64() }},
		{"temp-fever", rpm.BodyTemperature, func(r *rand.Rand) (float64, float64) { return 36 + 1.9*r.Float64(), 38 + 1.4*r.Float64() }},
		{"glucose-low", rpm.BloodGlucose, func(r *rand.Rand) (float64, float64) { return 70 + 200*r.Float64(), 54 + 15*r.Float64() }},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		s, ok := p.RetakeOf(c.rule)
		if !ok || !s.Enabled {
			t.Fatalf("%s: no retake", c.rule)
		}
		for trial := range 300 {
			var rs []Observation
			at0 := t0
			for i := range rng.IntN(12) {
				v, bad := c.gen(rng)
				if rng.IntN(4) == 0 {
					v = bad
				}
				at0 = at0.Add(time.Duration(1+rng.IntN(20)) * time.Hour)
				rs = append(rs, reading(c.kind, "h"+string(rune('a'+i)), v, at0))
			}
			_, v1 := c.gen(rng)
			_, v2 := c.gen(rng)
			t1 := at0.Add(time.Duration(1+rng.IntN(30)) * time.Hour)
			t2 := t1.Add(time.Duration(rng.Int64N(int64(s.Within))))
			rs = append(rs, reading(c.kind, "first", v1, t1), reading(c.kind, "second", v2, t2))
			res := p.Replay(ReplayInput{Readings: rs, Programs: []string{"hypertension"}})
			if !pagedBy(p, res, c.rule, t1, t1.Add(s.Within)) {
				t.Fatalf("%s trial %d: %v then %v within %v paged no one: %+v", c.rule, trial, v1, v2, t2.Sub(t1), res.Alerts)
			}
		}
	}
}

// reading is one reading of kind (blood pressure: systolic v, diastolic
// two thirds of it).
func reading(kind rpm.Kind, id string, v float64, t time.Time) Observation {
	if kind == rpm.BloodPressure {
		return bp(id, v, v*2/3, t)
	}
	return obs(id, kind, v, t)
}

// pagedBy reports whether an alert of rule's kind opened in [from, by] (a
// more urgent rule of the kind may open the alert the finding joins), or an
// alert of rule was still open at from.
func pagedBy(p *Pack, res ReplayResult, rule string, from, by time.Time) bool {
	kinds := map[string]rpm.Kind{}
	for _, r := range p.Rules() {
		kinds[r.ID] = r.Kind
	}
	for _, a := range res.Alerts {
		if kinds[a.RuleID] == kinds[rule] && !a.OpenedAt.Before(from) && !a.OpenedAt.After(by) {
			return true
		}
		if a.RuleID != rule {
			continue
		}
		if a.OpenedAt.Before(from) && (a.ClosedAt.IsZero() || !a.ClosedAt.Before(from)) {
			return true
		}
	}
	return false
}
