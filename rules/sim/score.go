package sim

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Cause is why a non-actionable alert paged.
type Cause int

// The causes of non-actionable alerts.
const (
	// Artefact: the reading that fired was spoiled by the device or how it
	// was used.
	Artefact Cause = iota
	// Noise: the patient's true value did not meet the rule; measurement
	// noise carried the reading across.
	Noise
	// Physiology: the patient's true value met the rule, but it is the
	// patient's usual state (or a benign swing), not a deterioration.
	Physiology
	numCauses
)

// Causes lists the causes in report order.
func Causes() []Cause { return []Cause{Artefact, Noise, Physiology} }

func (c Cause) String() string {
	switch c {
	case Artefact:
		return "artefact"
	case Noise:
		return "noise"
	case Physiology:
		return "physiology"
	}
	return "unknown"
}

// eventGrace is how long after an event ends a reading can still show it.
const eventGrace = 6 * time.Hour

// EventStat scores one event type.
type EventStat struct {
	Type EventType
	// Injected counts the events; Measurable those with at least one
	// reading of their kind while they lasted (no rule can see the
	// others); Caught the measurable ones an alert of their kind paged for.
	Injected, Measurable, Caught int
	// Sensitivity is Caught/Measurable with its 95 % Wilson interval.
	Sensitivity, Low, High float64
	// MedianHours is the median time from the first reading showing the
	// full deterioration to the page (0 when paged earlier); MedianReadings
	// the median number of readings of the kind between them.
	MedianHours, MedianReadings float64
}

// RuleStat scores one rule.
type RuleStat struct {
	RuleID string
	// Findings counts every reading the rule fired on; Suppressed those
	// hysteresis held back; NotConfirmed those a retake refuted.
	Findings, Suppressed, NotConfirmed int
	// Alerts counts pages; Actionable those during a deterioration.
	Alerts, Actionable int
	// NonActionable counts the other pages by cause.
	NonActionable [numCauses]int
	// PerPatientWeek is the rule's non-actionable pages per patient-week
	// of the whole cohort.
	PerPatientWeek float64
}

// NonActionableTotal sums NonActionable.
func (r RuleStat) NonActionableTotal() int {
	n := 0
	for _, v := range r.NonActionable {
		n += v
	}
	return n
}

// ProgramStat scores the patients of one program.
type ProgramStat struct {
	Program       string
	Patients      int
	PatientWeeks  float64
	NonActionable [numCauses]int
	// PerPatientWeek is the program's patients' non-actionable pages per
	// patient-week.
	PerPatientWeek float64
}

// Report is the score of one pack over one cohort.
type Report struct {
	Config       Config
	Patients     int
	PatientWeeks float64
	Readings     int
	Events       []EventStat
	Rules        []RuleStat
	Programs     []ProgramStat
	// Alerts counts every page; NonActionable those outside any
	// deterioration, by cause, and PerPatientWeek their rate.
	Alerts         int
	NonActionable  [numCauses]int
	PerPatientWeek float64
	// Errors counts rule evaluation errors.
	Errors int
}

// NonActionableTotal sums NonActionable.
func (r Report) NonActionableTotal() int {
	n := 0
	for _, v := range r.NonActionable {
		n += v
	}
	return n
}

// Event returns the stat of one event type.
func (r Report) Event(t EventType) EventStat {
	for _, e := range r.Events {
		if e.Type == t {
			return e
		}
	}
	return EventStat{Type: t}
}

// Program returns the stat of one program.
func (r Report) Program(p string) ProgramStat {
	for _, s := range r.Programs {
		if s.Program == p {
			return s
		}
	}
	return ProgramStat{Program: p}
}

// Run generates the cohort of cfg and scores pack over it.
func Run(cfg Config, pack *rules.Pack) Report {
	return Score(cfg, Generate(cfg), pack)
}

