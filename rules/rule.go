package rules

import (
	"github.com/tendhealth/tend/rpm"
)

// Rule is one alerting rule as written in a rule pack (YAML) or sent to the
// API (JSON). The YAML and JSON field names are the same, so a rule read from
// a pack can be stored as JSONB and read back unchanged.
//
// A rule is exactly one of:
//   - a reading rule: Kind with a condition (When, Delta, All, Any),
//     optionally qualified by Consecutive or Sustained;
//   - a missing-data rule: Kind with Missing;
//   - a symptom rule: Symptom with MinSeverity;
//   - an event rule: Event (missed doses, missed measurements).
//
// Thresholds are params, so that programs and single patients can override
// them: Params holds the defaults, ProgramParams the overrides per program.
// The scalar thresholds of the declarative forms are params too: delta.rise
// and delta.fall are the defaults of params "rise" and "fall", min_severity of
// param "min_severity", event.count of param "count".
type Rule struct {
	// ID is stable: clients, overrides and alerts refer to it. Lower-case
	// letters, digits, '-', '_' and '.', at most 64 characters.
	ID string `yaml:"id" json:"id"`
	// Title is shown to clinicians. Keep it generic: no values, no PHI.
	Title string `yaml:"title" json:"title"`
	// Description is free text for the rule catalogue.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Version is set by whoever stores the rule (the engine increments it
	// on every change); findings carry it. 0 is read as 1.
	Version int `yaml:"version,omitempty" json:"version,omitempty"`
	// Enabled defaults to true. A disabled rule is validated and compiled
	// but never evaluated.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Source names the published practice the rule follows.
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	// Urgency of the findings: critical, high, medium or low.
	Urgency rpm.Urgency `yaml:"urgency" json:"urgency"`
	// Programs restricts the rule to patients enrolled in one of these
	// programs. Empty means every patient.
	Programs []string `yaml:"programs,omitempty" json:"programs,omitempty"`

	// Kind is the vital kind a reading rule or a missing-data rule watches.
	Kind rpm.Kind `yaml:"kind,omitempty" json:"kind,omitempty"`
	// When is a CEL expression over the reading, its history and params; it
	// must have type bool. See the package documentation for what it sees.
	When string `yaml:"when,omitempty" json:"when,omitempty"`
	// Delta fires on a rise or fall over a window.
	Delta *Delta `yaml:"delta,omitempty" json:"delta,omitempty"`
	// All holds sub-conditions that must all hold.
	All []Condition `yaml:"all,omitempty" json:"all,omitempty"`
	// Any holds sub-conditions of which at least one must hold.
	Any []Condition `yaml:"any,omitempty" json:"any,omitempty"`
	// Consecutive N: the condition holds on the last N readings of the kind,
	// this one included, all observed within Within of this one.
	Consecutive int `yaml:"consecutive,omitempty" json:"consecutive,omitempty"`
	// Within bounds how old the readings counted by Consecutive may be.
	// Defaults to 24h.
	Within Duration `yaml:"within,omitempty" json:"within,omitempty"`
	// Apart makes Consecutive count only readings at least this far apart:
	// a reading observed less than Apart before the last one counted (a
	// re-measurement seconds later) is neither counted nor breaks the run.
	Apart Duration `yaml:"apart,omitempty" json:"apart,omitempty"`
	// Sustained: the condition has held on every reading of the kind for at
	// least this long: the run of matching readings that ends with this one
	// starts at or before this reading's time minus Sustained. Readings more
	// than twice Sustained old are not looked at.
	Sustained Duration `yaml:"sustained,omitempty" json:"sustained,omitempty"`
	// Missing fires when no reading of Kind arrived for this long (checked
	// by a periodic job through Pack.EvaluateMissing).
	Missing Duration `yaml:"missing,omitempty" json:"missing,omitempty"`

	// Symptom is the reported symptom a symptom rule watches.
	Symptom rpm.SymptomCode `yaml:"symptom,omitempty" json:"symptom,omitempty"`
	// MinSeverity is the lowest reported severity (0–10) that fires.
	// Defaults to 1. It is the default of param "min_severity".
	MinSeverity int `yaml:"min_severity,omitempty" json:"min_severity,omitempty"`
	// Ask makes a symptom rule ask the patient to measure a vital sign now
	// instead of paging; see Ask.
	Ask *Ask `yaml:"ask,omitempty" json:"ask,omitempty"`

	// Event makes an event rule (missed doses, missed measurements).
	Event *EventSpec `yaml:"event,omitempty" json:"event,omitempty"`

	// Params are the default parameter values the condition refers to as
	// params.<name>.
	Params map[string]float64 `yaml:"params,omitempty" json:"params,omitempty"`
	// ProgramParams overrides params for patients of a program:
	// program → param → value. A patient's own overrides win over these.
	ProgramParams map[string]map[string]float64 `yaml:"program_params,omitempty" json:"program_params,omitempty"`
	// Rearm is the hysteresis of a reading rule: once it fired, it does not
	// fire again for the patient until a reading is back past the band.
	Rearm *Rearm `yaml:"rearm,omitempty" json:"rearm,omitempty"`
	// Retake asks the patient to measure again before the team is paged.
	// It is on by default for the single-reading rules (no consecutive,
	// sustained or window) of blood pressure, heart rate, SpO2 and body
	// temperature; see Retake.
	Retake *Retake `yaml:"retake,omitempty" json:"retake,omitempty"`
	// Bounds declares the plausible range of each param, [min, max]
	// inclusive: defaults, program overrides and a patient's own overrides
	// outside it are refused (see Pack.CheckOverrides).
	Bounds map[string][]float64 `yaml:"bounds,omitempty" json:"bounds,omitempty"`
}

