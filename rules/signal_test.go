package rules

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// TestReplayCountsEveryFinding: one finding per reading the rule fires on,
// suppressed ones included, reported apart from suppressed and alerts.
func TestReplayCountsEveryFinding(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: hr-over-100
  title: Heart rate over 100
  kind: heart_rate
  when: value > params.max
  params: {max: 100}
  urgency: high
`)
	tests := []struct {
		name                                string
		values                              []float64
		findings, suppressed, alerts, notOK int
	}{
		{"issue example", []float64{95, 105, 98, 110, 120}, 3, 1, 2, 0},
		{"never", []float64{60, 70, 80}, 0, 0, 0, 0},
		{"one long episode", []float64{101, 102, 103, 104}, 4, 3, 1, 0},
		{"re-armed each time", []float64{101, 99, 101, 99, 101}, 3, 0, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []Observation
			for i, v := range tt.values {
				rs = append(rs, obs(string(rune('a'+i)), rpm.HeartRate, v, at(time.Duration(i)*time.Hour)))
			}
			res := p.Replay(ReplayInput{Readings: rs})
			s := res.ByRule()["hr-over-100"]
			if s.Findings != tt.findings || s.Suppressed != tt.suppressed || s.Alerts != tt.alerts || s.NotConfirmed != tt.notOK {
				t.Errorf("got %+v, want findings %d suppressed %d alerts %d not confirmed %d", s, tt.findings, tt.suppressed, tt.alerts, tt.notOK)
			}
			if res.Suppressed != tt.suppressed || len(res.Alerts) != tt.alerts {
				t.Errorf("result: suppressed %d alerts %d", res.Suppressed, len(res.Alerts))
			}
		})
	}
}

func TestRetakeDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		on        bool
		within    time.Duration
	}{
		{"bp single reading", "kind: blood_pressure\nwhen: systolic > 180", true, 10 * time.Minute},
		{"hr single reading", "kind: heart_rate\nwhen: value > 130", true, 10 * time.Minute},
		{"spo2 single reading", "kind: spo2\nwhen: value < 88", true, 10 * time.Minute},
		{"temperature", "kind: body_temperature\nwhen: value >= 38", true, 10 * time.Minute},
		{"glucose is not a retake kind", "kind: blood_glucose\nwhen: value < 70", false, 10 * time.Minute},
		{"consecutive", "kind: spo2\nwhen: value < 92\nconsecutive: 2", false, 10 * time.Minute},
		{"window", "kind: heart_rate\nwhen: count(\"1d\") > 0 && value > avg(\"1d\") + 30.0", false, 10 * time.Minute},
		{"explicitly off", "kind: heart_rate\nwhen: value > 130\nretake: {enabled: false}", false, 10 * time.Minute},
		{"explicitly on with within", "kind: blood_glucose\nwhen: value < 70\nretake: {enabled: true, within: 15m}", true, 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustLoad(t, "id: r\ntitle: R\nurgency: high\n"+tt.src)
			s, ok := p.RetakeOf("r")
			if !ok || s.Enabled != tt.on || s.Within != tt.within {
				t.Errorf("got %+v, want on=%v within=%v", s, tt.on, tt.within)
			}
		})
	}
	for _, bad := range []string{"retake: {within: 3h}", "retake: {within: -1m}", "retake: {now: 'value'}", "retake: {now: 'value > avg(\"1d\")'}"} {
		src := "id: r\ntitle: R\nurgency: high\nkind: heart_rate\nwhen: value > 130\n" + bad
		if _, err := Load([]byte(src)); err == nil || !strings.Contains(err.Error(), "retake") {
			t.Errorf("%s: got %v, want a retake problem", bad, err)
		}
	}
	if _, err := Load([]byte("id: r\ntitle: R\nurgency: high\nsymptom: chest_pain\nretake: {enabled: true}")); err == nil {
		t.Error("retake on a symptom rule was accepted")
	}
}

func TestDecideRetake(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: crisis
  title: Crisis
  kind: blood_pressure
  when: systolic >= params.systolic_max
  params: {systolic_max: 180, systolic_now: 200}
  retake: {now: "systolic >= params.systolic_now"}
  rearm: {value: 10}
  urgency: critical
`)
	first := bp("b1", 185, 100, at(0))
	tests := []struct {
		name    string
		trigger Observation
		later   []Observation
		now     time.Duration
		want    RetakeOutcome
		retake  string
	}{
		{"hard limit pages at once", bp("b1", 205, 100, at(0)), nil, 0, RetakeNone, ""},
		{"awaiting", first, nil, 5 * time.Minute, RetakeAwait, ""},
		{"confirmed", first, []Observation{bp("b2", 183, 99, at(4*time.Minute))}, 4 * time.Minute, RetakeConfirmed, "b2"},
		{"not confirmed", first, []Observation{bp("b2", 150, 90, at(4*time.Minute))}, 4 * time.Minute, RetakeNotConfirmed, "b2"},
		{"dead band does not confirm", first, []Observation{bp("b2", 175, 90, at(4*time.Minute))}, 4 * time.Minute, RetakeNotConfirmed, "b2"},
		{"timed out", first, nil, 10 * time.Minute, RetakeTimedOut, ""},
		{"too late to be a retake", first, []Observation{bp("b2", 150, 90, at(11*time.Minute))}, 11 * time.Minute, RetakeTimedOut, ""},
		{"first retake decides", first, []Observation{bp("b3", 150, 90, at(8*time.Minute)), bp("b2", 190, 99, at(3*time.Minute))}, 8 * time.Minute, RetakeConfirmed, "b2"},
		{"other kinds are no retake", first, []Observation{obs("h", rpm.HeartRate, 80, at(time.Minute))}, 3 * time.Minute, RetakeAwait, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := p.Evaluate(Input{Reading: tt.trigger, Now: tt.trigger.ObservedAt})
			if len(res.Findings) != 1 {
				t.Fatalf("findings %+v", res)
			}
			f := res.Findings[0]
			if (tt.want == RetakeNone) != f.RetakeBy.IsZero() {
				t.Fatalf("RetakeBy %v", f.RetakeBy)
			}
			d := p.DecideRetake(RetakeInput{Finding: f, Readings: append([]Observation{tt.trigger}, tt.later...), Now: at(tt.now)})
			if d.Outcome != tt.want || d.Retake.ID != tt.retake || d.Err != nil {
				t.Errorf("got %v (retake %q, err %v), want %v (%q)", d.Outcome, d.Retake.ID, d.Err, tt.want, tt.retake)
			}
			if d.Outcome == RetakeTimedOut && !d.At.Equal(at(10*time.Minute)) {
				t.Errorf("timed out at %v", d.At)
			}
			if d.Outcome.Pages() != (tt.want != RetakeAwait && tt.want != RetakeNotConfirmed) {
				t.Errorf("Pages() = %v", d.Outcome.Pages())
			}
		})
	}
	t.Run("unknown rule pages", func(t *testing.T) {
		d := p.DecideRetake(RetakeInput{Finding: Finding{RuleID: "gone", Kind: rpm.BloodPressure, RetakeBy: at(time.Minute)}})
		if d.Outcome != RetakeConfirmed || d.Err == nil {
			t.Errorf("got %+v", d)
		}
	})
}