// Score replays every patient of the cohort through pack and scores it.
func Score(cfg Config, cohort []Patient, pack *rules.Pack) Report {
	rep := Report{Config: cfg, Patients: len(cohort)}
	weeks := float64(cfg.Weeks)
	rep.PatientWeeks = weeks * float64(len(cohort))
	type evAcc struct {
		stat           EventStat
		hours, reading []float64
	}
	evs := map[EventType]*evAcc{}
	for _, t := range EventTypes() {
		evs[t] = &evAcc{stat: EventStat{Type: t}}
	}
	rs := map[string]*RuleStat{}
	ruleStat := func(id string) *RuleStat {
		s, ok := rs[id]
		if !ok {
			s = &RuleStat{RuleID: id}
			rs[id] = s
		}
		return s
	}
	progs := map[string]*ProgramStat{}
	for _, p := range rpm.Programs() {
		progs[p] = &ProgramStat{Program: p}
	}
	kindOf := map[string]rpm.Kind{}
	for _, r := range pack.Rules() {
		kindOf[r.ID] = r.Kind
	}

	for i := range cohort {
		p := &cohort[i]
		for _, prog := range p.Programs {
			progs[prog].Patients++
			progs[prog].PatientWeeks += weeks
		}
		pr, res := replayWithRetakes(cfg, pack, p)
		p = &pr
		rep.Readings += len(p.Readings)
		obs := make([]rules.Observation, len(p.Readings))
		byID := make(map[string]int, len(p.Readings))
		for j, r := range p.Readings {
			obs[j] = r.Observation
			byID[r.ID] = j
		}
		rep.Errors += len(res.Errors)
		for _, f := range res.Findings {
			s := ruleStat(f.RuleID)
			s.Findings++
			if f.Suppressed {
				s.Suppressed++
			}
			if f.Retake == rules.RetakeNotConfirmed {
				s.NotConfirmed++
			}
		}
		// Events: caught when an alert of their kind fired on a reading
		// taken while they lasted.
		for _, e := range p.Events {
			acc := evs[e.Type]
			acc.stat.Injected++
			m, ok := measurable(p.Readings, e)
			if !ok {
				continue
			}
			acc.stat.Measurable++
			first := -1
			for ai, a := range res.Alerts {
				if kindOf[a.RuleID] != e.Kind || a.FirstAt.Before(e.Start) || a.FirstAt.After(e.End.Add(eventGrace)) {
					continue
				}
				if first < 0 || a.OpenedAt.Before(res.Alerts[first].OpenedAt) {
					first = ai
				}
			}
			if first < 0 {
				continue
			}
			acc.stat.Caught++
			a := res.Alerts[first]
			mt := p.Readings[m].ObservedAt
			acc.hours = append(acc.hours, math.Max(0, a.OpenedAt.Sub(mt).Hours()))
			n := 0
			for _, r := range p.Readings[m+1:] {
				if !r.ObservedAt.Before(a.OpenedAt) {
					break
				}
				if r.Kind == e.Kind {
					n++
				}
			}
			acc.reading = append(acc.reading, float64(n))
		}
		// Alerts: actionable during a deterioration, else by cause.
		for _, a := range res.Alerts {
			rep.Alerts++
			s := ruleStat(a.RuleID)
			s.Alerts++
			if during(p.Events, a.FirstAt) {
				s.Actionable++
				continue
			}
			c := Physiology
			if j, ok := byID[a.ObservationID]; ok {
				c = cause(pack, p, obs, j, a.RuleID)
			}
			s.NonActionable[c]++
			rep.NonActionable[c]++
			for _, prog := range p.Programs {
				progs[prog].NonActionable[c]++
			}
		}
	}
	for _, t := range EventTypes() {
		acc := evs[t]
		st := acc.stat
		st.Sensitivity, st.Low, st.High = Wilson(st.Caught, st.Measurable)
		st.MedianHours = median(acc.hours)
		st.MedianReadings = median(acc.reading)
		rep.Events = append(rep.Events, st)
	}
	for _, s := range rs {
		if rep.PatientWeeks > 0 {
			s.PerPatientWeek = float64(s.NonActionableTotal()) / rep.PatientWeeks
		}
		rep.Rules = append(rep.Rules, *s)
	}
	sort.Slice(rep.Rules, func(i, j int) bool { return rep.Rules[i].RuleID < rep.Rules[j].RuleID })
	for _, prog := range rpm.Programs() {
		s := *progs[prog]
		if s.PatientWeeks > 0 {
			n := 0
			for _, v := range s.NonActionable {
				n += v
			}
			s.PerPatientWeek = float64(n) / s.PatientWeeks
		}
		rep.Programs = append(rep.Programs, s)
	}
	if rep.PatientWeeks > 0 {
		rep.PerPatientWeek = float64(rep.NonActionableTotal()) / rep.PatientWeeks
	}
	return rep
}

// maxRetakeRounds bounds the replays of one patient: a retake can change
// what later readings find, and so which later retakes are asked for.
const maxRetakeRounds = 4

// replayWithRetakes replays the patient through the pack and, for every
// finding that asks for a retake, lets the patient answer (or not), then
// replays again, until no new retake is asked for. It returns the patient
// with the retakes among the readings, and the last replay.
func replayWithRetakes(cfg Config, pack *rules.Pack, p *Patient) (Patient, rules.ReplayResult) {
	out := *p
	out.Readings = slices.Clone(p.Readings)
	asked := map[string]bool{}
	var res rules.ReplayResult
	for round := 0; ; round++ {
		obs := make([]rules.Observation, len(out.Readings))
		for j, r := range out.Readings {
			obs[j] = r.Observation
		}
		res = pack.Replay(rules.ReplayInput{Readings: obs, Programs: out.Programs})
		if round == maxRetakeRounds {
			return out, res
		}
		added := false
		for _, f := range res.Findings {
			if f.RetakeBy.IsZero() || f.Suppressed || asked[f.ObservationID] {
				continue
			}
			asked[f.ObservationID] = true
			if r, ok := out.retake(cfg, f.Kind, f.At, len(asked)); ok {
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

// measurable returns the index of the first reading that shows the event
// at its full size (or, when none was taken then, the first taken after
// half its rise); false when no reading of its kind was taken while it
// lasted.
func measurable(rs []Reading, e Event) (int, bool) {
	half := e.Start.Add(e.Full.Sub(e.Start) / 2)
	fallback := -1
	for i, r := range rs {
		if r.Kind != e.Kind || r.ObservedAt.Before(half) {
			continue
		}
		if !r.ObservedAt.Before(e.End) {
			break
		}
		if !r.ObservedAt.Before(e.Full) {
			return i, true
		}
		if fallback < 0 {
			fallback = i
		}
	}
	return fallback, fallback >= 0
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

// cause says why a non-actionable alert fired on reading j: an artefact, or
// noise (the rule does not fire on the reading's true value), or the
// patient's real physiology.
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
		if f.RuleID == ruleID {
			return Physiology
		}
	}
	return Noise
}

// Wilson returns the proportion k/n with its 95 % Wilson score interval;
// zeros when n is 0.
func Wilson(k, n int) (p, lo, hi float64) {
	if n == 0 {
		return 0, 0, 0
	}
	const z = 1.959963984540054
	nf := float64(n)
	p = float64(k) / nf
	den := 1 + z*z/nf
	centre := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return p, math.Max(0, centre-half), math.Min(1, centre+half)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
