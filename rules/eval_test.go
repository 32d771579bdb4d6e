package rules

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// stripNative makes every expression of p run on the CEL interpreter.
func stripNative(p *Pack) *Pack {
	var strip func(k *cond)
	strip = func(k *cond) {
		if k == nil {
			return
		}
		if k.when != nil {
			k.when.native = nil
		}
		for _, s := range k.all {
			strip(s)
		}
		for _, s := range k.any {
			strip(s)
		}
	}
	for _, r := range p.rules {
		strip(r.cond)
		if r.rearmWhen != nil {
			r.rearmWhen.native = nil
		}
	}
	return p
}

// bothPaths runs fn with the pack evaluated natively and through CEL.
func bothPaths(t *testing.T, src string, fn func(t *testing.T, p *Pack)) {
	t.Helper()
	t.Run("native", func(t *testing.T) { fn(t, mustLoad(t, src)) })
	t.Run("cel", func(t *testing.T) { fn(t, stripNative(mustLoad(t, src))) })
}

// run evaluates readings in order, each against the ones before it, and
// returns the rule ids that fired on each (suppressed ones prefixed "~").
func run(p *Pack, programs []string, params map[string]map[string]float64, readings ...Observation) [][]string {
	out := make([][]string, len(readings))
	for i, o := range readings {
		res := p.Evaluate(Input{Reading: o, History: readings[:i], Programs: programs, Params: params, Now: o.ObservedAt})
		out[i] = ids(res.Findings)
		for _, s := range res.Suppressed {
			out[i] = append(out[i], "~"+s.RuleID)
		}
		for _, e := range res.Errors {
			out[i] = append(out[i], "!"+e.RuleID)
		}
	}
	return out
}

func TestDefaultPackThresholds(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	hf := []string{"heart_failure"}
	norm := func(kind rpm.Kind, v float64, unit string) Observation {
		m, err := rpm.Normalize(rpm.Reading{Kind: kind, Value: &v, Unit: unit, ObservedAt: t0}, t0)
		if err != nil {
			t.Fatal(err)
		}
		return Observation{ID: "n", Kind: m.Kind, Value: m.Value, Unit: m.Unit, ObservedAt: m.ObservedAt}
	}
	tests := []struct {
		name     string
		reading  Observation
		programs []string
		want     []string
	}{
		{"bp crisis at both thresholds", bp("a", 180, 120, t0), nil, []string{"bp-crisis"}},
		{"bp crisis on systolic only", bp("a", 180, 80, t0), nil, []string{"bp-crisis"}},
		{"bp crisis on diastolic only", bp("a", 150, 120, t0), nil, []string{"bp-crisis"}},
		{"bp just under crisis", bp("a", 179, 119, t0), nil, []string{}},
		{"bp low", bp("a", 89, 60, t0), nil, []string{"bp-low"}},
		{"bp low threshold is strict", bp("a", 90, 60, t0), nil, []string{}},
		{"bp value unset reads systolic", Observation{ID: "a", Kind: rpm.BloodPressure, Systolic: 85, Diastolic: 50, ObservedAt: t0}, nil, []string{"bp-low"}},
		{"hr low", obs("a", rpm.HeartRate, 39, t0), nil, []string{"hr-low"}},
		{"hr low threshold is strict", obs("a", rpm.HeartRate, 40, t0), nil, []string{}},
		{"hr high threshold is strict", obs("a", rpm.HeartRate, 130, t0), nil, []string{}},
		{"hr high", obs("a", rpm.HeartRate, 130.5, t0), nil, []string{"hr-high"}},
		{"spo2 critical", obs("a", rpm.SpO2, 87, t0), nil, []string{"spo2-critical"}},
		{"spo2 at critical threshold, one low reading", obs("a", rpm.SpO2, 88, t0), nil, []string{}},
		{"glucose critical low trips both low rules, critical first", obs("a", rpm.BloodGlucose, 40, t0), nil, []string{"glucose-critical-low", "glucose-low"}},
		{"glucose at level 2 threshold", obs("a", rpm.BloodGlucose, 54, t0), nil, []string{"glucose-low"}},
		{"glucose at level 1 threshold", obs("a", rpm.BloodGlucose, 70, t0), nil, []string{}},
		{"glucose at high threshold", obs("a", rpm.BloodGlucose, 300, t0), nil, []string{}},
		{"glucose high", obs("a", rpm.BloodGlucose, 300.1, t0), nil, []string{"glucose-high"}},
		{"glucose converted from mmol/L", norm(rpm.BloodGlucose, 2.9, "mmol/L"), nil, []string{"glucose-critical-low", "glucose-low"}},
		{"glucose 3.0 mmol/L is 54.05 mg/dL", norm(rpm.BloodGlucose, 3.0, "mmol/L"), nil, []string{"glucose-low"}},
		{"fever at threshold", obs("a", rpm.BodyTemperature, 38.5, t0), nil, []string{"temp-fever"}},
		{"fever converted from °F exactly at threshold", norm(rpm.BodyTemperature, 101.3, "[degF]"), nil, []string{"temp-fever"}},
		{"no fever", obs("a", rpm.BodyTemperature, 38.4, t0), nil, []string{}},
		{"weight without history", obs("a", rpm.BodyWeight, 90, t0), hf, []string{}},
		{"kind without rules", obs("a", rpm.RespiratoryRate, 60, t0), nil, []string{}},
		{"unknown kind", obs("a", "pulse", 60, t0), nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := p.Evaluate(Input{Reading: tt.reading, Programs: tt.programs, Now: t0})
			if got := ids(res.Findings); !slices.Equal(got, tt.want) {
				t.Errorf("findings = %v, want %v", got, tt.want)
			}
			if len(res.Errors) > 0 || len(res.Suppressed) > 0 {
				t.Errorf("errors %v, suppressed %v", res.Errors, res.Suppressed)
			}
			for _, f := range res.Findings {
				if f.ObservationID != tt.reading.ID || !f.At.Equal(t0) || f.Kind != tt.reading.Kind || f.Version != 1 || f.Title == "" || f.Late {
					t.Errorf("finding fields: %+v", f)
				}
			}
		})
	}
}

