// Package rpm is Tend's clinical vocabulary: vital kinds and their LOINC codes,
// units (UCUM) and conversion to canonical units, plausibility limits, symptom
// codes and urgency levels.
//
// The package is pure: no I/O, no clock, no logging. Functions that need the
// current time take it as an argument.
package rpm

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tendhealth/tend/internal/text"
)

// Kind is a vital sign kind, the `kind` field of a reading.
type Kind string

// The vital kinds Tend understands.
const (
	HeartRate       Kind = "heart_rate"
	BloodPressure   Kind = "blood_pressure"
	SpO2            Kind = "spo2"
	BodyWeight      Kind = "body_weight"
	BodyTemperature Kind = "body_temperature"
	RespiratoryRate Kind = "respiratory_rate"
	BloodGlucose    Kind = "blood_glucose"
)

// Kinds lists every vital kind in a stable order.
var kinds = []Kind{HeartRate, BloodPressure, SpO2, BodyWeight, BodyTemperature, RespiratoryRate, BloodGlucose}

// Kinds returns every vital kind in a stable order.
func Kinds() []Kind { return slices.Clone(kinds) }

// Valid reports whether k is a known vital kind.
func (k Kind) Valid() bool { _, ok := specs[k]; return ok }

// Range is an inclusive plausibility range in a kind's canonical unit.
type Range struct{ Min, Max float64 }

// Contains reports whether v lies within r (inclusive).
func (r Range) Contains(v float64) bool { return v >= r.Min && v <= r.Max }

// Spec describes a vital kind: its codes, canonical unit, accepted units and
// plausible range.
type Spec struct {
	Kind Kind
	// LOINC is the code of the observation; for blood pressure the panel code.
	LOINC string
	// AltLOINC lists other codes accepted for the kind on input (FHIR).
	AltLOINC []string
	// Unit is the canonical UCUM unit that values are stored in.
	Unit string
	// Plausible is the plausible range of Value (or of systolic for blood pressure).
	Plausible Range
	// Diastolic is the plausible diastolic range; blood pressure only.
	Diastolic Range
	// units maps each accepted unit to a conversion into the canonical unit.
	units map[string]func(float64) float64
}

func identity(v float64) float64 { return v }

var specs = map[Kind]Spec{
	HeartRate: {
		Kind: HeartRate, LOINC: "8867-4", Unit: "/min", Plausible: Range{20, 300},
		units: map[string]func(float64) float64{"/min": identity, "bpm": identity, "{beats}/min": identity},
	},
	BloodPressure: {
		Kind: BloodPressure, LOINC: "85354-9", Unit: "mm[Hg]", Plausible: Range{40, 300}, Diastolic: Range{20, 200},
		units: map[string]func(float64) float64{"mm[Hg]": identity, "mmHg": identity},
	},
	SpO2: {
		Kind: SpO2, LOINC: "59408-5", AltLOINC: []string{"2708-6"}, Unit: "%", Plausible: Range{50, 100},
		units: map[string]func(float64) float64{"%": identity},
	},
	BodyWeight: {
		Kind: BodyWeight, LOINC: "29463-7", Unit: "kg", Plausible: Range{0.5, 500},
		units: map[string]func(float64) float64{
			"kg":      identity,
			"[lb_av]": func(v float64) float64 { return v * 0.45359237 },
			"lb":      func(v float64) float64 { return v * 0.45359237 },
			"g":       func(v float64) float64 { return v / 1000 },
		},
	},
	BodyTemperature: {
		Kind: BodyTemperature, LOINC: "8310-5", Unit: "Cel", Plausible: Range{25, 45},
		units: map[string]func(float64) float64{
			"Cel":    identity,
			"[degF]": fahrenheitToCelsius,
			"degF":   fahrenheitToCelsius,
		},
	},
	RespiratoryRate: {
		Kind: RespiratoryRate, LOINC: "9279-1", Unit: "/min", Plausible: Range{2, 80},
		units: map[string]func(float64) float64{"/min": identity},
	},
	BloodGlucose: {
		Kind: BloodGlucose, LOINC: "2339-0", AltLOINC: []string{"15074-8"}, Unit: "mg/dL", Plausible: Range{10, 1000},
		units: map[string]func(float64) float64{
			"mg/dL":  identity,
			"mmol/L": func(v float64) float64 { return v * GlucoseMmolToMgdl },
		},
	},
}

// GlucoseMmolToMgdl converts blood glucose from mmol/L to mg/dL.
const GlucoseMmolToMgdl = 18.0156

// Blood pressure component LOINC codes.
const (
	LOINCSystolic  = "8480-6"
	LOINCDiastolic = "8462-4"
)

func fahrenheitToCelsius(v float64) float64 { return (v - 32) * 5 / 9 }

// SpecOf returns the specification of kind k.
func SpecOf(k Kind) (Spec, bool) { s, ok := specs[k]; return s, ok }

