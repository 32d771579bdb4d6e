package rules

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

func TestParseYAMLAndJSON(t *testing.T) {
	t.Parallel()
	yamlSrc := `
- id: spo2-low-sustained
  title: Low oxygen saturation on repeated readings
  kind: spo2
  when: value < params.min
  params: {min: 92}
  consecutive: 3
  within: 36h
  urgency: high
- id: no-weight-36h
  title: No recent weight
  kind: body_weight
  programs: [heart_failure]
  missing: 36h
  urgency: low
  enabled: false
`
	rs, err := Parse([]byte(yamlSrc))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("got %d rules", len(rs))
	}
	if got := rs[0].Within.Std(); got != 36*time.Hour {
		t.Errorf("within = %v", got)
	}
	if rs[1].IsEnabled() || !rs[0].IsEnabled() {
		t.Errorf("enabled: %v %v", rs[0].IsEnabled(), rs[1].IsEnabled())
	}
	if rs[1].Type() != MissingRule || rs[0].Type() != ReadingRule {
		t.Errorf("types: %s %s", rs[0].Type(), rs[1].Type())
	}

	// The same rules as JSON (with tabs) parse to the same values.
	js, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"within":"1d12h"`) || strings.Contains(string(js), `"program_params"`) {
		t.Errorf("JSON form: %s", js)
	}
	indented, _ := json.MarshalIndent(rs, "", "\t")
	back, err := Parse(indented)
	if err != nil {
		t.Fatalf("parse JSON: %v\n%s", err, indented)
	}
	if !reflect.DeepEqual(rs, back) {
		t.Errorf("JSON round trip differs:\n%+v\n%+v", rs, back)
	}
	var viaStd []Rule
	if err := json.Unmarshal(js, &viaStd); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rs, viaStd) {
		t.Errorf("encoding/json decodes differently:\n%+v\n%+v", rs, viaStd)
	}
}

func TestParseSingleRuleObject(t *testing.T) {
	t.Parallel()
	rs, err := Parse([]byte(`{"id": "x", "title": "X", "kind": "heart_rate", "when": "value > 1.0", "urgency": "low"}`))
	if err != nil || len(rs) != 1 || rs[0].ID != "x" {
		t.Fatalf("got %v, %v", rs, err)
	}
	probs := Check([]byte(`{"id": "x", "title": "X", "kind": "heart_rate", "when": "value >", "urgency": "low"}`))
	if len(probs) == 0 || probs[0].Field != "when" {
		t.Fatalf("single rule problems have fields without index: %+v", probs)
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"", "# nothing\n", "[]", "~"} {
		rs, err := Parse([]byte(src))
		if err != nil || len(rs) != 0 {
			t.Errorf("%q: %v %v", src, rs, err)
		}
		if p, err := Load([]byte(src)); err != nil || len(p.Rules()) != 0 {
			t.Errorf("%q: load %v", src, err)
		}
	}
}

func TestParseMergeKeys(t *testing.T) {
	t.Parallel()
	src := `
- &base
  id: a
  title: A
  kind: heart_rate
  when: value > params.max
  params: {max: 130}
  urgency: high
- <<: *base
  id: b
  params: {max: 150}