func TestDelta(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	hf := []string{"heart_failure"}
	w := func(id string, kg float64, d time.Duration) Observation { return obs(id, rpm.BodyWeight, kg, at(d)) }
	tests := []struct {
		name     string
		programs []string
		readings []Observation
		want     []string // findings on the last reading
	}{
		{"rise exactly 1.4 kg in 24h", hf, []Observation{w("a", 80, -24*time.Hour), w("b", 81.4, 0)}, []string{"hf-weight-gain-24h"}},
		{"rise of 1.4 with float noise", hf, []Observation{w("a", 79.9, -20*time.Hour), w("b", 81.3, 0)}, []string{"hf-weight-gain-24h"}},
		{"rise just under", hf, []Observation{w("a", 80, -20*time.Hour), w("b", 81.39, 0)}, []string{}},
		{"earlier reading just outside the window", hf, []Observation{w("a", 80, -24*time.Hour-time.Minute), w("b", 81.5, 0)}, []string{}},
		{"rise from the lowest reading in the window", hf, []Observation{w("a", 80, -20*time.Hour), w("b", 79.5, -10*time.Hour), w("c", 80.5, -5*time.Hour), w("d", 80.9, 0)}, []string{"hf-weight-gain-24h"}},
		{"not for patients outside heart failure", nil, []Observation{w("a", 80, -20*time.Hour), w("b", 82, 0)}, []string{}},
		{"7 day gain", hf, []Observation{w("a", 80, -7*24*time.Hour), w("b", 81, -5*24*time.Hour), w("c", 81.6, -2*24*time.Hour), w("d", 82.3, 0)}, []string{"hf-weight-gain-7d"}},
		{"both windows", hf, []Observation{w("a", 80, -6*24*time.Hour), w("b", 81, -20*time.Hour), w("c", 82.5, 0)}, []string{"hf-weight-gain-24h", "hf-weight-gain-7d"}},
		{"weight from pounds", hf, []Observation{w("a", 176*0.45359237, -20*time.Hour), w("b", 179.1*0.45359237, 0)}, []string{"hf-weight-gain-24h"}},
		{"a fall does not fire a rise rule", hf, []Observation{w("a", 82, -20*time.Hour), w("b", 80, 0)}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := run(p, tt.programs, nil, tt.readings...)
			if last := got[len(got)-1]; !slices.Equal(last, tt.want) {
				t.Errorf("findings = %v, want %v (all: %v)", last, tt.want, got)
			}
		})
	}
}

