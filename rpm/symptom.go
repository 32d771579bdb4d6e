package rpm

import (
	"fmt"
	"slices"

	"github.com/tendhealth/tend/internal/text"
)

// SymptomCode is a patient-reported symptom.
type SymptomCode string

// The symptom codes Tend understands.
const (
	ChestPain         SymptomCode = "chest_pain"
	ShortnessOfBreath SymptomCode = "shortness_of_breath"
	Dizziness         SymptomCode = "dizziness"
	Fainting          SymptomCode = "fainting"
	Swelling          SymptomCode = "swelling"
	Palpitations      SymptomCode = "palpitations"
	Headache          SymptomCode = "headache"
	Confusion         SymptomCode = "confusion"
	Nausea            SymptomCode = "nausea"
	Fatigue           SymptomCode = "fatigue"
	Fever             SymptomCode = "fever"
	Cough             SymptomCode = "cough"
	Bleeding          SymptomCode = "bleeding"
	VisionChange      SymptomCode = "vision_change"
	WeaknessOneSide   SymptomCode = "weakness_one_side"
	OtherSymptom      SymptomCode = "other"
)

var symptomCodes = []SymptomCode{
	ChestPain, ShortnessOfBreath, Dizziness, Fainting, Swelling, Palpitations, Headache, Confusion,
	Nausea, Fatigue, Fever, Cough, Bleeding, VisionChange, WeaknessOneSide, OtherSymptom,
}

// SymptomCodes returns every symptom code in a stable order.
func SymptomCodes() []SymptomCode { return slices.Clone(symptomCodes) }

// Valid reports whether c is a known symptom code.
func (c SymptomCode) Valid() bool { return slices.Contains(symptomCodes, c) }

// Severity bounds of a reported symptom.
const (
	MinSeverity = 0
	MaxSeverity = 10
)

// Symptom is one reported symptom.
type Symptom struct {
	Code     SymptomCode
	Severity int
	Text     string
}

// MaxSymptomTextLen bounds the free text of an `other` symptom.
const MaxSymptomTextLen = 500

// ValidateSymptom checks one symptom; field names are relative to it.
func ValidateSymptom(s Symptom) error {
	var errs ValidationError
	if s.Code == "" {
		errs.Add("code", "is required")
	} else if !s.Code.Valid() {
		errs.Add("code", fmt.Sprintf("unknown symptom code %q", text.Truncate(string(s.Code), 40)))
	}
	if s.Severity < MinSeverity || s.Severity > MaxSeverity {
		errs.Add("severity", "must be between 0 and 10")
	}
	if s.Code == OtherSymptom && s.Text == "" {
		errs.Add("text", "is required for symptom code other")
	}
	if len(s.Text) > MaxSymptomTextLen {
		errs.Add("text", fmt.Sprintf("is longer than %d characters", MaxSymptomTextLen))
	}
	return errs.OrNil()
}

// Programs are the care programs a patient can be enrolled in.
var programs = []string{"heart_failure", "hypertension", "copd", "diabetes"}

// Programs returns every known care program.
func Programs() []string { return slices.Clone(programs) }

// ValidProgram reports whether p is a known care program.
func ValidProgram(p string) bool { return slices.Contains(programs, p) }
