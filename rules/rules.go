package rules

import (
	"time"

	"github.com/tendhealth/tend/rpm"
)

// Observation is one stored or incoming reading in canonical units, or one
// reported symptom.
type Observation struct {
	ID         string
	Kind       rpm.Kind
	Value      float64
	Systolic   float64
	Diastolic  float64
	Unit       string
	ObservedAt time.Time
}

// Input is everything Evaluate needs to judge one reading.
type Input struct {
	// Reading is the observation being evaluated.
	Reading Observation
	// History holds the patient's other readings (any kind) observed from
	// Reading.ObservedAt minus Pack.Lookback() up to Now, ascending by
	// ObservedAt; it may contain readings observed after Reading (late data).
	// It may also contain Reading itself (same ID, as when the engine loads a
	// batch's history in one query): Evaluate must skip that entry.
	History []Observation
	// Programs are the patient's enrolled programs.
	Programs []string
	// Params are the patient's overrides: rule id → param name → value.
	Params map[string]map[string]float64
	// Now is the evaluation time.
	Now time.Time
	// Baseline is the patient's reference value per kind (a dry weight, a
	// usual blood pressure), in canonical units, that expressions read as
	// baseline. A rule that reads baseline when the reading's kind has none
	// reports an EvalError wrapping ErrNoBaseline.
	Baseline map[rpm.Kind]float64
}

// Finding is one rule firing on one reading.
type Finding struct {
	RuleID  string
	Version int
	Urgency rpm.Urgency
	Title   string
	// Late is set when the reading was observed before a newer reading of the
	// same kind already stored.
	Late bool
	// Kind is the vital kind of a reading or missing-data finding.
	Kind rpm.Kind
	// Symptom is the symptom of a symptom finding.
	Symptom rpm.SymptomCode
	// ObservationID is the id of the reading, symptom report or event the
	// finding is about; empty for missing-data findings.
	ObservationID string
	// Key is the group of an event finding: the medication (per: medication)
	// or the kind (per: kind).
	Key string
	// At is when the finding happened: the reading's observed_at, the
	// symptom report's time, the event's time, or the moment the data became
	// missing (last reading or enrolment plus the rule's duration).
	At time.Time
	// RetakeBy, when set, says the finding asks for a retake before paging:
	// the patient is asked to measure again, and Pack.DecideRetake decides
	// on the next reading of the kind, or at RetakeBy (the deadline) when
	// none came. Zero: the finding pages at once (no retake for the rule,
	// a reading past the rule's hard limit, a late or suppressed finding).
	RetakeBy time.Time
	// Ask is set on the finding of a symptom rule that asks the patient to
	// measure Kind by RetakeBy: it pages no one, and DecideRetake decides it
	// answered (a reading of Kind came) or unanswered.
	Ask bool
}

// EvalError is a rule that could not be evaluated (missing variable, cost
// limit): surfaced, never treated as false.
type EvalError struct {
	RuleID  string
	Version int
	Err     error
}

// Result is the outcome of evaluating one input.
type Result struct {
	// Findings are the rules that fired, most urgent first.
	Findings []Finding
	// Errors are the rules that could not be evaluated.
	Errors []EvalError
	// Suppressed are the rules whose condition held but that are disarmed
	// by hysteresis: the episode was already reported and no reading has
	// been back past the re-arm band since. The engine may record them on
	// the rule's open alert (occurrences) but must not page for them.
	Suppressed []Finding
}

// Error implements error.
func (e EvalError) Error() string {
	if e.Err == nil {
		return "rule " + e.RuleID + ": evaluation failed"
	}
	return "rule " + e.RuleID + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e EvalError) Unwrap() error { return e.Err }