func TestDeltaFallAndSeries(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: dia-drop
  title: Diastolic drop
  kind: blood_pressure
  delta: {window: 2h, fall: 20, series: diastolic}
  urgency: medium
- id: sys-rise
  title: Systolic rise
  kind: blood_pressure
  delta: {window: 2h, rise: 30}
  urgency: medium
`)
	got := run(p, nil, nil, bp("a", 120, 90, at(-time.Hour)), bp("b", 150, 70, t0))
	if !slices.Equal(got[1], []string{"dia-drop", "sys-rise"}) {
		t.Errorf("got %v", got)
	}
	got = run(p, nil, map[string]map[string]float64{"dia-drop": {"fall": 25}}, bp("a", 120, 90, at(-time.Hour)), bp("b", 149, 70, t0))
	if !slices.Equal(got[1], []string{}) {
		t.Errorf("personalised fall: got %v", got)
	}
}

func TestConsecutive(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	s := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.SpO2, v, at(d)) }
	tests := []struct {
		name     string
		readings []Observation
		want     []string
	}{
		{"three low readings", []Observation{s("a", 91, -2*time.Hour), s("b", 90, -time.Hour), s("c", 91.9, 0)}, []string{"spo2-low-sustained"}},
		{"two low readings", []Observation{s("b", 90, -time.Hour), s("c", 91, 0)}, []string{}},
		{"interrupted", []Observation{s("a", 91, -2*time.Hour), s("x", 92, -90*time.Minute), s("b", 90, -time.Hour), s("c", 91, 0)}, []string{}},
		{"oldest outside within", []Observation{s("a", 91, -25*time.Hour), s("b", 90, -time.Hour), s("c", 91, 0)}, []string{}},
		{"other kinds in between do not count", []Observation{s("a", 91, -3*time.Hour), obs("h", rpm.HeartRate, 80, at(-150*time.Minute)), s("b", 90, -time.Hour), s("c", 91, 0)}, []string{"spo2-low-sustained"}},
		{"with a critical one", []Observation{s("a", 91, -2*time.Hour), s("b", 90, -time.Hour), s("c", 85, 0)}, []string{"spo2-critical", "spo2-low-sustained"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := run(p, nil, nil, tt.readings...)
			if last := got[len(got)-1]; !slices.Equal(last, tt.want) {
				t.Errorf("findings = %v, want %v (all %v)", last, tt.want, got)
			}
		})
	}
}

func TestSustained(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: low-2h
  title: Low for two hours
  kind: spo2
  when: value < params.min
  params: {min: 90}
  sustained: 2h
  urgency: high
`)
	s := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.SpO2, v, at(d)) }
	tests := []struct {
		name     string
		readings []Observation
		want     []string
	}{
		{"run spans exactly 2h", []Observation{s("a", 88, -2*time.Hour), s("b", 87, -time.Hour), s("c", 89, 0)}, []string{"low-2h"}},
		{"run spans less", []Observation{s("a", 88, -119*time.Minute), s("b", 87, -time.Hour), s("c", 89, 0)}, []string{}},
		{"run reaches back past 2h", []Observation{s("a", 88, -3*time.Hour), s("c", 89, 0)}, []string{"low-2h"}},
		{"run older than twice the duration is not looked at", []Observation{s("a", 88, -5*time.Hour), s("c", 89, 0)}, []string{}},
		{"interrupted run", []Observation{s("a", 88, -3*time.Hour), s("b", 95, -time.Hour), s("c", 89, 0)}, []string{}},
		{"single reading", []Observation{s("c", 89, 0)}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := run(p, nil, nil, tt.readings...)
			if last := got[len(got)-1]; !slices.Equal(last, tt.want) {
				t.Errorf("findings = %v, want %v (all %v)", last, tt.want, got)
			}
		})
	}
}