`
	p, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Rule("b")
	if b.When != "value > params.max" || b.Params["max"] != 150 || b.Kind != rpm.HeartRate {
		t.Errorf("merged rule: %+v", b)
	}
}

// TestCheck lists the problems of broken packs, with their lines.
func TestCheck(t *testing.T) {
	t.Parallel()
	base := "- id: r\n  title: R\n  urgency: high\n"
	tests := []struct {
		name string
		src  string
		want []Problem // Line, Field and a fragment of the reason
	}{
		{"unknown key", base + "  kind: heart_rate\n  when: value > 1.0\n  treshold: 3\n",
			[]Problem{{Line: 6, Field: "[0].treshold", Reason: `unknown field "treshold"`}}},
		{"unknown key suggestion", base + "  kind: heart_rate\n  when: value > 1.0\n  urgncy: high\n",
			[]Problem{{Line: 6, Field: "[0].urgncy", Reason: `did you mean "urgency"`}}},
		{"bad kind", base + "  kind: heartrate\n  when: value > 1.0\n",
			[]Problem{{Line: 4, Field: "[0].kind", Reason: `unknown vital kind "heartrate"`}}},
		{"bad urgency", "- id: r\n  title: R\n  urgency: urgent\n  kind: spo2\n  when: value < 90.0\n",
			[]Problem{{Line: 3, Field: "[0].urgency", Reason: `unknown urgency "urgent"`}}},
		{"bad program", base + "  kind: spo2\n  when: value < 90.0\n  programs: [copd, cardiology]\n",
			[]Problem{{Line: 6, Field: "[0].programs[1]", Reason: `unknown program "cardiology"`}}},
		{"bad duration", base + "  kind: body_weight\n  delta: {window: 1 day, rise: 1}\n",
			[]Problem{{Line: 5, Field: "[0].delta.window", Reason: "invalid duration"}}},
		{"missing delta window", base + "  kind: body_weight\n  delta: {rise: 1}\n",
			[]Problem{{Line: 5, Field: "[0].delta.window", Reason: "is required"}}},
		{"when and symptom", base + "  symptom: chest_pain\n  when: value > 1.0\n",
			[]Problem{{Line: 5, Field: "[0].when", Reason: "when cannot be combined with symptom"}}},
		{"kind and symptom", base + "  symptom: chest_pain\n  kind: spo2\n",
			[]Problem{{Line: 1, Field: "[0]", Reason: "watches one thing"}}},
		{"nothing watched", base, []Problem{{Line: 1, Field: "[0]", Reason: "needs one of kind"}}},
		{"no condition", base + "  kind: spo2\n", []Problem{{Line: 1, Field: "[0]", Reason: "needs a condition"}}},
		{"CEL type error", base + "  kind: spo2\n  when: value + 1 < 90\n",
			[]Problem{{Line: 5, Field: "[0].when", Reason: "found no matching overload for '_+_'"}}},
		{"CEL syntax error on a later line of a block", base + "  kind: spo2\n  when: |\n    value < 90.0 &&\n    value >\n",
			[]Problem{{Line: 7, Field: "[0].when", Reason: "CEL: Syntax error"}}},
		{"not bool", base + "  kind: spo2\n  when: value * 2.0\n",
			[]Problem{{Line: 5, Field: "[0].when", Reason: "must be a boolean expression"}}},
		{"undeclared param", base + "  kind: spo2\n  when: value < params.minimum\n  params: {min: 92}\n",
			[]Problem{{Line: 5, Field: "[0].when", Reason: "params.minimum has no default"}}},
		{"systolic outside blood pressure", base + "  kind: spo2\n  when: systolic < 90.0\n",
			[]Problem{{Line: 5, Field: "[0].when", Reason: "systolic is only defined for blood_pressure"}}},
		{"aggregate window not literal", base + "  kind: spo2\n  when: value < avg(unit)\n",
			[]Problem{{Line: 5, Field: "[0].when", Reason: "window must be a string literal"}}},
		{"aggregate bad series", base + "  kind: spo2\n  when: value < avg(\"24h\", \"pulse\")\n",
			[]Problem{{Line: 5, Field: "[0].when", Reason: `unknown series "pulse"`}}},
		{"duplicate ids", base + "  kind: spo2\n  when: value < 90.0\n" + base + "  kind: spo2\n  when: value < 85.0\n",
			[]Problem{{Line: 6, Field: "[1].id", Reason: `duplicate rule id "r" (first defined at line 1)`}}},
		{"duplicate field", base + "  kind: spo2\n  when: value < 90.0\n  when: value < 80.0\n",
			[]Problem{{Line: 6, Field: "[0].when", Reason: "duplicate field"}}},
		{"wrong type", base + "  kind: spo2\n  when: value < 90.0\n  consecutive: three\n",
			[]Problem{{Line: 6, Field: "[0].consecutive", Reason: "must be an integer"}}},
		{"params not numbers", base + "  kind: spo2\n  when: value < params.min\n  params: {min: low}\n",
			[]Problem{{Line: 6, Field: "[0].params.min", Reason: "must be a number"}}},
		{"program override of unknown param", base + "  kind: spo2\n  when: value < params.min\n  params: {min: 92}\n  program_params: {copd: {mn: 88}}\n",
			[]Problem{{Line: 7, Field: "[0].program_params.copd.mn", Reason: "unknown param"}}},
		{"delta rise clashes with params", base + "  kind: body_weight\n  delta: {window: 24h, rise: 1.4}\n  params: {rise: 2}\n",
			[]Problem{{Line: 6, Field: "[0].params.rise", Reason: "set by delta.rise"}}},
		{"rearm direction unknown", base + "  kind: spo2\n  when: value == params.x\n  params: {x: 1}\n  rearm: {value: 2}\n",
			[]Problem{{Line: 7, Field: "[0].rearm.value", Reason: "cannot tell which way params.x"}}},
		{"rearm without params", base + "  kind: spo2\n  when: value < 90.0\n  rearm: {value: 2}\n",
			[]Problem{{Line: 6, Field: "[0].rearm.value", Reason: "no threshold param"}}},
		{"consecutive and sustained", base + "  kind: spo2\n  when: value < 90.0\n  consecutive: 3\n  sustained: 2h\n",
			[]Problem{{Line: 7, Field: "[0].sustained", Reason: "either consecutive or sustained"}}},
		{"missing with when", base + "  kind: body_weight\n  missing: 36h\n  when: value > 1.0\n",
			[]Problem{{Line: 6, Field: "[0].when", Reason: "does not apply to missing-data rules"}}},
		{"bad event", base + "  event: {type: missed_pill, count: 0, per: drug}\n",
			[]Problem{
				{Line: 4, Field: "[0].event.type", Reason: `unknown event type "missed_pill"`},
				{Line: 4, Field: "[0].event.count", Reason: "between 1 and"},
				{Line: 4, Field: "[0].event.window", Reason: "is required"},
				{Line: 4, Field: "[0].event.per", Reason: `unknown grouping "drug"`},
			}},
		{"bad id", "- id: Bad Id\n  title: R\n  urgency: high\n  kind: spo2\n  when: value < 90.0\n",
			[]Problem{{Line: 1, Field: "[0].id", Reason: "lower-case"}}},
		{"syntax error", "- id: r\n  title: [unclosed\n", []Problem{{Line: 2, Reason: "syntax error"}}},
		{"syntax error later", "- id: r\n  title: R\n  kind: spo2\n  when: x\n  params: {a: [}\n", []Problem{{Line: 5, Reason: "syntax error"}}},
		{"not a list", "just a string\n", []Problem{{Line: 1, Reason: "a pack is a list of rules"}}},
		{"empty any", base + "  kind: spo2\n  any: []\n", []Problem{{Line: 5, Field: "[0].any", Reason: "at least one condition"}}},
		{"empty sub-condition", base + "  kind: spo2\n  any:\n    - {}\n", []Problem{{Line: 6, Field: "[0].any[0]", Reason: "needs when, delta, all or any"}}},
		{"nested CEL error", base + "  kind: spo2\n  all:\n    - when: value < 90.0\n    - when: value < \"x\"\n",
			[]Problem{{Line: 7, Field: "[0].all[1].when", Reason: "found no matching overload"}}},
		{"negative duration", base + "  kind: spo2\n  when: value < 90.0\n  sustained: -2h\n",
			[]Problem{{Line: 6, Field: "[0].sustained", Reason: "must be positive"}}},
		{"too long duration", base + "  kind: spo2\n  when: value < 90.0\n  sustained: 100d\n",
			[]Problem{{Line: 6, Field: "[0].sustained", Reason: "too long"}}},
		{"min_severity out of range", base + "  symptom: chest_pain\n  min_severity: 11\n",
			[]Problem{{Line: 5, Field: "[0].min_severity", Reason: "between 1 and 10"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Check([]byte(tt.src))
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					if g.Line == w.Line && g.Field == w.Field && strings.Contains(g.Reason, w.Reason) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing problem %+v\ngot %+v", w, got)
				}
			}
			// Load fails with the same problems.
			_, err := Load([]byte(tt.src))
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) != len(got) {
				t.Errorf("Load error %v does not carry the %d problems", err, len(got))
			}
			var p Problem
			if !errors.As(err, &p) {
				t.Errorf("a Problem is not reachable with errors.As from %v", err)
			}
		})
	}
}

// TestCheckReportsEveryProblem checks that problems of different rules and
// fields come together, in line order.
func TestCheckReportsEveryProblem(t *testing.T) {
	t.Parallel()
	src := `