// TestRetakeReplay: a refuted reading pages no one and does not disarm the
// rule; a confirmed one pages at the retake and the retake is suppressed.
func TestRetakeReplay(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: crisis
  title: Crisis
  kind: blood_pressure
  when: systolic >= params.systolic_max
  params: {systolic_max: 180}
  rearm: {value: 10}
  urgency: critical
`)
	res := p.Replay(ReplayInput{Readings: []Observation{
		bp("a", 186, 90, at(0)),                         // artefact…
		bp("b", 175, 90, at(3*time.Minute)),             // …refuted by a retake in the dead band
		bp("c", 184, 90, at(2*time.Hour)),               // fires again: the refuted one did not disarm
		bp("d", 188, 90, at(2*time.Hour+time.Minute*5)), // confirms: pages now
		bp("e", 190, 90, at(5*time.Hour)),               // same episode: suppressed
	}})
	type row struct {
		obs        string
		retake     RetakeOutcome
		suppressed bool
		alert      int
	}
	var got []row
	for _, f := range res.Findings {
		got = append(got, row{f.ObservationID, f.Retake, f.Suppressed, f.Alert})
	}
	want := []row{{"a", RetakeNotConfirmed, false, -1}, {"c", RetakeConfirmed, false, 0}, {"d", RetakeNone, true, 0}, {"e", RetakeNone, true, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].RetakeID != "d" || !res.Alerts[0].OpenedAt.Equal(at(2*time.Hour+5*time.Minute)) || res.NotConfirmed != 1 {
		t.Errorf("alerts %+v, not confirmed %d", res.Alerts, res.NotConfirmed)
	}
}

func TestConsecutiveApart(t *testing.T) {
	t.Parallel()
	p := mustLoad(t, `
- id: low
  title: Low
  kind: spo2
  when: value < 92
  consecutive: 3
  within: 3d
  apart: 4h
  urgency: high
`)
	s := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.SpO2, v, at(d)) }
	tests := []struct {
		name string
		hist []Observation
		cur  Observation
		want bool
	}{
		{"quick retakes do not count", []Observation{s("a", 90, 0), s("b", 90, time.Minute)}, s("c", 90, 2*time.Minute), false},
		{"three days count", []Observation{s("a", 90, 0), s("b", 90, 24*time.Hour)}, s("c", 90, 48*time.Hour), true},
		{"the session's earlier reading is skipped", []Observation{s("a", 90, 0), s("b0", 95, 24*time.Hour-time.Minute), s("b", 90, 24*time.Hour)}, s("c", 90, 48*time.Hour), true},
		{"the session's last reading counts", []Observation{s("a", 90, 0), s("b", 90, 24*time.Hour), s("b2", 95, 24*time.Hour+time.Minute)}, s("c", 90, 48*time.Hour), false},
		{"a normal day breaks the run", []Observation{s("a", 90, 0), s("b", 95, 24*time.Hour)}, s("c", 90, 48*time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := p.Evaluate(Input{Reading: tt.cur, History: tt.hist, Now: tt.cur.ObservedAt})
			if got := len(res.Findings) == 1; got != tt.want {
				t.Errorf("fired %v, want %v (%+v)", got, tt.want, res)
			}
		})
	}
	if _, err := Load([]byte("id: r\ntitle: R\nurgency: high\nkind: spo2\nwhen: value < 92\napart: 1h")); err == nil {
		t.Error("apart without consecutive was accepted")
	}
}

func TestComputeBaseline(t *testing.T) {
	t.Parallel()
	w := func(v float64, d time.Duration) Observation { return obs("", rpm.SpO2, v, at(d)) }
	day := 24 * time.Hour
	spec := DefaultBaseline()
	tests := []struct {
		name string
		hist []Observation
		want float64
		ok   bool
	}{
		{"too few", []Observation{w(90, -day), w(91, -2*day)}, 0, false},
		{"median of odd count", []Observation{w(90, -day), w(91, -2*day), w(80, -3*day), w(92, -4*day), w(89, -5*day)}, 90, true},
		{"median of even count", []Observation{w(90, -day), w(91, -2*day), w(80, -3*day), w(92, -4*day), w(89, -5*day), w(93, -6*day)}, 90.5, true},
		{"older than the window is ignored", []Observation{w(90, -day), w(91, -2*day), w(80, -3*day), w(92, -4*day), w(70, -15*day)}, 0, false},
		{"the reading's own time is not its baseline", []Observation{w(90, 0), w(91, -2*day), w(80, -3*day), w(92, -4*day), w(89, -5*day)}, 0, false},
		{"other kinds are ignored", []Observation{w(90, -day), w(91, -2*day), w(80, -3*day), w(92, -4*day), obs("", rpm.HeartRate, 60, at(-day))}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ComputeBaseline(tt.hist, rpm.SpO2, t0, spec)
			if ok != tt.ok || got != tt.want {
				t.Errorf("got %v %v, want %v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestBaselineInRules: baseline is explicit — absent, reading it is an
// evaluation error, never a silent false; has_baseline guards it. Replay
// computes it per reading when no static baseline is given.
func TestBaselineInRules(t *testing.T) {
	t.Parallel()
	src := `
- id: drop
  title: Drop
  kind: spo2
  when: value <= baseline - params.drop
  params: {drop: 3}
  retake: {enabled: false}
  urgency: high
- id: guarded
  title: Guarded
  kind: spo2
  when: "has_baseline ? value <= baseline - params.drop : value < params.min"
  params: {drop: 3, min: 88}
  retake: {enabled: false}
  urgency: high
- id: guarded-native
  title: Guarded natively
  kind: spo2
  when: (has_baseline && value <= baseline - params.drop) || (!has_baseline && value < params.min)
  params: {drop: 3, min: 88}
  retake: {enabled: false}
  urgency: high
`
	p := mustLoad(t, src)
	if got := p.BaselineKinds(); !slices.Equal(got, []rpm.Kind{rpm.SpO2}) {
		t.Errorf("BaselineKinds %v", got)
	}
	if p.LookbackFor(rpm.SpO2) < DefaultBaselineWindow {
		t.Errorf("lookback %v does not cover the baseline window", p.LookbackFor(rpm.SpO2))
	}
	cur := obs("c", rpm.SpO2, 87, t0)
	res := p.Evaluate(Input{Reading: cur, Now: t0})
	if !slices.Equal(errIDs(res.Errors), []string{"drop"}) || !slices.Equal(ids(res.Findings), []string{"guarded", "guarded-native"}) {
		t.Errorf("no baseline: errors %v findings %v", errIDs(res.Errors), ids(res.Findings))
	}
	res = p.Evaluate(Input{Reading: cur, Now: t0, Baseline: map[rpm.Kind]float64{rpm.SpO2: 89}})
	if len(res.Errors) != 0 || len(res.Findings) != 0 {
		t.Errorf("87 against baseline 89 fired: %+v", res)
	}
	res = p.Evaluate(Input{Reading: cur, Now: t0, Baseline: map[rpm.Kind]float64{rpm.SpO2: 90}})
	if !slices.Equal(ids(res.Findings), []string{"drop", "guarded", "guarded-native"}) {
		t.Errorf("87 against baseline 90: %v", ids(res.Findings))
	}
	// Replay: five days at 90 make the baseline; 87 is then a drop of 3.
	var rs []Observation
	for i := range 5 {
		rs = append(rs, obs(string(rune('a'+i)), rpm.SpO2, 90, at(time.Duration(i)*24*time.Hour)))
	}
	rs = append(rs, obs("z", rpm.SpO2, 87, at(5*24*time.Hour)))
	rr := p.Replay(ReplayInput{Readings: rs})
	st := rr.ByRule()
	if st["drop"].Alerts != 1 || st["drop"].Errors != 5 || st["guarded"].Findings != 1 || st["guarded"].Errors != 0 {
		t.Errorf("replay stats %+v", st)
	}
}

func TestCheckOverrides(t *testing.T) {
	t.Parallel()
	p := mustShipped(t)
	tests := []struct {
		name   string
		rule   string
		params map[string]float64
		want   []string // "field: reason prefix"
	}{
		{"in range", "bp-crisis", map[string]float64{"systolic_max": 170}, nil},
		{"at the bounds", "bp-crisis", map[string]float64{"systolic_max": 120, "diastolic_max": 150}, nil},
		{"negative", "bp-crisis", map[string]float64{"systolic_max": -500}, []string{"bp-crisis.systolic_max: must be between 120 and 260"}},
		{"huge", "bp-crisis", map[string]float64{"systolic_max": 1e300}, []string{"bp-crisis.systolic_max: must be between 120 and 260"}},
		{"NaN", "bp-crisis", map[string]float64{"systolic_max": math.NaN()}, []string{"bp-crisis.systolic_max: must be a finite number"}},
		{"Inf", "spo2-critical", map[string]float64{"min": math.Inf(1)}, []string{"spo2-critical.min: must be a finite number"}},
		{"unknown param", "bp-crisis", map[string]float64{"sys": 170}, []string{"bp-crisis.sys: unknown param"}},
		{"unknown rule", "no-such-rule", map[string]float64{"x": 1}, []string{"no-such-rule: unknown rule"}},
		{"several, sorted", "bp-crisis", map[string]float64{"systolic_max": 300, "diastolic_max": 50}, []string{"bp-crisis.diastolic_max: must be between", "bp-crisis.systolic_max: must be between"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := p.CheckOverrides(tt.rule, tt.params)
			if len(ps) != len(tt.want) {
				t.Fatalf("got %v, want %v", ps, tt.want)
			}
			for i, pr := range ps {
				if got := pr.Field + ": " + pr.Reason; !strings.HasPrefix(got, tt.want[i]) {
					t.Errorf("problem %d: %q, want prefix %q", i, got, tt.want[i])
				}
			}
		})
	}
	if ps := p.CheckParams(map[string]map[string]float64{"bp-crisis": {"systolic_max": 100}, "hr-high": {"max": 125}}); len(ps) != 1 || ps[0].Field != "bp-crisis.systolic_max" {
		t.Errorf("CheckParams %v", ps)
	}
}

// TestDefaultPackBounds: every param of every rule of the default pack
// declares a plausible range.
func TestDefaultPackBounds(t *testing.T) {
	t.Parallel()
	p := mustShipped(t)
	for _, r := range p.Rules() {
		eff, err := p.EffectiveParams(r.ID, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := p.Bounds(r.ID)
		for name := range eff {
			if _, ok := b[name]; !ok {
				t.Errorf("%s.%s declares no bounds", r.ID, name)
			}
		}
	}
}

func TestBoundsValidation(t *testing.T) {
	t.Parallel()
	base := "id: r\ntitle: R\nurgency: high\nkind: heart_rate\nwhen: value > params.max\nparams: {max: 130}\n"
	tests := []struct{ src, want string }{
		{base + "bounds: {max: [100, 200]}", ""},
		{base + "bounds: {max: [140, 200]}", "params.max"},
		{base + "bounds: {max: [200, 100]}", "bounds.max"},
		{base + "bounds: {max: [100]}", "bounds.max"},
		{base + "bounds: {other: [1, 2]}", "bounds.other"},
		{base + "bounds: {max: [100, 200]}\nprogram_params: {copd: {max: 250}}", "program_params.copd.max"},
	}
	for _, tt := range tests {
		_, err := Load([]byte(tt.src))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.src, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: got %v, want a problem at %s", tt.src, err, tt.want)
		}
	}
}

// TestUsesBaseline: only the patients a baseline rule applies to need a
// baseline for that kind.
func TestUsesBaseline(t *testing.T) {
	p := mustLoad(t, `
- id: copd-usual
  title: Below usual
  kind: spo2
  programs: [copd]
  when: has_baseline && value <= baseline - 3.0
  retake: {enabled: false}
  urgency: high
- id: low
  title: Low
  kind: spo2
  when: value < 88
  retake: {enabled: false}
  urgency: high
`)
	for _, c := range []struct {
		kind     rpm.Kind
		programs []string
		want     bool
	}{
		{rpm.SpO2, []string{"copd"}, true},
		{rpm.SpO2, []string{"hypertension", "copd"}, true},
		{rpm.SpO2, []string{"hypertension"}, false},
		{rpm.SpO2, nil, false},
		{rpm.HeartRate, []string{"copd"}, false},
	} {
		if got := p.UsesBaseline(c.kind, c.programs); got != c.want {
			t.Errorf("UsesBaseline(%s, %v) = %v, want %v", c.kind, c.programs, got, c.want)
		}
	}
}