func TestComposites(t *testing.T) {
	t.Parallel()
	src := `
- id: hr-any
  title: Heart rate high or jumping
  kind: heart_rate
  any:
    - when: value > params.max
    - delta: {window: 1h, rise: 30}
  params: {max: 120}
  urgency: high
- id: hr-all
  title: Heart rate high and jumping
  kind: heart_rate
  all:
    - when: value > 100.0
    - any:
        - delta: {window: 1h, rise: 30}
        - when: count("1h") >= 3
  urgency: critical
`
	bothPaths(t, src, func(t *testing.T, p *Pack) {
		h := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.HeartRate, v, at(d)) }
		tests := []struct {
			name     string
			readings []Observation
			want     []string
		}{
			{"high only", []Observation{h("a", 121, 0)}, []string{"hr-any"}},
			{"jump only", []Observation{h("a", 60, -30*time.Minute), h("b", 90, 0)}, []string{"hr-any"}},
			{"high and jumping", []Observation{h("a", 80, -30*time.Minute), h("b", 125, 0)}, []string{"hr-all", "hr-any"}},
			{"above 100 with many readings", []Observation{h("a", 101, -50*time.Minute), h("b", 102, -40*time.Minute), h("c", 101, -30*time.Minute), h("d", 105, 0)}, []string{"hr-all"}},
			{"neither", []Observation{h("a", 80, -30*time.Minute), h("b", 95, 0)}, []string{}},
		}
		for _, tt := range tests {
			got := run(p, nil, nil, tt.readings...)
			if last := got[len(got)-1]; !slices.Equal(last, tt.want) {
				t.Errorf("%s: findings = %v, want %v", tt.name, last, tt.want)
			}
		}
	})
}

func TestAggregates(t *testing.T) {
	t.Parallel()
	hist := []Observation{
		obs("o", rpm.HeartRate, 50, at(-30*time.Hour)), // outside every window below
		obs("a", rpm.HeartRate, 60, at(-20*time.Hour)),
		bp("p", 140, 95, at(-15*time.Hour)),
		obs("b", rpm.HeartRate, 80, at(-10*time.Hour)),
		obs("c", rpm.HeartRate, 70, at(-time.Hour)),
		bp("q", 150, 85, at(-time.Hour)),
	}
	cur := obs("x", rpm.HeartRate, 100, t0)
	tests := []struct {
		when string
		want bool
		err  error
	}{
		{`avg("24h") == 70.0`, true, nil},
		{`min("24h") == 60.0 && max("24h") == 80.0`, true, nil},
		{`count("24h") == 3`, true, nil},
		{`count("48h") == 4`, true, nil},
		{`last("24h") == 70.0`, true, nil},
		{`rise("24h") == 40.0 && fall("24h") == -20.0`, true, nil},
		{`count("30m") == 0`, true, nil},
		{`avg("30m") > 0.0`, false, ErrNoHistory},
		{`count("30m") > 0 && avg("30m") > 0.0`, false, nil},
		{`avg("30m") > 0.0 || value > 90.0`, true, nil},
		{`avg("24h", "diastolic") == 90.0 && max("24h", "systolic") == 150.0`, true, nil},
		{`avg("24h", "blood_pressure") == 145.0`, true, nil},
		{`last("24h", "heart_rate") == 70.0`, true, nil},
		{`rise("24h", "systolic") == 10.0`, true, nil},
		{`min("1d") == min("24h") && count("1d12h") == 4`, true, nil},
		{`value > avg("24h") + 20.0`, true, nil},
		{`value / 0.0 > 1.0`, true, nil},
		{`-value < 0.0 && -(value) * 2.0 == -200.0`, true, nil},
		{`baseline > 0.0`, false, ErrNoBaseline},
		{`!(value < 90) && value != 99.0 && value == 100.0`, true, nil},
	}
	for _, tt := range tests {
		src := "- id: agg\n  title: T\n  kind: heart_rate\n  urgency: low\n  when: '" + tt.when + "'\n"
		t.Run(tt.when, func(t *testing.T) {
			t.Parallel()
			for _, p := range []*Pack{mustLoad(t, src), stripNative(mustLoad(t, src))} {
				res := p.Evaluate(Input{Reading: cur, History: hist, Now: t0})
				// Earlier readings may match too: hysteresis then holds the
				// finding back, but the condition held.
				fired := len(res.Findings)+len(res.Suppressed) == 1
				if fired != tt.want {
					t.Errorf("fired = %v, want %v (errors %v)", fired, tt.want, res.Errors)
				}
				switch {
				case tt.err == nil && len(res.Errors) > 0:
					t.Errorf("unexpected errors %v", res.Errors)
				case tt.err != nil && (len(res.Errors) != 1 || !errors.Is(res.Errors[0].Err, tt.err)):
					t.Errorf("errors = %v, want %v", res.Errors, tt.err)
				}
			}
		})
	}
}

