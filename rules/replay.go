package rules

import (
	"cmp"
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// SymptomReport is one stored symptom report, for Replay.
type SymptomReport struct {
	ID       string
	At       time.Time
	Symptoms []rpm.Symptom
}

// ReplayInput is one patient's stored data, replayed through a pack to
// backtest it.
type ReplayInput struct {
	// Readings are the patient's readings, in any order; they are replayed
	// in time order (stable for equal times), each judged against the ones
	// before it.
	Readings []Observation
	// SymptomReports and Events are replayed in time order with the
	// readings.
	SymptomReports []SymptomReport
	Events         []Event
	// Programs, Params and Baseline are the patient's, as for Evaluate.
	// A nil Baseline is computed for each reading from the readings before
	// it (Pack.Baselines), as the engine does; a non-nil one is used as is.
	Programs []string
	Params   map[string]map[string]float64
	Baseline map[rpm.Kind]float64
	// EnrolledAt and Until bound the replay of missing-data rules: each gap
	// of a rule's duration between EnrolledAt (or a reading) and the next
	// reading (or Until) is one finding. Zero EnrolledAt: missing-data rules
	// are not replayed.
	EnrolledAt time.Time
	Until      time.Time
}

// ReplayFinding is one finding the replay produced: every reading (report,
// event, gap) a rule fired on, whether it paged, was held back by
// hysteresis (Suppressed) or refuted by a retake.
type ReplayFinding struct {
	Finding
	// Alert is the index in ReplayResult.Alerts of the alert the finding
	// opened or was grouped into; -1 when none (a suppressed finding with no
	// open alert, a finding its retake did not confirm).
	Alert int
	// Opened is set when the finding opened that alert: it would have paged.
	Opened bool
	// Suppressed is set when hysteresis held the finding back.
	Suppressed bool
	// Retake is what became of a finding that asked for a retake
	// (RetakeNone for the others).
	Retake RetakeOutcome
}

// ReplayAlert is an alert the replayed findings would have opened.
type ReplayAlert struct {
	RuleID  string
	Urgency rpm.Urgency
	// OpenedAt is when the alert paged: the time of the item that opened
	// it, or of the retake that confirmed it, or the retake's deadline.
	OpenedAt time.Time
	// ObservationID is the item that opened the alert (for a retake, the
	// first reading) and FirstAt its time.
	ObservationID string
	FirstAt       time.Time
	// Retake is the retake outcome that opened the alert (RetakeNone when
	// it paged at once) and RetakeID the confirming reading.
	Retake   RetakeOutcome
	RetakeID string
	// ClosedAt is when the replay closed the alert (the rule re-armed, or a
	// new episode began); zero when it was still open at the end.
	ClosedAt time.Time
	// Findings counts the findings grouped into the alert, the opening one
	// and suppressed ones included.
	Findings int
}

// ReplayError is a rule that could not be evaluated on a replayed item.
type ReplayError struct {
	EvalError
	ObservationID string
	At            time.Time
}

// ReplayResult is the outcome of a replay.
type ReplayResult struct {
	// Findings are every finding, suppressed ones included, in replay
	// order; on one item, most urgent first.
	Findings []ReplayFinding
	Alerts   []ReplayAlert
	// Suppressed counts the findings that hysteresis held back, and
	// NotConfirmed those a retake refuted (both are in Findings).
	Suppressed   int
	NotConfirmed int
	Errors       []ReplayError
}

// ReplayStats summarises a replay for one rule: Findings counts every
// reading (report, event, gap) the rule fired on, Suppressed those of them
// that hysteresis held back, NotConfirmed those a retake refuted, Alerts
// the alerts opened (each would have paged).
type ReplayStats struct {
	Findings     int `json:"findings"`
	Suppressed   int `json:"suppressed"`
	NotConfirmed int `json:"not_confirmed"`
	Alerts       int `json:"alerts"`
	Errors       int `json:"errors"`
}

// ByRule summarises the result per rule id.
func (r ReplayResult) ByRule() map[string]ReplayStats {
	out := map[string]ReplayStats{}
	for _, f := range r.Findings {
		s := out[f.RuleID]
		s.Findings++
		if f.Suppressed {
			s.Suppressed++
		}
		if f.Retake == RetakeNotConfirmed {
			s.NotConfirmed++
		}
		out[f.RuleID] = s
	}
	for _, a := range r.Alerts {
		s := out[a.RuleID]
		s.Alerts++
		out[a.RuleID] = s
	}
	for _, e := range r.Errors {
		s := out[e.RuleID]
		s.Errors++
		out[e.RuleID] = s
	}
	return out
}

// symptomAlertSpan is how long a replayed symptom alert stays open for later
// reports of the same symptom (symptom rules have no re-arm band).
const symptomAlertSpan = 24 * time.Hour

// Replay runs one patient's stored data through the pack, as if it arrived
// in time order, for backtesting (POST /v1/rules/backtest calls it per
// patient) and simulation. Each reading is judged by Evaluate against the
// readings before it, so findings, hysteresis and errors are those that live
// evaluation would have produced.
//
// Grouping follows the engine: on one item (reading, report, event, gap)
// the most urgent finding opens an alert unless one is open for the
// patient and its rule, and the other findings are recorded on that alert.
// An alert closes when its rule re-arms (a reading past the band), when the
// rule fires a new episode, and, for symptom rules, 24 hours after their
// last finding. Suppressed findings are recorded on the rule's open alert.
//
// A symptom rule's request to measure (Finding.Ask) waits the same way and
// opens nothing: it is answered by the next reading of its kind, which the
// reading rules judge, or goes unanswered at its deadline.
//
// A finding that asks for a retake (Finding.RetakeBy) opens nothing until
// DecideRetake decides it: on the next reading of its kind (confirmed: the
// alert opens then; not confirmed: nothing), or at its deadline (the alert
// opens at the deadline). Findings still waiting when the data ends time out.
//
// To backtest a rule before enabling it, compile a pack holding just that
// rule, enabled.
func (p *Pack) Replay(in ReplayInput) ReplayResult {
	rp := newReplay(p, in)
	for {
		next, kind := rp.next()
		if kind == itemNone {
			rp.timeout(time.Time{}, true)
			rp.res.Alerts = rp.g.alerts
			return rp.res
		}
		rp.timeout(next, false)
		var item Result
		var id string
		switch kind {
		case itemReading:
			item, id = rp.reading(next)
		case itemReport:
			item, id = rp.report()
		case itemEvent:
			item, id = rp.event()
		case itemGap:
			item = Result{Findings: []Finding{rp.gaps[rp.gi]}}
			rp.gi++
		}
		rp.record(item, id, next)
	}
}

// Kinds of replayed item, in the order that breaks ties between equal times.
const (
	itemNone = iota
	itemReading
	itemReport
	itemEvent
	itemGap
)

// replay is the state of one Pack.Replay: the patient's items in time
// order, a cursor into each list, the grouper and the result so far.
type replay struct {
	p        *Pack
	in       ReplayInput
	readings []Observation
	reports  []SymptomReport
	events   []Event
	gaps     []Finding
	// dynamic is set when each reading's baseline is computed from the
	// readings before it.
	dynamic bool
	// ri, si, ei and gi are the next reading, report, event and gap.
	ri, si, ei, gi int
	g              *grouper
	res            ReplayResult
	// waiting are the indexes in res.Findings of findings awaiting a
	// retake.
	waiting []int
}

// newReplay sorts the patient's items by time (stable) and lists the
// missing-data gaps of the period.
func newReplay(p *Pack, in ReplayInput) *replay {
	readings := slices.Clone(in.Readings)
	slices.SortStableFunc(readings, byTime)
	reports := slices.Clone(in.SymptomReports)
	slices.SortStableFunc(reports, func(a, b SymptomReport) int { return a.At.Compare(b.At) })
	events := slices.Clone(in.Events)
	slices.SortStableFunc(events, func(a, b Event) int { return a.At.Compare(b.At) })
	return &replay{
		p: p, in: in, readings: readings, reports: reports, events: events,
		gaps:    p.replayGaps(in, readings),
		dynamic: in.Baseline == nil && len(p.BaselineKinds()) > 0,
		g:       &grouper{open: map[string]int{}, lastAt: map[string]time.Time{}, last: map[string]int{}},
	}
}

// next returns the time and kind of the next item in time order, readings
// first among equals; itemNone when every list is done.
func (rp *replay) next() (time.Time, int) {
	next, kind := time.Time{}, itemNone
	pick := func(t time.Time, k int) {
		if kind == itemNone || t.Before(next) {
			next, kind = t, k
		}
	}
	if rp.ri < len(rp.readings) {
		pick(rp.readings[rp.ri].ObservedAt, itemReading)
	}
	if rp.si < len(rp.reports) {
		pick(rp.reports[rp.si].At, itemReport)
	}
	if rp.ei < len(rp.events) {
		pick(rp.events[rp.ei].At, itemEvent)
	}
	if rp.gi < len(rp.gaps) {
		pick(rp.gaps[rp.gi].At, itemGap)
	}
	return next, kind
}

// timeout settles, as timed out, the waiting findings whose retake deadline
// is before before; with all, every waiting finding.
func (rp *replay) timeout(before time.Time, all bool) {
	kept := rp.waiting[:0]
	for _, fi := range rp.waiting {
		f := &rp.res.Findings[fi]
		if !all && !f.RetakeBy.Before(before) {
			kept = append(kept, fi)
			continue
		}
		out := RetakeTimedOut
		if r := rp.p.byID[f.RuleID]; r != nil {
			out = r.deadlineOutcome()
		}
		rp.p.settle(rp.g, &rp.res, fi, RetakeDecision{Outcome: out, At: f.RetakeBy})
	}
	rp.waiting = kept
}

// reading replays the next reading, at its time: it decides the retakes
// waiting for it, closes the alerts it re-arms and is evaluated against the
// readings before it.
func (rp *replay) reading(at time.Time) (Result, string) {
	p, in, ri := rp.p, rp.in, rp.ri
	o := rp.readings[ri]
	lo := windowStart(rp.readings[:ri], o.ObservedAt.Add(-p.byKind[o.Kind]))
	hist := rp.readings[lo:ri]
	base := in.Baseline
	if rp.dynamic {
		base = p.Baselines(hist, o.ObservedAt)
	}
	rp.decideRetakes(o, rp.readings[lo:ri+1], base)
	rp.g.rearm(p, o, hist, in, base, at)
	item := p.Evaluate(Input{Reading: o, History: hist, Programs: in.Programs, Params: in.Params, Baseline: base, Now: o.ObservedAt})
	rp.ri++
	return item, o.ID
}

// decideRetakes settles the waiting findings of o's kind that reading o
// decides; window is o with the readings before it in its rules' lookback.
func (rp *replay) decideRetakes(o Observation, window []Observation, base map[rpm.Kind]float64) {
	kept := rp.waiting[:0]
	for _, fi := range rp.waiting {
		f := &rp.res.Findings[fi]
		r := rp.p.byID[f.RuleID]
		if f.Kind != o.Kind || r == nil {
			kept = append(kept, fi)
			continue
		}
		d := r.decide(&f.Finding, window, rp.in.Programs, rp.in.Params, base, o.ObservedAt)
		if !d.Outcome.Final() {
			kept = append(kept, fi)
			continue
		}
		rp.p.settle(rp.g, &rp.res, fi, d)
	}
	rp.waiting = kept
}

// report replays the next symptom report.
func (rp *replay) report() (Result, string) {
	rep := rp.reports[rp.si]
	rp.si++
	in := rp.in
	return rp.p.EvaluateSymptoms(SymptomInput{ReportID: rep.ID, Symptoms: rep.Symptoms, Programs: in.Programs, Params: in.Params, Now: rep.At}), rep.ID
}

// event replays the next event, against the events before it in the pack's
// event lookback.
func (rp *replay) event() (Result, string) {
	ei := rp.ei
	ev := rp.events[ei]
	lo, _ := slices.BinarySearchFunc(rp.events[:ei], ev.At.Add(-rp.p.eventLookback), func(e Event, t time.Time) int { return e.At.Compare(t) })
	rp.ei++
	return rp.p.EvaluateEvents(EventInput{Event: ev, History: rp.events[lo:ei], Programs: rp.in.Programs, Params: rp.in.Params}), ev.ID
}

// record adds one item's outcome at time at to the result: its errors, its
// findings (those asking for a retake wait; the others are grouped into
// alerts now) and its suppressed findings (on their rule's open alert).
func (rp *replay) record(item Result, id string, at time.Time) {
	res := &rp.res
	for _, e := range item.Errors {
		res.Errors = append(res.Errors, ReplayError{EvalError: e, ObservationID: id, At: at})
	}
	now := item.Findings[:0:0]
	for _, f := range item.Findings {
		if f.RetakeBy.IsZero() {
			now = append(now, f)
			continue
		}
		rp.waiting = append(rp.waiting, len(res.Findings))
		res.Findings = append(res.Findings, ReplayFinding{Finding: f, Alert: -1, Retake: RetakeAwait})
	}
	res.Findings = append(res.Findings, rp.g.group(rp.p, now, at, RetakeDecision{})...)
	for _, f := range item.Suppressed {
		res.Suppressed++
		rf := ReplayFinding{Finding: f, Alert: -1, Suppressed: true}
		if ai, ok := rp.g.last[f.RuleID]; ok && rp.g.alerts[ai].ClosedAt.IsZero() {
			rf.Alert = ai
			rp.g.alerts[ai].Findings++
		}
		res.Findings = append(res.Findings, rf)
	}
}

// settle applies a retake decision to the waiting finding res.Findings[fi].
func (p *Pack) settle(g *grouper, res *ReplayResult, fi int, d RetakeDecision) {
	f := &res.Findings[fi]
	f.Retake = d.Outcome
	if !d.Outcome.Pages() {
		if d.Outcome == RetakeNotConfirmed {
			res.NotConfirmed++
		}
		return
	}
	out := g.group(p, []Finding{f.Finding}, d.At, d)
	f.Alert, f.Opened = out[0].Alert, out[0].Opened
}

// replayGaps lists the missing-data findings of the replayed period.
func (p *Pack) replayGaps(in ReplayInput, readings []Observation) []Finding {
	if in.EnrolledAt.IsZero() {
		return nil
	}
	var out []Finding
	for _, r := range p.missing {
		if !r.appliesTo(in.Programs) {
			continue
		}
		f := Finding{RuleID: r.id, Version: r.version, Urgency: r.urgency, Title: r.title, Kind: r.kind}
		last := time.Time{}
		for i := range readings {
			o := &readings[i]
			if o.Kind != r.kind {
				continue
			}
			if due, _ := missingSince(r, in.EnrolledAt, last); !o.ObservedAt.Before(due) {
				f.At = due
				out = append(out, f)
			}
			if o.ObservedAt.After(last) {
				last = o.ObservedAt
			}
		}
		if due, _ := missingSince(r, in.EnrolledAt, last); !in.Until.IsZero() && !in.Until.Before(due) {
			f.At = due
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return a.At.Compare(b.At) })
	return out
}

// grouper folds findings into alerts the way the engine does.
type grouper struct {
	alerts []ReplayAlert
	open   map[string]int       // rule id → index of its open alert
	lastAt map[string]time.Time // rule id → time of its latest finding
	last   map[string]int       // rule id → alert of its latest finding
}

// rearm closes the open alerts of reading rules that reading o clears.
func (g *grouper) rearm(p *Pack, o Observation, hist []Observation, in ReplayInput, base map[rpm.Kind]float64, at time.Time) {
	if len(g.open) == 0 {
		return
	}
	var buf, shifted [maxParams]float64
	for id, ai := range g.open {
		r := p.byID[id]
		if r == nil || r.typ != ReadingRule || r.kind != o.Kind {
			continue
		}
		c := ectx{cur: &o, hist: hist, baseline: base}
		c.params = r.params.resolve(buf[:0], in.Programs, in.Params[r.id])
		var sh []float64
		if r.shift != nil {
			sh = shifted[:len(c.params)]
			for i, v := range c.params {
				sh[i] = v + r.shift[i]
			}
		}
		if r.cleared(&c, sh) {
			g.alerts[ai].ClosedAt = at
			delete(g.open, id)
		}
	}
}

// group records the findings of one item and returns them with their alert;
// d is the retake decision that lets them page (zero: none).
func (g *grouper) group(p *Pack, fs []Finding, at time.Time, d RetakeDecision) []ReplayFinding {
	if len(fs) == 0 {
		return nil
	}
	// Every finding of a rule with an episode notion (all but symptom
	// rules) starts a new episode: its previous alert is over.
	for _, f := range fs {
		r := p.byID[f.RuleID]
		ai, open := g.open[f.RuleID]
		if !open {
			continue
		}
		expired := r != nil && r.typ == SymptomRule && at.Sub(g.lastAt[f.RuleID]) > symptomAlertSpan
		if r == nil || r.typ != SymptomRule || expired {
			g.alerts[ai].ClosedAt = at
			delete(g.open, f.RuleID)
		}
	}
	out := make([]ReplayFinding, len(fs))
	top := fs[0]
	ai, open := g.open[top.RuleID]
	if !open {
		ai = len(g.alerts)
		g.alerts = append(g.alerts, ReplayAlert{RuleID: top.RuleID, Urgency: top.Urgency, OpenedAt: at,
			ObservationID: top.ObservationID, FirstAt: top.At, Retake: d.Outcome, RetakeID: d.Retake.ID})
		g.open[top.RuleID] = ai
	}
	for i, f := range fs {
		out[i] = ReplayFinding{Finding: f, Alert: ai, Opened: i == 0 && !open, Retake: d.Outcome}
		g.alerts[ai].Findings++
		g.lastAt[f.RuleID] = at
		g.last[f.RuleID] = ai
	}
	slices.SortStableFunc(out, func(a, b ReplayFinding) int { return cmp.Compare(b.Urgency.Rank(), a.Urgency.Rank()) })
	return out
}
