package rules

import (
	"time"

	"github.com/tendhealth/tend/rpm"
)

// SymptomInput is one symptom report to judge.
type SymptomInput struct {
	// ReportID identifies the report; findings carry it as ObservationID.
	ReportID string
	// Symptoms are the reported symptoms (validated by rpm.ValidateSymptom).
	Symptoms []rpm.Symptom
	// Programs are the patient's enrolled programs.
	Programs []string
	// Params are the patient's overrides: rule id → param name → value.
	Params map[string]map[string]float64
	// Now is the time of the report.
	Now time.Time
}

// EvaluateSymptoms judges a symptom report against the enabled symptom
// rules: a rule fires when its symptom is reported with a severity at or
// above its min_severity param. Symptom rules have no hysteresis: every
// report that matches fires (the engine groups them into the open alert).
func (p *Pack) EvaluateSymptoms(in SymptomInput) Result {
	var res Result
	var buf [maxParams]float64
	for _, r := range p.symptoms {
		if !r.appliesTo(in.Programs) {
			continue
		}
		worst := -1
		for _, s := range in.Symptoms {
			if s.Code == r.symptom && s.Severity > worst {
				worst = s.Severity
			}
		}
		if worst < 0 {
			continue
		}
		params := r.params.resolve(buf[:0], in.Programs, in.Params[r.id])
		if float64(worst) < params[r.params.index["min_severity"]] {
			continue
		}
		f := Finding{
			RuleID: r.id, Version: r.version, Urgency: r.urgency, Title: r.title,
			Symptom: r.symptom, ObservationID: in.ReportID, At: in.Now,
		}
		if r.askKind != "" {
			f.Kind, f.RetakeBy, f.Ask = r.askKind, in.Now.Add(r.askWithin), true
		}
		res.Findings = append(res.Findings, f)
	}
	sortFindings(res.Findings)
	return res
}
