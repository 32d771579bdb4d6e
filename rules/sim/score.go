package sim

import (
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Cause is why a needless (non-actionable) page fired.
type Cause int

// The causes of needless pages.
const (
	// Artefact: the reading that fired was spoiled by the device or how it
	// was used.
	Artefact Cause = iota
	// Noise: the patient's true value did not meet the rule; measurement
	// noise carried the reading across.
	Noise
	// Physiology: the patient's true value met the rule, but it is the
	// patient's usual state, not a deterioration.
	Physiology
	// Fluctuation: a weight rule fired on a benign swing (a salty meal, a
	// missed diuretic) that was gone in two days.
	Fluctuation
	numCauses
)

// Causes lists the causes in report order.
func Causes() []Cause { return []Cause{Artefact, Noise, Physiology, Fluctuation} }

func (c Cause) String() string {
	switch c {
	case Artefact:
		return "artefact"
	case Noise:
		return "noise"
	case Physiology:
		return "physiology"
	case Fluctuation:
		return "fluctuation"
	}
	return "unknown"
}

// eventGrace is how long after an event ends a reading can still show it.
const eventGrace = 6 * time.Hour

// EventStat scores one event type, under one routine or all of them.
type EventStat struct {
	Type EventType
	// Routine names the measurement routine (Routine.RoutineOf); empty
	// for every routine together.
	Routine string
	// Injected counts the events; Measurable those detectable by the
	// patient's routine readings (a reading of their kind taken while the
	// event lasted whose true value meets the event's definition, see
	// shows); Caught the measurable ones an alert of their kind paged for.
	Injected, Measurable, Caught int
	// Sensitivity is Caught/Measurable with its 95 % Wilson interval.
	Sensitivity, Low, High float64
	// MedianHours and P90Hours are the median and 90th percentile of the
	// time from detectability (the first routine reading that shows the
	// event) to the page, 0 when paged earlier; MedianReadings is the
	// median number of routine readings of the kind after that one and
	// before the page (0: paged on the first reading, or its retake).
	MedianHours, P90Hours, MedianReadings float64
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
	// PerPatientWeek is the rule's needless pages per patient-week of the
	// whole cohort.
	PerPatientWeek float64
}

// NonActionableTotal sums NonActionable.
func (r RuleStat) NonActionableTotal() int { return sum(r.NonActionable) }

// ProgramStat scores the patients of one program.
type ProgramStat struct {
	Program       string
	Patients      int
	PatientWeeks  float64
	NonActionable [numCauses]int
	// PerPatientWeek is the program's patients' needless pages per
	// patient-week.
	PerPatientWeek float64
}

// Report is the score of one pack over one cohort (or several, pooled).
type Report struct {
	Config       Config
	Patients     int
	PatientWeeks float64
	// Readings counts every reading, Asked those Tend asked for (retakes
	// and requests after symptom reports).
	Readings, Asked int
	// Events scores each event type over every routine; ByRoutine each
	// event type under each routine that saw events of it.
	Events    []EventStat
	ByRoutine []EventStat
	Rules     []RuleStat
	Programs  []ProgramStat
	// Alerts counts every page; NonActionable those outside any
	// deterioration, by cause, and PerPatientWeek their rate.
	Alerts         int
	NonActionable  [numCauses]int
	PerPatientWeek float64
	// Errors counts rule evaluation errors.
	Errors int
}

// NonActionableTotal sums NonActionable.
func (r Report) NonActionableTotal() int { return sum(r.NonActionable) }

// Event returns the stat of one event type over every routine.
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

func sum(c [numCauses]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Run generates the cohort of cfg and scores pack over it.
func Run(cfg Config, pack *rules.Pack) Report {
	return Score(cfg, Generate(cfg), pack)
}

// Score replays every patient of the cohort through pack and scores it.
func Score(cfg Config, cohort []Patient, pack *rules.Pack) Report {
	return scoreTally(cfg, cohort, pack, nil).report(cfg)
}

// scoreTally scores the cohort on every core; stop, when it returns true,
// abandons the work (the tally is then partial).
func scoreTally(cfg Config, cohort []Patient, pack *rules.Pack, stop func() bool) *tally {
	workers := min(runtime.GOMAXPROCS(0), max(len(cohort), 1))
	parts := make([]*tally, workers)
	kindOf := map[string]rpm.Kind{}
	for _, r := range pack.Rules() {
		kindOf[r.ID] = r.Kind
	}
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = newTally()
		wg.Go(func() {
			for i := w; i < len(cohort); i += workers {
				if stop != nil && i%16 == 0 && stop() {
					return
				}
				parts[w].patient(cfg, pack, &cohort[i], kindOf)
			}
		})
	}
	wg.Wait()
	t := newTally()
	for _, p := range parts {
		t.merge(p)
	}
	return t
}

// eventKey is an event type under a routine ("" for all).
type eventKey struct {
	typ     EventType
	routine string
}

// eventAcc accumulates the score of one event type and routine.
type eventAcc struct {
	injected, measurable, caught int
	hours, readings              []float64
}

// tally accumulates a score; tallies of parts of a cohort, or of cohorts
// of several seeds, merge into one.
type tally struct {
	patients        int
	patientWeeks    float64
	readings, asked int
	alerts, errors  int
	events          map[eventKey]*eventAcc
	rules           map[string]*RuleStat
	progs           map[string]*ProgramStat
	nonActionable   [numCauses]int
}

func newTally() *tally {
	t := &tally{events: map[eventKey]*eventAcc{}, rules: map[string]*RuleStat{}, progs: map[string]*ProgramStat{}}
	for _, p := range rpm.Programs() {
		t.progs[p] = &ProgramStat{Program: p}
	}
	return t
}

func (t *tally) event(k eventKey) *eventAcc {
	a, ok := t.events[k]
	if !ok {
		a = &eventAcc{}
		t.events[k] = a
	}
	return a
}

func (t *tally) rule(id string) *RuleStat {
	s, ok := t.rules[id]
	if !ok {
		s = &RuleStat{RuleID: id}
		t.rules[id] = s
	}
	return s
}

// merge adds o to t.
func (t *tally) merge(o *tally) {
	t.patients += o.patients
	t.patientWeeks += o.patientWeeks
	t.readings += o.readings
	t.asked += o.asked
	t.alerts += o.alerts
	t.errors += o.errors
	for k, a := range o.events {
		b := t.event(k)
		b.injected += a.injected
		b.measurable += a.measurable
		b.caught += a.caught
		b.hours = append(b.hours, a.hours...)
		b.readings = append(b.readings, a.readings...)
	}
	for id, s := range o.rules {
		r := t.rule(id)
		r.Findings += s.Findings
		r.Suppressed += s.Suppressed
		r.NotConfirmed += s.NotConfirmed
		r.Alerts += s.Alerts
		r.Actionable += s.Actionable
		addCauses(&r.NonActionable, s.NonActionable)
	}
	for p, s := range o.progs {
		r := t.progs[p]
		r.Patients += s.Patients
		r.PatientWeeks += s.PatientWeeks
		addCauses(&r.NonActionable, s.NonActionable)
	}
	addCauses(&t.nonActionable, o.nonActionable)
}

func addCauses(dst *[numCauses]int, src [numCauses]int) {
	for i, v := range src {
		dst[i] += v
	}
}

// patient replays one patient (answering what the pack asks for) and adds
// the outcome to t.
func (t *tally) patient(cfg Config, pack *rules.Pack, p0 *Patient, kindOf map[string]rpm.Kind) {
	p, res := replayWithAnswers(cfg, pack, p0)
	weeks := float64(cfg.Weeks)
	t.patients++
	t.patientWeeks += weeks
	for _, prog := range p.Programs {
		t.progs[prog].Patients++
		t.progs[prog].PatientWeeks += weeks
	}
	t.readings += len(p.Readings)
	for _, r := range p.Readings {
		if r.Asked {
			t.asked++
		}
	}
	t.errors += len(res.Errors)
	for _, f := range res.Findings {
		s := t.rule(f.RuleID)
		s.Findings++
		if f.Suppressed {
			s.Suppressed++
		}
		if f.Retake == rules.RetakeNotConfirmed {
			s.NotConfirmed++
		}
	}
	for _, e := range p.Events {
		t.scoreEvent(&p, e, res.Alerts, kindOf)
	}
	t.scoreAlerts(pack, &p, res.Alerts)
}

// scoreEvent counts one event, caught when an alert of its kind fired on a
// reading taken while it lasted.
func (t *tally) scoreEvent(p *Patient, e Event, alerts []rules.ReplayAlert, kindOf map[string]rpm.Kind) {
	accs := []*eventAcc{t.event(eventKey{typ: e.Type}), t.event(eventKey{typ: e.Type, routine: p.Routine.RoutineOf(e.Type)})}
	for _, a := range accs {
		a.injected++
	}
	m, ok := detectable(p, e)
	if !ok {
		return
	}
	first := -1
	for ai, a := range alerts {
		if kindOf[a.RuleID] != e.Kind || a.FirstAt.Before(e.Start) || a.FirstAt.After(e.End.Add(eventGrace)) {
			continue
		}
		if first < 0 || a.OpenedAt.Before(alerts[first].OpenedAt) {
			first = ai
		}
	}
	var hours, n float64
	if first >= 0 {
		a := alerts[first]
		hours = math.Max(0, a.OpenedAt.Sub(p.Readings[m].ObservedAt).Hours())
		// Routine readings after the detectable one, up to the one that
		// paged (a retake's first reading): 0 when the detectable reading
		// (or an earlier one) paged.
		for _, r := range p.Readings[m+1:] {
			if r.ObservedAt.After(a.FirstAt) {
				break
			}
			if r.Kind == e.Kind && !r.Asked {
				n++
			}
		}
	}
	for _, a := range accs {
		a.measurable++
		if first >= 0 {
			a.caught++
			a.hours = append(a.hours, hours)
			a.readings = append(a.readings, n)
		}
	}
}

// scoreAlerts counts the pages: actionable during a deterioration, else
// needless, by cause.
func (t *tally) scoreAlerts(pack *rules.Pack, p *Patient, alerts []rules.ReplayAlert) {
	var obs []rules.Observation
	byID := map[string]int{}
	for _, a := range alerts {
		t.alerts++
		s := t.rule(a.RuleID)
		s.Alerts++
		if during(p.Events, a.FirstAt) {
			s.Actionable++
			continue
		}
		if obs == nil {
			obs = make([]rules.Observation, len(p.Readings))
			for j, r := range p.Readings {
				obs[j] = r.Observation
				byID[r.ID] = j
			}
		}
		c := Physiology
		if j, ok := byID[a.ObservationID]; ok {
			c = cause(pack, p, obs, j, a.RuleID)
		}
		s.NonActionable[c]++
		t.nonActionable[c]++
		for _, prog := range p.Programs {
			t.progs[prog].NonActionable[c]++
		}
	}
}

// report turns the tally into a report.
func (t *tally) report(cfg Config) Report {
	rep := Report{Config: cfg, Patients: t.patients, PatientWeeks: t.patientWeeks, Readings: t.readings, Asked: t.asked,
		Alerts: t.alerts, NonActionable: t.nonActionable, Errors: t.errors}
	keys := make([]eventKey, 0, len(t.events))
	for k := range t.events {
		keys = append(keys, k)
	}
	order := map[EventType]int{}
	for i, e := range EventTypes() {
		order[e] = i
	}
	slices.SortFunc(keys, func(a, b eventKey) int {
		if order[a.typ] != order[b.typ] {
			return order[a.typ] - order[b.typ]
		}
		return strings.Compare(a.routine, b.routine)
	})
	for _, t0 := range EventTypes() {
		if _, ok := t.events[eventKey{typ: t0}]; !ok {
			rep.Events = append(rep.Events, EventStat{Type: t0, MedianHours: math.NaN(), P90Hours: math.NaN(), MedianReadings: math.NaN()})
		}
	}
	for _, k := range keys {
		a := t.events[k]
		st := EventStat{Type: k.typ, Routine: k.routine, Injected: a.injected, Measurable: a.measurable, Caught: a.caught}
		st.Sensitivity, st.Low, st.High = Wilson(st.Caught, st.Measurable)
		st.MedianHours, st.P90Hours = quantile(a.hours, 0.5), quantile(a.hours, 0.9)
		st.MedianReadings = quantile(a.readings, 0.5)
		if k.routine == "" {
			rep.Events = append(rep.Events, st)
		} else {
			rep.ByRoutine = append(rep.ByRoutine, st)
		}
	}
	slices.SortStableFunc(rep.Events, func(a, b EventStat) int { return order[a.Type] - order[b.Type] })
	for _, s := range t.rules {
		r := *s
		if t.patientWeeks > 0 {
			r.PerPatientWeek = float64(r.NonActionableTotal()) / t.patientWeeks
		}
		rep.Rules = append(rep.Rules, r)
	}
	sort.Slice(rep.Rules, func(i, j int) bool { return rep.Rules[i].RuleID < rep.Rules[j].RuleID })
	for _, prog := range rpm.Programs() {
		s := *t.progs[prog]
		if s.PatientWeeks > 0 {
			s.PerPatientWeek = float64(sum(s.NonActionable)) / s.PatientWeeks
		}
		rep.Programs = append(rep.Programs, s)
	}
	if t.patientWeeks > 0 {
		rep.PerPatientWeek = float64(rep.NonActionableTotal()) / t.patientWeeks
	}
	return rep
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

// quantile returns the q-quantile of v (nearest rank; the median of an
// even count is the mean of the middle two); NaN for none.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if q == 0.5 {
		if n%2 == 1 {
			return s[n/2]
		}
		return (s[n/2-1] + s[n/2]) / 2
	}
	i := int(math.Ceil(q*float64(n))) - 1
	return s[min(max(i, 0), n-1)]
}