// Retake is the "measure again before paging" setting of a reading rule.
// When the rule fires on a reading, the finding waits up to Within for the
// patient's next reading of the kind: the team is paged when that retake
// confirms the condition, or when none arrives in time (nothing is lost);
// a retake on which the condition does not hold pages no one. A reading for
// which Now holds (a hard limit) pages at once.
type Retake struct {
	// Enabled turns retake on or off; absent means the default (on for the
	// single-reading rules of blood pressure, heart rate, SpO2 and body
	// temperature, off otherwise).
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// Within is how long the finding waits for the retake. Defaults to 10m.
	Within Duration `yaml:"within,omitempty" json:"within,omitempty"`
	// Now is a CEL condition over the reading (the same variables as when):
	// when it holds, the finding pages at once, without waiting.
	Now string `yaml:"now,omitempty" json:"now,omitempty"`
	// Confirm is a CEL condition over the retake (the same variables as
	// when): the retake confirms the finding when it holds. Absent, the
	// rule's own condition must hold again. A wider band ("a retake
	// confirms unless it is clearly normal", e.g. systolic >=
	// params.systolic_max - 8) keeps a retake a point or two on the normal
	// side of the threshold from refuting a real event.
	Confirm string `yaml:"confirm,omitempty" json:"confirm,omitempty"`
}

// Ask is what a symptom rule asks of the patient: to measure Kind now. The
// finding pages no one; it waits, like a retake, for the next reading of
// Kind (answered) or its deadline (unanswered), and the reading that
// answers is judged by the reading rules as any other. A report of
// breathlessness asking for an SpO2 reading catches a desaturation between
// a patient's daily measurements.
type Ask struct {
	// Kind is the vital sign to measure.
	Kind rpm.Kind `yaml:"kind" json:"kind"`
	// Within is how long the request stands. Defaults to 30m.
	Within Duration `yaml:"within,omitempty" json:"within,omitempty"`
}

// Condition is a sub-condition of an all/any composite: on the same reading,
// When and Delta and All and Any (those present) must all hold.
type Condition struct {
	When  string      `yaml:"when,omitempty" json:"when,omitempty"`
	Delta *Delta      `yaml:"delta,omitempty" json:"delta,omitempty"`
	All   []Condition `yaml:"all,omitempty" json:"all,omitempty"`
	Any   []Condition `yaml:"any,omitempty" json:"any,omitempty"`
}

// Delta fires when the reading is at least Rise above the lowest, or at
// least Fall below the highest, of the patient's earlier readings of the
// kind observed within Window before it. Without an earlier reading in the
// window it does not fire (and is not an error).
//
// In a rule's top-level delta, Rise and Fall are the defaults of params
// "rise" and "fall" (so they can be personalised); in a nested condition they
// are fixed.
type Delta struct {
	Window Duration `yaml:"window" json:"window"`
	Rise   float64  `yaml:"rise,omitempty" json:"rise,omitempty"`
	Fall   float64  `yaml:"fall,omitempty" json:"fall,omitempty"`
	// Series is the blood pressure component compared: systolic (default)
	// or diastolic. Other kinds compare their value.
	Series string `yaml:"series,omitempty" json:"series,omitempty"`
}