func TestNativeCoverage(t *testing.T) {
	t.Parallel()
	// The default pack and plain thresholds run natively; strings, macros
	// and ternaries run on CEL.
	for _, p := range []*Pack{mustDefault(t), mustShipped(t)} {
		for _, r := range p.rules {
			if r.cond != nil && r.cond.when != nil && r.cond.when.native == nil {
				t.Errorf("%s does not run natively", r.id)
			}
		}
	}
	for _, src := range []string{`unit == "%"`, `(value < 90.0 ? 1.0 : 2.0) > 1.5`, `[1.0, 2.0].exists(x, x > value)`, `count("1h") + 1 > 2`, `has(params.min)`} {
		p := mustLoad(t, "- id: c\n  title: T\n  kind: spo2\n  urgency: low\n  when: '"+src+"'\n")
		if p.rules[0].cond.when.native != nil {
			t.Errorf("%s runs natively", src)
		}
	}
}

func TestBaseline(t *testing.T) {
	t.Parallel()
	src := `
- id: above-dry-weight
  title: Above dry weight
  kind: body_weight
  when: value >= baseline + params.gain
  params: {gain: 2}
  urgency: high
`
	bothPaths(t, src, func(t *testing.T, p *Pack) {
		in := Input{Reading: obs("a", rpm.BodyWeight, 82, t0), Baseline: map[rpm.Kind]float64{rpm.BodyWeight: 80}}
		if got := ids(p.Evaluate(in).Findings); !slices.Equal(got, []string{"above-dry-weight"}) {
			t.Errorf("with baseline: %v", got)
		}
		in.Baseline = map[rpm.Kind]float64{rpm.HeartRate: 60}
		res := p.Evaluate(in)
		if len(res.Findings) != 0 || len(res.Errors) != 1 {
			t.Fatalf("without baseline: %+v", res)
		}
		if p.rules[0].cond.when.native != nil && !errors.Is(res.Errors[0].Err, ErrNoBaseline) {
			t.Errorf("error %v", res.Errors[0].Err)
		}
	})
}

func TestParamsMerge(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: sbp-high
  title: High systolic
  kind: blood_pressure
  when: systolic >= params.max
  params: {max: 160}
  program_params:
    hypertension: {max: 150}
    heart_failure: {max: 140}
    copd: {max: 170}
  urgency: medium
`)
	r := bp("a", 145, 80, t0)
	tests := []struct {
		name     string
		programs []string
		own      map[string]float64
		want     float64
	}{
		{"default", nil, nil, 160},
		{"program", []string{"hypertension"}, nil, 150},
		{"two programs: the one that fires more readily", []string{"copd", "heart_failure"}, nil, 140},
		{"two programs, other order", []string{"heart_failure", "copd"}, nil, 140},
		{"patient wins", []string{"heart_failure"}, map[string]float64{"max": 175}, 175},
		{"unknown patient param ignored", nil, map[string]float64{"min": 1}, 160},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := p.Evaluate(Input{Reading: r, Programs: tt.programs, Params: map[string]map[string]float64{"sbp-high": tt.own}})
			if fired := len(res.Findings) == 1; fired != (145 >= tt.want) {
				t.Errorf("fired = %v with max %v", fired, tt.want)
			}
			own := tt.own
			if _, bad := own["min"]; bad {
				own = nil
			}
			got, err := p.EffectiveParams("sbp-high", tt.programs, own)
			if err != nil || got["max"] != tt.want {
				t.Errorf("effective = %v %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestProgramsAndEnabled(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: copd-only
  title: COPD
  kind: spo2
  programs: [copd]
  when: value < 90.0
  urgency: high
- id: off
  title: Off
  kind: spo2
  enabled: false
  when: value < 99.0
  urgency: high
`)
	r := obs("a", rpm.SpO2, 85, t0)
	if got := ids(p.Evaluate(Input{Reading: r, Programs: []string{"diabetes"}}).Findings); len(got) != 0 {
		t.Errorf("diabetes patient: %v", got)
	}
	if got := ids(p.Evaluate(Input{Reading: r, Programs: []string{"diabetes", "copd"}}).Findings); !slices.Equal(got, []string{"copd-only"}) {
		t.Errorf("copd patient: %v", got)
	}
	if _, ok := p.Rule("off"); !ok {
		t.Error("a disabled rule is still part of the pack")
	}
}