- id: a
  title: A
  kind: spo2
  when: value < params.min
  urgency: severe
- id: b
  title: B
  symptom: chest_pain
  when: value > 1.0
  urgency: high
- id: a
  title: A again
  kind: heart_rate
  when: value >
  urgency: high
  colour: red
`
	got := Check([]byte(src))
	want := []struct {
		line  int
		field string
	}{{5, "[0].when"}, {6, "[0].urgency"}, {10, "[1].when"}, {12, "[2].id"}, {15, "[2].when"}, {17, "[2].colour"}}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Line != w.line || got[i].Field != w.field {
			t.Errorf("problem %d = %+v, want line %d field %s", i, got[i], w.line, w.field)
		}
	}
}

func TestCompileWithoutSource(t *testing.T) {
	t.Parallel()
	_, err := Compile([]Rule{
		{ID: "a", Title: "A", Kind: rpm.SpO2, When: "value < 90.0", Urgency: rpm.High},
		{ID: "a", Title: "A", Kind: rpm.SpO2, When: "value <", Urgency: "nope"},
	})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	fields := map[string]bool{}
	for _, p := range le.Problems {
		if p.Line != 0 {
			t.Errorf("problem without source has a line: %+v", p)
		}
		fields[p.Field] = true
	}
	for _, f := range []string{"[1].id", "[1].when", "[1].urgency"} {
		if !fields[f] {
			t.Errorf("missing problem on %s: %+v", f, le.Problems)
		}
	}
}

func TestCompileDoesNotAliasInput(t *testing.T) {
	t.Parallel()
	rs := []Rule{{ID: "a", Title: "A", Kind: rpm.SpO2, When: "value < params.min", Params: map[string]float64{"min": 90}, Urgency: rpm.High}}
	p, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	rs[0].Params["min"] = 50
	got, _ := p.Rule("a")
	if got.Params["min"] != 90 {
		t.Error("the pack shares the caller's params map")
	}
	got.Params["min"] = 10
	again, _ := p.Rule("a")
	if again.Params["min"] != 90 {
		t.Error("Rule returns the pack's own map")
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"24h", 24 * time.Hour, "1d"},
		{"36h", 36 * time.Hour, "1d12h"},
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"1.5h", 90 * time.Minute, "1h30m"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"45s", 45 * time.Second, "45s"},
	} {
		d, err := ParseDuration(tt.in)
		if err != nil || d.Std() != tt.want || d.String() != tt.out {
			t.Errorf("%s: %v %v %s", tt.in, d.Std(), err, d)
		}
	}
	for _, bad := range []string{"", "h", "1", "1 d", "1w", "1dd", "-", "1e3h", "99999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestDefaultPack(t *testing.T) {
	t.Parallel()
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		urgency  rpm.Urgency
		programs []string
	}{
		"bp-crisis": {rpm.Critical, nil}, "bp-low": {rpm.High, nil}, "hr-low": {rpm.High, nil}, "hr-high": {rpm.High, nil},
		"spo2-critical": {rpm.Critical, nil}, "spo2-low-sustained": {rpm.High, nil},
		"glucose-critical-low": {rpm.Critical, nil}, "glucose-low": {rpm.High, nil}, "glucose-high": {rpm.High, nil},
		"hf-weight-gain-24h": {rpm.High, []string{"heart_failure"}}, "hf-weight-gain-7d": {rpm.High, []string{"heart_failure"}},
		"temp-fever": {rpm.Medium, nil}, "chest-pain": {rpm.Critical, nil}, "fainting": {rpm.Critical, nil},
		"weakness-one-side": {rpm.Critical, nil}, "missed-doses": {rpm.Medium, nil},
		"no-weight-36h":         {rpm.Low, []string{"heart_failure"}},
		"spo2-copd-below-usual": {rpm.High, []string{"copd"}}, "rr-high": {rpm.High, nil},
		"hf-weight-gain-3d":   {rpm.High, []string{"heart_failure"}},
		"spo2-ask-breathless": {rpm.Low, []string{"copd", "heart_failure"}}, "spo2-ask-cough": {rpm.Low, []string{"copd"}},
	}
	if len(rs) != len(want) {
		t.Errorf("default pack has %d rules, want %d", len(rs), len(want))
	}
	for _, r := range rs {
		w, ok := want[r.ID]
		if !ok {
			t.Errorf("unexpected rule %s", r.ID)
			continue
		}
		if r.Urgency != w.urgency || !reflect.DeepEqual(r.Programs, w.programs) {
			t.Errorf("%s: urgency %s programs %v", r.ID, r.Urgency, r.Programs)
		}
		if r.Source == "" || r.Title == "" {
			t.Errorf("%s has no source or title", r.ID)
		}
		if strings.ContainsAny(r.Title, "0123456789") {
			t.Errorf("%s: title %q carries a value", r.ID, r.Title)
		}
		if r.Type() == ReadingRule && r.Rearm == nil {
			t.Errorf("%s has no re-arm band", r.ID)
		}
	}
	for id, params := range map[string]map[string]float64{
		"bp-crisis": {"systolic_max": 180, "diastolic_max": 120, "systolic_now": 240, "diastolic_now": 140, "systolic_band": 8, "diastolic_band": 5},
		"bp-low":    {"systolic_min": 90, "systolic_now": 80},
		"hr-low":    {"min": 40, "min_now": 30}, "hr-high": {"max": 115, "max_now": 200}, "spo2-critical": {"min": 88, "min_now": 75}, "spo2-low-sustained": {"min": 92},
		"glucose-critical-low": {"min": 54}, "glucose-low": {"min": 70, "min_now": 54}, "glucose-high": {"max": 300},
		"hf-weight-gain-24h": {"rise": 1.4}, "hf-weight-gain-3d": {"rise": 1.8}, "hf-weight-gain-7d": {"rise": 1.5},
		"temp-fever":            {"max": 38, "max_now": 39.5, "band": 0.3},
		"spo2-copd-below-usual": {"drop": 3, "target_min": 88}, "rr-high": {"max": 25},
		"chest-pain": {"min_severity": 1}, "missed-doses": {"count": 2},
	} {
		got, err := p.EffectiveParams(id, nil, nil)
		if err != nil || !reflect.DeepEqual(got, params) {
			t.Errorf("%s params = %v, %v; want %v", id, got, err, params)
		}
	}
	// SpO2: the COPD baseline (14 days) behind the 12h re-arm period of
	// the single-reading baseline rule.
	if p.Lookback() != 348*time.Hour {
		t.Errorf("lookback = %v", p.Lookback())
	}
	if p.LookbackFor(rpm.BloodPressure) != 12*time.Hour || p.LookbackFor(rpm.SpO2) != 348*time.Hour || p.LookbackFor(rpm.RespiratoryRate) != 12*time.Hour {
		t.Errorf("lookbacks: bp %v spo2 %v rr %v", p.LookbackFor(rpm.BloodPressure), p.LookbackFor(rpm.SpO2), p.LookbackFor(rpm.RespiratoryRate))
	}
	// The 7-day weight rule: its 48h re-arm period plus its 7-day window.
	if got := p.HistoryNeeds(rpm.BodyWeight); !reflect.DeepEqual(got, map[rpm.Kind]time.Duration{rpm.BodyWeight: 216 * time.Hour}) {
		t.Errorf("weight history needs %v", got)
	}
	if got := p.BaselineKinds(); !reflect.DeepEqual(got, []rpm.Kind{rpm.SpO2}) {
		t.Errorf("baseline kinds %v", got)
	}
	if p.EventLookback() != 144*time.Hour {
		t.Errorf("event lookback = %v", p.EventLookback())
	}
	if len(DefaultSource()) == 0 {
		t.Error("no default source")
	}
}

func TestCheckParams(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	got := p.CheckParams(map[string]map[string]float64{
		"bp-crisis": {"systolic_max": 170, "sys_max": 1},
		"nope":      {"x": 1},
	})
	if len(got) != 2 || got[0].Field != "bp-crisis.sys_max" || got[1].Field != "nope" {
		t.Errorf("CheckParams = %+v", got)
	}
	if _, err := p.EffectiveParams("bp-crisis", nil, map[string]float64{"x": 1}); err == nil {
		t.Error("unknown param accepted")
	}
}