// Rearm is the hysteresis band of a reading rule. After the rule's condition
// held on a reading, the rule stays disarmed — later matching readings are
// reported as Result.Suppressed, not as findings — until a reading of the
// kind is past the band ("cleared"), or until no matching reading has been
// seen for After.
//
// A reading clears the rule when:
//   - When is set: When is true for it;
//   - else: the condition is false for it even with every threshold param
//     moved by its margin towards firing (Params[name], else Value). For
//     `value < params.min` with margin 2 the reading must be ≥ min+2; for
//     `systolic >= params.systolic_max` with margin 10 it must be below
//     systolic_max-10. The direction is inferred from the expression.
//
// Without a rearm block the margin is 0: any reading on which the condition
// is false re-arms the rule.
type Rearm struct {
	// Value is the margin applied to every threshold param of the rule, in
	// the unit of the param.
	Value float64 `yaml:"value,omitempty" json:"value,omitempty"`
	// Params are per-param margins; they win over Value.
	Params map[string]float64 `yaml:"params,omitempty" json:"params,omitempty"`
	// When is an explicit CEL re-arm condition, for expressions whose
	// thresholds cannot be moved by a margin.
	When string `yaml:"when,omitempty" json:"when,omitempty"`
	// After is how long a matching reading keeps the rule disarmed when no
	// reading clears it. Defaults to the longer of 12h and the span of
	// history the condition looks at (its windows, Within, Sustained).
	After Duration `yaml:"after,omitempty" json:"after,omitempty"`
}

// EventType is the type of a care event that rules can count.
type EventType string

// The event types rules understand.
const (
	// MissedDose is a medication dose not confirmed before its grace period
	// ended.
	MissedDose EventType = "missed_dose"
	// MissedMeasurement is a scheduled measurement that was not taken.
	MissedMeasurement EventType = "missed_measurement"
)

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool { return t == MissedDose || t == MissedMeasurement }

// EventSpec makes an event rule: it fires when Count events of Type fall
// within Window, counted per medication or per kind when Per says so.
// Count is the default of param "count".
type EventSpec struct {
	Type   EventType `yaml:"type" json:"type"`
	Count  int       `yaml:"count" json:"count"`
	Window Duration  `yaml:"window" json:"window"`
	// Per groups the events: "medication" (Event.Medication), "kind"
	// (Event.Kind) or empty (all events of the type together).
	Per string `yaml:"per,omitempty" json:"per,omitempty"`
}

// The values of EventSpec.Per.
const (
	PerMedication = "medication"
	PerKind       = "kind"
)

// RuleType is what a rule watches.
type RuleType string

// The rule types.
const (
	ReadingRule RuleType = "reading"
	MissingRule RuleType = "missing"
	SymptomRule RuleType = "symptom"
	EventRule   RuleType = "event"
)

// Type reports what the rule watches; "" when it is not a valid rule.
func (r *Rule) Type() RuleType {
	switch {
	case r.Event != nil:
		return EventRule
	case r.Symptom != "":
		return SymptomRule
	case r.Kind != "" && r.Missing > 0:
		return MissingRule
	case r.Kind != "":
		return ReadingRule
	}
	return ""
}

// IsEnabled reports whether the rule is enabled (the default).
func (r *Rule) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// condition returns the rule's top-level condition.
func (r *Rule) condition() Condition {
	return Condition{When: r.When, Delta: r.Delta, All: r.All, Any: r.Any}
}

func (c *Condition) empty() bool {
	return c.When == "" && c.Delta == nil && c.All == nil && c.Any == nil
}

// clone returns a deep copy of r, so a Pack never shares maps or slices with
// its caller.
func (r Rule) clone() Rule {
	out := r
	if r.Enabled != nil {
		e := *r.Enabled
		out.Enabled = &e
	}
	out.Programs = cloneSlice(r.Programs)
	if r.Delta != nil {
		d := *r.Delta
		out.Delta = &d
	}
	out.All = cloneConds(r.All)
	out.Any = cloneConds(r.Any)
	if r.Event != nil {
		e := *r.Event
		out.Event = &e
	}
	out.Params = cloneMap(r.Params)
	if r.ProgramParams != nil {
		out.ProgramParams = make(map[string]map[string]float64, len(r.ProgramParams))
		for k, v := range r.ProgramParams {
			out.ProgramParams[k] = cloneMap(v)
		}
	}
	if r.Rearm != nil {
		re := *r.Rearm
		re.Params = cloneMap(r.Rearm.Params)
		out.Rearm = &re
	}
	if r.Retake != nil {
		rt := *r.Retake
		if r.Retake.Enabled != nil {
			e := *r.Retake.Enabled
			rt.Enabled = &e
		}
		out.Retake = &rt
	}
	if r.Ask != nil {
		a := *r.Ask
		out.Ask = &a
	}
	if r.Bounds != nil {
		out.Bounds = make(map[string][]float64, len(r.Bounds))
		for k, v := range r.Bounds {
			out.Bounds[k] = cloneSlice(v)
		}
	}
	return out
}

func cloneConds(cs []Condition) []Condition {
	if cs == nil {
		return nil
	}
	out := make([]Condition, len(cs))
	for i, c := range cs {
		out[i] = Condition{When: c.When, All: cloneConds(c.All), Any: cloneConds(c.Any)}
		if c.Delta != nil {
			d := *c.Delta
			out[i].Delta = &d
		}
	}
	return out
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append([]T(nil), s...)
}

func cloneMap(m map[string]float64) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
