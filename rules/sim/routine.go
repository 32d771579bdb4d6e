package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Routine is how often a patient measures, as programs prescribe it. A
// zero field in Config.Routine is drawn per patient from the levels below.
type Routine struct {
	// SpO2PerDay is the pulse-oximeter sessions a day (COPD patients and
	// half of heart-failure patients): 1, 2 or 4.
	SpO2PerDay int
	// BPPerDay is the blood-pressure sessions a day: 1 or 2.
	BPPerDay int
	// GlucosePerDay is the glucose checks a day (diabetes): 1 to 4.
	GlucosePerDay int
	// WeighDays is the share of mornings a heart-failure patient weighs:
	// 0.9 (daily, a missed day now and then) or 0.7 (most days).
	WeighDays float64
}

// The routine levels a mixed cohort draws from.
var (
	spo2Levels    = []int{1, 2, 4}
	bpLevels      = []int{1, 2}
	glucoseLevels = []int{1, 2, 3, 4}
	weighLevels   = []float64{0.9, 0.7}
)

func (r Routine) check() error {
	switch {
	case r.SpO2PerDay != 0 && !slices.Contains(spo2Levels, r.SpO2PerDay):
		return fmt.Errorf("SpO2 sessions a day must be 1, 2 or 4")
	case r.BPPerDay != 0 && !slices.Contains(bpLevels, r.BPPerDay):
		return fmt.Errorf("blood-pressure sessions a day must be 1 or 2")
	case r.GlucosePerDay != 0 && (r.GlucosePerDay < 1 || r.GlucosePerDay > 4):
		return fmt.Errorf("glucose checks a day must be between 1 and 4")
	case r.WeighDays != 0 && !(r.WeighDays > 0 && r.WeighDays <= 1):
		return fmt.Errorf("share of days weighed must be in (0, 1]")
	}
	return nil
}

// routine draws the fields Config.Routine leaves zero.
func (g *gen) routine() Routine {
	r := g.cfg.Routine
	if r.SpO2PerDay == 0 {
		r.SpO2PerDay = spo2Levels[g.rng.IntN(len(spo2Levels))]
	}
	if r.BPPerDay == 0 {
		r.BPPerDay = bpLevels[g.rng.IntN(len(bpLevels))]
	}
	if r.GlucosePerDay == 0 {
		r.GlucosePerDay = glucoseLevels[g.rng.IntN(len(glucoseLevels))]
	}
	if r.WeighDays == 0 {
		r.WeighDays = weighLevels[g.rng.IntN(len(weighLevels))]
	}
	g.rt = r
	return r
}

// RoutineOf names the routine under which events of type t are seen, for
// the report: the routine of the vital sign that shows them.
func (r Routine) RoutineOf(t EventType) string {
	switch t {
	case COPDDesaturation:
		return fmt.Sprintf("SpO2 %d×/day", r.SpO2PerDay)
	case HypertensiveCrisis, Tachycardia:
		return fmt.Sprintf("BP %d×/day", r.BPPerDay)
	case Hypoglycaemia, Hyperglycaemia:
		return fmt.Sprintf("glucose %d×/day", r.GlucosePerDay)
	case HFDecompensation:
		if r.WeighDays >= 0.85 {
			return "weight daily"
		}
		return "weight most days"
	}
	return "temperature as needed"
}

// adherenceGaps marks the days a patient measures nothing at all: a few
// days away, in hospital, or out of the habit (about one gap of 2–5 days in
// ten weeks).
func (g *gen) adherenceGaps() []bool {
	gaps := make([]bool, g.days)
	for range poisson(g.rng, 0.1*float64(g.cfg.Weeks)) {
		from, n := g.rng.IntN(g.days), 2+g.rng.IntN(4)
		for d := from; d < min(from+n, g.days); d++ {
			gaps[d] = true
		}
	}
	return gaps
}