// Units returns the units accepted for the kind, canonical first.
func (s Spec) Units() []string {
	out := make([]string, 0, len(s.units))
	for u := range s.units {
		if u != s.Unit {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return append([]string{s.Unit}, out...)
}

// ToCanonical converts v from unit into the kind's canonical unit.
func (s Spec) ToCanonical(v float64, unit string) (float64, bool) {
	f, ok := s.units[unit]
	if !ok {
		return 0, false
	}
	return f(v), true
}

// MaxFutureSkew is how far in the future an observation may lie (device clock
// skew) before it is rejected.
const MaxFutureSkew = 5 * time.Minute

// Reading is one vital-sign observation as received, before validation.
// Pointer fields distinguish "missing" from zero.
type Reading struct {
	Kind       Kind
	Value      *float64
	Systolic   *float64
	Diastolic  *float64
	Unit       string
	ObservedAt time.Time
	SourceID   string
}

// Measurement is a validated reading in canonical units.
type Measurement struct {
	Kind Kind
	// Value is the measured value; for blood pressure it equals Systolic.
	Value      float64
	Systolic   float64
	Diastolic  float64
	Unit       string
	ObservedAt time.Time
	SourceID   string
}

// MaxSourceIDLen bounds the length of a reading's source id.
const MaxSourceIDLen = 200

// Normalize validates r against its kind's rules and converts it to canonical
// units. now is the current time, used to reject future observations. The
// returned error is a *ValidationError listing every problem.
func Normalize(r Reading, now time.Time) (Measurement, error) {
	var errs ValidationError
	m := Measurement{Kind: r.Kind, ObservedAt: r.ObservedAt.UTC(), SourceID: r.SourceID}
	spec, ok := specs[r.Kind]
	switch {
	case r.Kind == "":
		errs.Add("kind", "is required")
	case !ok:
		errs.Add("kind", fmt.Sprintf("unknown vital kind %q; expected one of %s", text.Truncate(string(r.Kind), 40), joinKinds()))
	}
	if r.ObservedAt.IsZero() {
		errs.Add("observed_at", "is required (RFC 3339 time)")
	} else if r.ObservedAt.After(now.Add(MaxFutureSkew)) {
		errs.Add("observed_at", "is more than 5 minutes in the future")
	}
	if len(r.SourceID) > MaxSourceIDLen {
		errs.Add("source_id", fmt.Sprintf("is longer than %d characters", MaxSourceIDLen))
	}
	if !ok {
		return Measurement{}, errs.OrNil()
	}
	m.Unit = spec.Unit
	unit := r.Unit
	if unit == "" {
		errs.Add("unit", fmt.Sprintf("is required; accepted units: %s", strings.Join(spec.Units(), ", ")))
	} else if _, known := spec.units[unit]; !known {
		errs.Add("unit", fmt.Sprintf("unit %q is not accepted for %s; accepted units: %s", text.Truncate(unit, 20), r.Kind, strings.Join(spec.Units(), ", ")))
		unit = ""
	}
	if r.Kind == BloodPressure {
		if r.Value != nil {
			errs.Add("value", "is not used for blood_pressure; send systolic and diastolic")
		}
		sys := component(&errs, "systolic", r.Systolic, spec, unit, spec.Plausible)
		dia := component(&errs, "diastolic", r.Diastolic, spec, unit, spec.Diastolic)
		if sys != nil && dia != nil {
			if *sys <= *dia {
				errs.Add("systolic", "must be greater than diastolic")
			}
			m.Systolic, m.Diastolic, m.Value = *sys, *dia, *sys
		}
	} else {
		if r.Systolic != nil {
			errs.Add("systolic", fmt.Sprintf("is only used for blood_pressure, not %s", r.Kind))
		}
		if r.Diastolic != nil {
			errs.Add("diastolic", fmt.Sprintf("is only used for blood_pressure, not %s", r.Kind))
		}
		if v := component(&errs, "value", r.Value, spec, unit, spec.Plausible); v != nil {
			m.Value = *v
		}
	}
	if err := errs.OrNil(); err != nil {
		return Measurement{}, err
	}
	return m, nil
}

// component checks one numeric field and returns it in canonical units, or nil
// when it is missing or invalid (the reason is added to errs).
func component(errs *ValidationError, field string, v *float64, spec Spec, unit string, plausible Range) *float64 {
	if v == nil {
		errs.Add(field, "is required")
		return nil
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) {
		errs.Add(field, "must be a finite number")
		return nil
	}
	if unit == "" { // unit error already reported
		return nil
	}
	c, _ := spec.ToCanonical(*v, unit)
	if !plausible.Contains(c) {
		errs.Add(field, fmt.Sprintf("%s is outside the plausible range %g–%g %s", formatValue(c), plausible.Min, plausible.Max, spec.Unit))
		return nil
	}
	return &c
}

func formatValue(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func joinKinds() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