func TestLateReadings(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	s := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.SpO2, v, at(d)) }
	// Two low readings before, one normal after: the late low reading is the
	// third consecutive one in time order, and is marked late.
	hist := []Observation{s("a", 91, -2*time.Hour), s("b", 90, -time.Hour), s("later", 97, time.Hour)}
	res := p.Evaluate(Input{Reading: s("late", 91, 0), History: hist, Now: at(2 * time.Hour)})
	if got := ids(res.Findings); !slices.Equal(got, []string{"spo2-low-sustained"}) || !res.Findings[0].Late {
		t.Errorf("late: %+v", res)
	}
	// A later reading of another kind does not make it late.
	hist = []Observation{obs("h", rpm.HeartRate, 70, at(time.Hour))}
	res = p.Evaluate(Input{Reading: s("x", 85, 0), History: hist, Now: at(2 * time.Hour)})
	if len(res.Findings) != 1 || res.Findings[0].Late {
		t.Errorf("other kind: %+v", res)
	}
	// Later readings do not enter aggregates.
	q := mustLoad(t, "- id: c\n  title: T\n  kind: spo2\n  urgency: low\n  when: count(\"24h\") == 1 && last(\"24h\") == 95.0\n")
	hist = []Observation{s("a", 95, -time.Hour), s("b", 80, time.Hour), s("c", 80, 2*time.Hour)}
	if res := q.Evaluate(Input{Reading: s("x", 90, 0), History: hist}); len(res.Findings) != 1 || !res.Findings[0].Late {
		t.Errorf("aggregates saw later readings: %+v", res)
	}
}

func TestHistoryHandling(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	s := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.SpO2, v, at(d)) }
	cur := s("c", 91, 0)
	// The reading itself in History (same id) is not counted twice.
	res := p.Evaluate(Input{Reading: cur, History: []Observation{s("b", 90, -time.Hour), cur}})
	if len(res.Findings) != 0 {
		t.Errorf("the reading counted itself: %v", ids(res.Findings))
	}
	res = p.Evaluate(Input{Reading: cur, History: []Observation{cur, s("z", 91, 0)}})
	if len(res.Findings) != 0 {
		t.Errorf("the reading counted itself among equals: %v", ids(res.Findings))
	}
	// History out of order gives the same result as sorted.
	sorted := []Observation{s("a", 91, -3*time.Hour), obs("h", rpm.HeartRate, 70, at(-150*time.Minute)), s("b", 90, -2*time.Hour), s("d", 95, time.Hour)}
	shuffled := []Observation{sorted[3], sorted[1], sorted[0], sorted[2]}
	a := p.Evaluate(Input{Reading: cur, History: sorted})
	b := p.Evaluate(Input{Reading: cur, History: shuffled})
	if !reflect.DeepEqual(a, b) || len(a.Findings) != 1 || !a.Findings[0].Late {
		t.Errorf("sorted %+v\nshuffled %+v", a, b)
	}
	if shuffled[0].ID != "d" {
		t.Error("Evaluate reordered the caller's history")
	}
}