// sessionHours are the times of day (from, to) of n sessions a day.
func sessionHours(n int) [][2]float64 {
	switch n {
	case 1:
		return [][2]float64{{6.5, 10}}
	case 2:
		return [][2]float64{{6.5, 9.5}, {19, 22.5}}
	case 3:
		return [][2]float64{{6.5, 9.5}, {12.5, 15}, {19, 22.5}}
	}
	return [][2]float64{{6.5, 8.5}, {11, 13}, {15.5, 17.5}, {20, 22.5}}
}

// glucoseHours are the times of n glucose checks a day: fasting, after
// dinner, after lunch, at bedtime.
func glucoseHours(n int) [][2]float64 {
	all := [][2]float64{{6, 8.5}, {19.5, 20.5}, {13.5, 14.5}, {22, 23.5}}
	return all[:n]
}

// emitter numbers and collects a patient's readings.
type emitter struct {
	g   *gen
	id  string
	n   int
	out []Reading
}

// emit takes repeats readings of kind from t, a minute or two apart.
func (e *emitter) emit(kind rpm.Kind, t time.Time, repeats int) {
	for k := range repeats {
		at := t.Add(time.Duration(k) * time.Duration(60+e.g.rng.IntN(60)) * time.Second)
		r := e.g.measure(kind, at, e.g.sized)
		e.n++
		r.ID = fmt.Sprintf("%s-%d", e.id, e.n)
		e.out = append(e.out, r)
	}
}

// reps is how many readings a session takes (AHA advises two BP readings a
// minute apart; many take one).
func (g *gen) reps(p2 float64) int {
	if g.chance(p2) {
		return 2
	}
	return 1
}

// readings generates the patient's measurement sessions, day by day.
func (g *gen) readings(id string, evs []Event) []Reading {
	e := &emitter{g: g, id: id}
	for day := range g.days {
		if g.gaps[day] {
			continue
		}
		g.bloodPressure(e, day, evs)
		g.oximetry(e, day, evs)
		g.weightAndTemperature(e, day, evs)
		g.glucose(e, day)
		g.symptomChecks(e, day, evs)
	}
	slices.SortStableFunc(e.out, func(a, b Reading) int { return a.ObservedAt.Compare(b.ObservedAt) })
	return e.out
}

// bloodPressure takes the day's cuff sessions, each with the cuff's pulse.
func (g *gen) bloodPressure(e *emitter, day int, evs []Event) {
	adh := 0.5
	switch {
	case g.has("hypertension"):
		adh = 0.85
	case g.has("heart_failure"):
		adh = 0.8
	}
	for _, h := range sessionHours(g.rt.BPPerDay) {
		t := g.dayAt(day, g.unif(h[0], h[1]))
		if g.chance(adh) || (ill(evs, t, rpm.BloodPressure, rpm.HeartRate) && g.chance(0.3)) {
			e.emit(rpm.BloodPressure, t, g.reps(0.45))
			e.emit(rpm.HeartRate, t.Add(time.Second), 1)
		}
	}
}

// oximetry takes the day's pulse-oximeter sessions (SpO2 and pulse): COPD
// patients and half of heart-failure patients; a patient who feels short of
// breath sometimes measures in between.
func (g *gen) oximetry(e *emitter, day int, evs []Event) {
	uses := g.has("copd") || (g.has("heart_failure") && g.ph.oximeter)
	if !uses {
		return
	}
	for _, h := range sessionHours(g.rt.SpO2PerDay) {
		t := g.dayAt(day, g.unif(h[0], h[1])+0.1)
		if g.chance(0.85) {
			e.emit(rpm.SpO2, t, g.reps(0.2))
			e.emit(rpm.HeartRate, t.Add(2*time.Second), 1)
		}
	}
	if t := g.dayAt(day, g.unif(11, 17)); ill(evs, t, rpm.SpO2) && g.chance(0.2) {
		e.emit(rpm.SpO2, t, 1)
		e.emit(rpm.HeartRate, t.Add(2*time.Second), 1)
	}
}

