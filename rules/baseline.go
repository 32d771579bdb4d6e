package rules

import (
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// BaselineSpec says how a patient's baseline of a kind is computed from the
// patient's own readings.
type BaselineSpec struct {
	// Window is how far back readings count.
	Window time.Duration
	// MinReadings is the fewest readings of the kind in the window for a
	// baseline to exist.
	MinReadings int
}

// The default baseline: the median of the last 14 days, from at least 5
// readings. A median resists the odd artefact and the few days of an
// episode; two weeks follow a slow drift (a new dry weight, a change of
// medication) without forgetting the patient's usual values.
const (
	DefaultBaselineWindow      = 14 * 24 * time.Hour
	DefaultBaselineMinReadings = 5
)

// DefaultBaseline returns the default baseline computation.
func DefaultBaseline() BaselineSpec {
	return BaselineSpec{Window: DefaultBaselineWindow, MinReadings: DefaultBaselineMinReadings}
}

// ComputeBaseline returns the patient's baseline of kind at time at: the
// median value (systolic for blood pressure) of the readings of kind in
// hist observed in [at-Window, at) — the reading being judged, observed at
// at, is not part of its own baseline. False when fewer than MinReadings
// readings qualify: the baseline is absent, and a rule that reads baseline
// records an evaluation error (guard it with has_baseline).
func ComputeBaseline(hist []Observation, kind rpm.Kind, at time.Time, spec BaselineSpec) (float64, bool) {
	from := at.Add(-spec.Window)
	vals := make([]float64, 0, 32)
	for i := range hist {
		h := &hist[i]
		if h.Kind != kind || h.ObservedAt.Before(from) || !h.ObservedAt.Before(at) {
			continue
		}
		vals = append(vals, fieldValue.value(h))
	}
	if len(vals) == 0 || len(vals) < spec.MinReadings {
		return 0, false
	}
	slices.Sort(vals)
	n := len(vals)
	if n%2 == 1 {
		return vals[n/2], true
	}
	return resolution((vals[n/2-1] + vals[n/2]) / 2), true
}

// UsesBaseline reports whether an enabled rule for kind that applies to a
// patient in programs reads baseline (or has_baseline): only then does the
// patient's reading of kind need a baseline to be evaluated. A COPD rule
// that reads the baseline costs a hypertension patient's SpO2 nothing.
func (p *Pack) UsesBaseline(kind rpm.Kind, programs []string) bool {
	for _, r := range p.readings[kind] {
		if r.usesBaseline && r.appliesTo(programs) {
			return true
		}
	}
	return false
}

// BaselineKinds returns the kinds whose enabled reading rules read
// baseline (or has_baseline): the kinds the engine must compute baselines
// for, with ComputeBaseline over history reaching back DefaultBaselineWindow
// (Lookback includes it).
func (p *Pack) BaselineKinds() []rpm.Kind {
	var out []rpm.Kind
	for k, rs := range p.readings {
		for _, r := range rs {
			if r.usesBaseline {
				out = append(out, k)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// Baselines computes, with the default spec, the baseline of every kind in
// BaselineKinds at time at from hist; kinds without enough readings are
// absent. Nil when no rule reads baseline.
func (p *Pack) Baselines(hist []Observation, at time.Time) map[rpm.Kind]float64 {
	kinds := p.BaselineKinds()
	if len(kinds) == 0 {
		return nil
	}
	out := make(map[rpm.Kind]float64, len(kinds))
	for _, k := range kinds {
		if v, ok := ComputeBaseline(hist, k, at, DefaultBaseline()); ok {
			out[k] = v
		}
	}
	return out
}

// usesBaseline reports whether the condition reads baseline.
func (k *cond) usesBaseline() bool {
	if k == nil {
		return false
	}
	if k.when != nil && k.when.baseline {
		return true
	}
	for _, s := range k.all {
		if s.usesBaseline() {
			return true
		}
	}
	for _, s := range k.any {
		if s.usesBaseline() {
			return true
		}
	}
	return false
}
