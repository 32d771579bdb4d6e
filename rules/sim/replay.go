package sim

import (
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// maxAnswerRounds bounds the replays of one patient: an answered request
// can change what later readings find, and so which later requests are
// made.
const maxAnswerRounds = 4

// replayWithAnswers replays the patient through the pack and, for every
// finding that asks for a reading (a retake, or a request after a symptom
// report), lets the patient answer (or not), then replays again, until no
// new request is made. It returns the patient with the answers among the
// readings, and the last replay.
func replayWithAnswers(cfg Config, pack *rules.Pack, p *Patient) (Patient, rules.ReplayResult) {
	out := *p
	out.Readings = slices.Clone(p.Readings)
	asked := map[string]bool{}
	var res rules.ReplayResult
	for round := 0; ; round++ {
		obs := make([]rules.Observation, len(out.Readings))
		for j, r := range out.Readings {
			obs[j] = r.Observation
		}
		res = pack.Replay(rules.ReplayInput{Readings: obs, SymptomReports: out.Reports, Programs: out.Programs})
		if round == maxAnswerRounds {
			return out, res
		}
		added := false
		for _, f := range res.Findings {
			key := f.RuleID + "/" + f.ObservationID
			if f.RetakeBy.IsZero() || f.Suppressed || asked[key] {
				continue
			}
			asked[key] = true
			if r, ok := out.answer(cfg, f.Kind, f.At, len(asked)); ok {
				out.Readings = append(out.Readings, r)
				added = true
			}
		}
		if !added {
			return out, res
		}
		slices.SortStableFunc(out.Readings, func(a, b Reading) int { return a.ObservedAt.Compare(b.ObservedAt) })
	}
}

// detectable returns the index of the first routine reading that shows the
// event: the first reading of its kind, not asked for by Tend, taken while
// the event lasted, whose true value meets the event's clinical definition
// (shows); false when none was.
func detectable(p *Patient, e Event) (int, bool) {
	for i, r := range p.Readings {
		if r.Kind != e.Kind || r.Asked || r.ObservedAt.Before(e.Start) {
			continue
		}
		if !r.ObservedAt.Before(e.End) {
			break
		}
		if shows(e, r, offsetAt(p.sized, r.ObservedAt)) {
			return i, true
		}
	}
	return -1, false
}

// shows reports whether reading r, with the events' offset o at its time,
// shows event e by its clinical definition: a gain of 1.8 kg (2 kg in 3
// days, less the scale's tolerance), SpO2 4 points below the patient's
// usual level, a blood pressure of 180/120 or more, a pulse of 120 or more,
// 38.0 °C or more, glucose below 70 or above 300 mg/dL (true values, before
// noise and artefacts).
func shows(e Event, r Reading, o offsets) bool {
	switch e.Type {
	case HFDecompensation:
		return o.weight >= 1.8
	case COPDDesaturation:
		return -o.spo2 >= 4
	case HypertensiveCrisis:
		return r.TrueSys >= 180 || r.TrueDia >= 120
	case Tachycardia:
		return r.TrueValue >= 120
	case Fever:
		return r.TrueValue >= 38.0
	case Hypoglycaemia:
		return r.TrueValue < 70
	case Hyperglycaemia:
		return r.TrueValue > 300
	}
	return false
}

// during reports whether t falls within a deterioration of the patient.
func during(evs []Event, t time.Time) bool {
	for _, e := range evs {
		if !t.Before(e.Start) && !t.After(e.End.Add(eventGrace)) {
			return true
		}
	}
	return false
}

// cause says why a needless page fired on reading j: an artefact, noise
// (the rule does not fire on the reading's true value), a benign weight
// swing, or the patient's real physiology.
func cause(pack *rules.Pack, p *Patient, obs []rules.Observation, j int, ruleID string) Cause {
	r := p.Readings[j]
	if r.Artefact {
		return Artefact
	}
	t := r.Observation
	t.Value = r.TrueValue
	if t.Kind == rpm.BloodPressure {
		t.Systolic, t.Diastolic, t.Value = r.TrueSys, r.TrueDia, r.TrueSys
	}
	lo := j
	from := t.ObservedAt.Add(-pack.LookbackFor(t.Kind))
	for lo > 0 && !obs[lo-1].ObservedAt.Before(from) {
		lo--
	}
	hist := obs[lo:j]
	res := pack.Evaluate(rules.Input{Reading: t, History: hist, Programs: p.Programs, Baseline: pack.Baselines(hist, t.ObservedAt), Now: t.ObservedAt})
	for _, f := range slices.Concat(res.Findings, res.Suppressed) {
		if f.RuleID != ruleID {
			continue
		}
		if r.Kind == rpm.BodyWeight && r.Swing > 0 {
			return Fluctuation
		}
		return Physiology
	}
	return Noise
}