// weightAndTemperature weighs heart-failure patients in the morning, takes
// temperatures (daily for many COPD patients, now and then for others, and
// when feverish) and counts COPD patients' breathing on some days.
func (g *gen) weightAndTemperature(e *emitter, day int, evs []Event) {
	morning := g.dayAt(day, g.unif(6.5, 9.5))
	if g.has("heart_failure") && g.chance(g.rt.WeighDays) {
		e.emit(rpm.BodyWeight, morning.Add(-10*time.Minute), 1)
	}
	tempAdh := 0.1
	if g.has("copd") {
		tempAdh = 0.6
	} else if g.has("heart_failure") {
		tempAdh = 0.3
	}
	if g.chance(tempAdh) {
		e.emit(rpm.BodyTemperature, morning.Add(15*time.Minute), g.reps(0.15))
	}
	if evening := g.dayAt(day, g.unif(19, 22)); ill(evs, evening, rpm.BodyTemperature) && g.chance(0.7) {
		e.emit(rpm.BodyTemperature, evening, g.reps(0.15))
	}
	if g.has("copd") && g.chance(0.3) {
		e.emit(rpm.RespiratoryRate, morning.Add(20*time.Minute), 1)
	}
}

// glucose takes the day's glucose checks (diabetes).
func (g *gen) glucose(e *emitter, day int) {
	if !g.has("diabetes") {
		return
	}
	for _, h := range glucoseHours(g.rt.GlucosePerDay) {
		if g.chance(0.85) {
			e.emit(rpm.BloodGlucose, g.dayAt(day, g.unif(h[0], h[1])), 1)
		}
	}
}

// symptomChecks are the extra checks when symptoms start (the sweating and
// shaking of a hypo, palpitations) on the day an event begins.
func (g *gen) symptomChecks(e *emitter, day int, evs []Event) {
	from, to := g.dayAt(day, 0), g.dayAt(day+1, 0)
	for _, ev := range evs {
		if ev.Start.Before(from) || !ev.Start.Before(to) {
			continue
		}
		switch ev.Type {
		case Hypoglycaemia:
			if g.chance(0.85) {
				t := ev.Start.Add(time.Duration(g.unif(0.3, 0.8) * float64(ev.Full.Sub(ev.Start)+time.Hour/2)))
				e.emit(rpm.BloodGlucose, t, 1)
				if g.chance(0.5) {
					e.emit(rpm.BloodGlucose, t.Add(15*time.Minute), 1) // the rule of 15
				}
			}
		case Tachycardia:
			if g.chance(0.5) {
				t := ev.Full.Add(time.Duration(g.unif(0.2, 3) * float64(time.Hour)))
				e.emit(rpm.BloodPressure, t, 1)
				e.emit(rpm.HeartRate, t.Add(time.Second), 1)
			}
		}
	}
}

// reports generates the patient's symptom reports: breathlessness and cough
// while a COPD exacerbation or a decompensation is felt, fever when
// feverish, and the background of bad days that are not deteriorations.
func (g *gen) reports(id string, evs []Event) []rules.SymptomReport {
	var out []rules.SymptomReport
	add := func(t time.Time, sev int, codes ...rpm.SymptomCode) {
		rep := rules.SymptomReport{ID: fmt.Sprintf("%s-s%d", id, len(out)+1), At: t}
		for _, c := range codes {
			rep.Symptoms = append(rep.Symptoms, rpm.Symptom{Code: c, Severity: sev})
		}
		out = append(out, rep)
	}
	for day := range g.days {
		t := g.dayAt(day, g.unif(9, 20))
		switch {
		case ill(evs, t, rpm.SpO2) && g.chance(0.4):
			add(t, 3+g.rng.IntN(5), rpm.ShortnessOfBreath, rpm.Cough)
		case ill(evs, t, rpm.BodyWeight) && g.chance(0.2):
			add(t, 2+g.rng.IntN(4), rpm.ShortnessOfBreath, rpm.Swelling)
		case ill(evs, t, rpm.BodyTemperature) && g.chance(0.3):
			add(t, 3+g.rng.IntN(4), rpm.Fever)
		case g.has("copd") && g.chance(0.03):
			add(t, 2+g.rng.IntN(4), rpm.ShortnessOfBreath)
		case g.has("heart_failure") && g.chance(0.01):
			add(t, 2+g.rng.IntN(3), rpm.Swelling)
		}
	}
	return out
}