func TestHysteresis(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	g := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.BloodGlucose, v, at(d)) }
	tests := []struct {
		name     string
		readings []Observation
		want     [][]string
	}{
		{"hovering at the threshold fires once",
			[]Observation{g("a", 68, 0), g("b", 71, time.Hour), g("c", 69, 2*time.Hour), g("d", 72, 3*time.Hour), g("e", 69.5, 4*time.Hour)},
			[][]string{{"glucose-low"}, {}, {"~glucose-low"}, {}, {"~glucose-low"}}},
		{"back past the band re-arms",
			[]Observation{g("a", 68, 0), g("b", 80, time.Hour), g("c", 69, 2*time.Hour)},
			[][]string{{"glucose-low"}, {}, {"glucose-low"}}},
		{"just under the band does not",
			[]Observation{g("a", 68, 0), g("b", 79.9, time.Hour), g("c", 69, 2*time.Hour)},
			[][]string{{"glucose-low"}, {}, {"~glucose-low"}}},
		{"a long quiet period re-arms",
			[]Observation{g("a", 68, 0), g("c", 69, 12*time.Hour+time.Minute)},
			[][]string{{"glucose-low"}, {"glucose-low"}}},
		{"rules re-arm independently",
			[]Observation{g("a", 50, 0), g("b", 60, time.Hour), g("c", 72, 2*time.Hour), g("d", 50, 3*time.Hour)},
			[][]string{{"glucose-critical-low", "glucose-low"}, {"~glucose-low"}, {}, {"glucose-critical-low", "~glucose-low"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := run(p, nil, nil, tt.readings...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}

	t.Run("blood pressure band", func(t *testing.T) {
		t.Parallel()
		got := run(p, nil, nil, bp("a", 181, 100, t0), bp("b", 175, 100, at(time.Hour)), bp("c", 182, 100, at(2*time.Hour)),
			bp("d", 169, 100, at(3*time.Hour)), bp("e", 181, 100, at(4*time.Hour)))
		want := [][]string{{"bp-crisis"}, {}, {"~bp-crisis"}, {}, {"bp-crisis"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v", got)
		}
		// Diastolic still high: not re-armed.
		got = run(p, nil, nil, bp("a", 181, 121, t0), bp("b", 150, 115, at(time.Hour)), bp("c", 150, 121, at(2*time.Hour)))
		if want := [][]string{{"bp-crisis"}, {}, {"~bp-crisis"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("diastolic band: got %v", got)
		}
	})
	t.Run("consecutive", func(t *testing.T) {
		t.Parallel()
		s := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.SpO2, v, at(d)) }
		got := run(p, nil, nil, s("a", 91, 0), s("b", 91, time.Hour), s("c", 91, 2*time.Hour), s("d", 93, 3*time.Hour),
			s("e", 91, 4*time.Hour), s("f", 91, 5*time.Hour), s("g", 91, 6*time.Hour), s("h", 95, 7*time.Hour),
			s("i", 91, 8*time.Hour), s("j", 91, 9*time.Hour), s("k", 91, 10*time.Hour))
		want := [][]string{{}, {}, {"spo2-low-sustained"}, {}, {}, {}, {"~spo2-low-sustained"}, {}, {}, {}, {"spo2-low-sustained"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v", got)
		}
	})
	t.Run("delta", func(t *testing.T) {
		t.Parallel()
		w := func(id string, kg float64, d time.Duration) Observation { return obs(id, rpm.BodyWeight, kg, at(d)) }
		hf := []string{"heart_failure"}
		got := run(p, hf, nil, w("a", 80, 0), w("b", 81.5, 12*time.Hour), w("c", 81.6, 20*time.Hour), w("d", 81.6, 40*time.Hour), w("e", 83, 50*time.Hour))
		want := [][]string{{}, {"hf-weight-gain-24h"}, {"~hf-weight-gain-24h"}, {}, {"hf-weight-gain-24h", "hf-weight-gain-7d"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v", got)
		}
	})
	t.Run("explicit rearm.when and no band", func(t *testing.T) {
		t.Parallel()
		q := mustLoad(t, `
- id: when-band
  title: T
  kind: heart_rate
  when: value > 100.0
  rearm: {when: value < 80.0}
  urgency: low
- id: no-band
  title: T
  kind: heart_rate
  when: value > 100.0
  urgency: low
`)
		h := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.HeartRate, v, at(d)) }
		got := run(q, nil, nil, h("a", 110, 0), h("b", 90, time.Hour), h("c", 110, 2*time.Hour), h("d", 79, 3*time.Hour), h("e", 110, 4*time.Hour))
		want := [][]string{{"when-band", "no-band"}, {}, {"no-band", "~when-band"}, {}, {"when-band", "no-band"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v", got)
		}
	})
}

func TestErrorsAreNeverSilent(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: vs-avg
  title: T
  kind: heart_rate
  when: value > avg("7d") + 20.0
  urgency: low
- id: expensive
  title: T
  kind: heart_rate
  when: '[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a + b + c > 0)))'
  urgency: low
- id: fine
  title: T
  kind: heart_rate
  when: value > 0.0
  urgency: low
`)
	res := p.Evaluate(Input{Reading: obs("a", rpm.HeartRate, 150, t0)})
	if !slices.Equal(ids(res.Findings), []string{"fine"}) || !slices.Equal(errIDs(res.Errors), []string{"vs-avg", "expensive"}) {
		t.Fatalf("result %+v", res)
	}
	if !errors.Is(res.Errors[0].Err, ErrNoHistory) || !strings.Contains(res.Errors[1].Err.Error(), "cost limit") {
		t.Errorf("errors: %v / %v", res.Errors[0], res.Errors[1])
	}
	if res.Errors[0].Version != 1 || !strings.Contains(res.Errors[0].Error(), "vs-avg") {
		t.Errorf("error: %v", res.Errors[0])
	}
}

// TestNativeMatchesCEL compares the native evaluator with CEL on random
// inputs, errors included.
func TestNativeMatchesCEL(t *testing.T) {
	t.Parallel()
	exprs := []string{
		`value < params.min`,
		`systolic >= params.a || diastolic >= params.b`,
		`value - avg("1h") > params.a && count("1h") >= 2`,
		`avg("1h") > 50.0 || value > 90`,
		`avg("1h") > 50.0 && value > 90`,
		`!(value > params.a) && min("2h") * 2.0 < max("2h") + 1.0`,
		`value / (params.a - params.a) > 0.0`,
		`(value - value) / 0.0 < 1.0`,
		`(value - value) / 0.0 == (value - value) / 0.0`,
		`(value - value) / 0.0 != 1.0`,
		`rise("2h") >= params.a || fall("2h") >= params.b`,
		`baseline - value > -params.a`,
		`last("30m") == value || count("30m") == 0`,
		`-5 < -value + 200.0`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, src := range exprs {
		doc := "- id: e\n  title: T\n  kind: blood_pressure\n  urgency: low\n  params: {min: 90, a: 120, b: 80}\n  when: '" + src + "'\n"
		native := mustLoad(t, doc)
		if native.rules[0].cond.when.native == nil {
			t.Errorf("%s: not native", src)
			continue
		}
		viaCEL := stripNative(mustLoad(t, doc))
		for range 300 {
			n := rng.IntN(4)
			var hist []Observation
			for i := range n {
				hist = append(hist, bp("h", float64(80+rng.IntN(100)), float64(50+rng.IntN(60)), at(-time.Duration(rng.IntN(150)+i)*time.Minute)))
			}
			slices.SortFunc(hist, byTime)
			in := Input{
				Reading: bp("x", float64(80+rng.IntN(100)), float64(50+rng.IntN(60)), t0),
				History: hist,
				Params:  map[string]map[string]float64{"e": {"a": float64(rng.IntN(200)), "b": float64(rng.IntN(100))}},
			}
			if rng.IntN(2) == 0 {
				in.Baseline = map[rpm.Kind]float64{rpm.BloodPressure: float64(rng.IntN(200))}
			}
			a, b := native.Evaluate(in), viaCEL.Evaluate(in)
			if len(a.Findings) != len(b.Findings) || len(a.Errors) != len(b.Errors) {
				t.Errorf("%s on %+v:\nnative %+v\ncel    %+v", src, in, a, b)
				break
			}
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	p := mustDefault(t)
	in := Input{Reading: bp("a", 130, 80, t0), Programs: []string{"hypertension"}}
	if n := testing.AllocsPerRun(100, func() { p.Evaluate(in) }); n != 0 {
		t.Errorf("Evaluate allocates %v times per threshold reading", n)
	}
}

// TestConcurrentEvaluate shares one pack between goroutines (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, string(DefaultSource())+`
- id: cel-path
  title: T
  kind: heart_rate
  when: 'unit == "/min" && value > avg("24h") + 10.0'
  urgency: low
`)
	hist := []Observation{obs("a", rpm.HeartRate, 60, at(-2*time.Hour)), obs("b", rpm.HeartRate, 62, at(-time.Hour))}
	done := make(chan []string)
	for g := range 8 {
		go func() {
			var got []string
			for i := range 200 {
				v := float64(60 + (g*7+i)%100)
				res := p.Evaluate(Input{Reading: Observation{ID: "x", Kind: rpm.HeartRate, Value: v, Unit: "/min", ObservedAt: t0}, History: hist})
				got = append(got, strings.Join(ids(res.Findings), ","))
			}
			done <- got
		}()
	}
	for range 8 {
		if got := <-done; len(got) != 200 {
			t.Fatal("lost results")
		}
	}
	res := p.Evaluate(Input{Reading: Observation{ID: "x", Kind: rpm.HeartRate, Value: 140, Unit: "/min", ObservedAt: t0}, History: hist})
	if !slices.Equal(ids(res.Findings), []string{"hr-high", "cel-path"}) {
		t.Errorf("findings %v", ids(res.Findings))
	}
}
