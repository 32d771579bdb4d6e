package rules

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rpm"
)

// retakeKind reports whether single-reading rules of kind ask for a retake
// by default: one reading of these kinds is often spoiled by how it was
// taken (a cuff put on over a sleeve, a moving finger, a thermometer just
// after a hot drink).
func retakeKind(k rpm.Kind) bool {
	switch k {
	case rpm.BloodPressure, rpm.HeartRate, rpm.SpO2, rpm.BodyTemperature:
		return true
	}
	return false
}

// retake compiles a reading rule's retake setting.
func (c *compiler) retake(r *rule, rt *Retake, path string, x exprContext) {
	// A rule that reads the patient's baseline still judges one reading:
	// it gets a retake by default like any other single-reading rule.
	single := r.consecutive < 2 && r.sustained == 0 && !r.cond.readsWindow()
	r.retake = single && retakeKind(r.kind)
	r.retakeWithin = DefaultRetakeWithin
	if rt == nil {
		return
	}
	if rt.Enabled != nil {
		r.retake = *rt.Enabled
	}
	if rt.Within < 0 || rt.Within.Std() > maxRetakeWithin {
		c.ps.add(join(path, "within"), r.id, "must be a positive duration of at most %s", Duration(maxRetakeWithin))
	} else if rt.Within > 0 {
		r.retakeWithin = rt.Within.Std()
	}
	if rt.Now != "" {
		wx := x
		wx.path = join(path, "now")
		wx.dirs = nil
		r.retakeNow = compileExpr(wx, rt.Now)
		if r.retakeNow != nil && len(r.retakeNow.aggs) > 0 {
			c.ps.add(wx.path, r.id, "retake.now judges the reading alone: window aggregates are not allowed")
		}
	}
	if rt.Confirm != "" {
		wx := x
		wx.path = join(path, "confirm")
		wx.dirs = nil
		r.retakeConfirm = compileExpr(wx, rt.Confirm)
		if r.retakeConfirm != nil && len(r.retakeConfirm.aggs) > 0 {
			c.ps.add(wx.path, r.id, "retake.confirm judges the retake alone: window aggregates are not allowed")
		}
	}
}

// confirms reports whether the retake c.cur confirms a finding of r: the
// retake.confirm condition when the rule has one, else the rule's own.
func (r *rule) confirms(c *ectx) (bool, error) {
	if r.retakeConfirm != nil {
		return r.retakeConfirm.test(c)
	}
	return r.cond.test(c)
}

// pagesAtOnce reports whether a finding of r on c.cur skips the retake: the
// rule has none, or the reading is past its hard limit (retake.now). An
// error evaluating retake.now pages at once: nothing is held back on doubt.
func (r *rule) pagesAtOnce(c *ectx) bool {
	if !r.retake {
		return true
	}
	if r.retakeNow == nil {
		return false
	}
	ok, err := r.retakeNow.test(c)
	return err != nil || ok
}

// refuted reports whether the matching reading c.hist[j] was refuted by its
// retake: it awaited one (retake on, not past the hard limit), and the next
// reading of the kind (in hist after j, else c.cur) arrived within the
// retake period and did not match. A refuted reading paged no one, so it
// does not disarm the rule.
func (r *rule) refuted(c *ectx, j int) bool {
	pc := c.at(j)
	if r.pagesAtOnce(&pc) {
		return false
	}
	h := &c.hist[j]
	next := -1
	for k := j + 1; k < len(c.hist); k++ {
		if c.hist[k].Kind == r.kind {
			next = k
			break
		}
	}
	var nc ectx
	if next >= 0 {
		nc = c.at(next)
	} else {
		nc = *c
	}
	if nc.cur.ObservedAt.Sub(h.ObservedAt) > r.retakeWithin {
		return false // timed out: it paged
	}
	ok, err := r.confirms(&nc)
	return err == nil && !ok
}

// RetakeOutcome is the state of a finding that asked for a retake.
type RetakeOutcome uint8

// The retake outcomes.
const (
	// RetakeNone: the finding did not ask for a retake; it pages at once.
	RetakeNone RetakeOutcome = iota
	// RetakeAwait: no retake yet and the deadline has not passed.
	RetakeAwait
	// RetakeConfirmed: the retake matched the rule's condition: page now.
	RetakeConfirmed
	// RetakeNotConfirmed: the retake did not match: page no one.
	RetakeNotConfirmed
	// RetakeTimedOut: no retake arrived by the deadline: page now.
	RetakeTimedOut
	// RetakeAnswered: a symptom rule's request to measure (Ask) was
	// answered by a reading of its kind; the reading rules judge it.
	RetakeAnswered
	// RetakeUnanswered: no reading answered a request to measure by its
	// deadline. A request pages no one either way.
	RetakeUnanswered
)

// String returns the outcome's name: none, await, confirmed, not_confirmed
// or timed_out.
func (o RetakeOutcome) String() string {
	switch o {
	case RetakeNone:
		return "none"
	case RetakeAwait:
		return "await"
	case RetakeConfirmed:
		return "confirmed"
	case RetakeNotConfirmed:
		return "not_confirmed"
	case RetakeTimedOut:
		return "timed_out"
	case RetakeAnswered:
		return "answered"
	case RetakeUnanswered:
		return "unanswered"
	}
	return fmt.Sprintf("RetakeOutcome(%d)", o)
}

// Pages reports whether the outcome pages the team.
func (o RetakeOutcome) Pages() bool {
	return o == RetakeNone || o == RetakeConfirmed || o == RetakeTimedOut
}

// Final reports whether the outcome is a decision (anything but await).
func (o RetakeOutcome) Final() bool { return o != RetakeAwait }

// RetakeInput is what DecideRetake needs about a finding that awaits a
// retake.
type RetakeInput struct {
	// Finding is the finding as Evaluate returned it (RetakeBy set).
	Finding Finding
	// Readings are the patient's readings (any kind, any order) from the
	// finding's reading minus Pack.LookbackFor(kind) up to Now: the trigger,
	// what came before it and everything observed after it.
	Readings []Observation
	// Programs, Params and Baseline are the patient's, as for Evaluate.
	Programs []string
	Params   map[string]map[string]float64
	Baseline map[rpm.Kind]float64
	// Now is the time of the decision: the arrival of a reading, or the
	// deadline (Finding.RetakeBy) when a scheduled job decides.
	Now time.Time
}

// RetakeDecision is what became of a finding that awaited a retake.
type RetakeDecision struct {
	Outcome RetakeOutcome
	// Retake is the reading that decided (Confirmed, NotConfirmed); the
	// alert shows it with the first one.
	Retake Observation
	// At is when the decision takes effect: the retake's observed time, or
	// the deadline when it timed out.
	At time.Time
	// Err is set when the retake could not be judged (an evaluation error,
	// or a rule that no longer exists): the outcome is then Confirmed, so
	// the team is paged rather than nothing being said.
	Err error
}

// ErrUnknownRule is wrapped by a RetakeDecision.Err whose rule is not in
// the pack.
var ErrUnknownRule = errors.New("unknown rule")

// DecideRetake decides a finding that awaits a retake: the first reading of
// the finding's kind observed after the finding's reading and no later than
// Finding.RetakeBy is the retake. It confirms the finding when the rule's
// condition holds on it (judged against the readings before it), and
// refutes it otherwise. With no retake, the finding times out (pages) once
// Now reaches RetakeBy, and awaits before that. A finding without RetakeBy
// is RetakeNone.
func (p *Pack) DecideRetake(in RetakeInput) RetakeDecision {
	f := &in.Finding
	if f.RetakeBy.IsZero() {
		return RetakeDecision{Outcome: RetakeNone, At: f.At}
	}
	r, ok := p.byID[f.RuleID]
	if !ok || (r.typ != ReadingRule && r.askKind == "") {
		return RetakeDecision{Outcome: RetakeConfirmed, At: in.Now, Err: fmt.Errorf("rule %s: %w", text.Truncate(f.RuleID, 64), ErrUnknownRule)}
	}
	hist := slices.Clone(in.Readings)
	slices.SortStableFunc(hist, byTime)
	return r.decide(f, hist, in.Programs, in.Params, in.Baseline, in.Now)
}

// decide is DecideRetake over readings sorted by time.
func (r *rule) decide(f *Finding, hist []Observation, programs []string, params map[string]map[string]float64, baseline map[rpm.Kind]float64, now time.Time) RetakeDecision {
	k := -1
	for i := windowStart(hist, f.At); i < len(hist); i++ {
		h := &hist[i]
		if h.Kind != f.Kind || h.ID == f.ObservationID {
			continue
		}
		if h.ObservedAt.After(f.RetakeBy) {
			break
		}
		k = i
		break
	}
	if k < 0 {
		if now.Before(f.RetakeBy) {
			return RetakeDecision{Outcome: RetakeAwait}
		}
		return RetakeDecision{Outcome: r.deadlineOutcome(), At: f.RetakeBy}
	}
	if r.askKind != "" {
		return RetakeDecision{Outcome: RetakeAnswered, Retake: hist[k], At: hist[k].ObservedAt}
	}
	var buf [maxParams]float64
	c := ectx{cur: &hist[k], hist: hist[:k], baseline: baseline}
	c.params = r.params.resolve(buf[:0], programs, params[r.id])
	d := RetakeDecision{Retake: hist[k], At: hist[k].ObservedAt}
	ok, err := r.confirms(&c)
	switch {
	case err != nil:
		d.Outcome, d.Err = RetakeConfirmed, err
	case ok:
		d.Outcome = RetakeConfirmed
	default:
		d.Outcome = RetakeNotConfirmed
	}
	return d
}

// deadlineOutcome is what becomes of r's finding when nothing answered it
// by its deadline: a retake times out (pages), a request to measure goes
// unanswered (pages no one).
func (r *rule) deadlineOutcome() RetakeOutcome {
	if r.askKind != "" {
		return RetakeUnanswered
	}
	return RetakeTimedOut
}

// RetakeSetting describes a rule's retake, for catalogues and reports.
type RetakeSetting struct {
	Enabled bool
	Within  time.Duration
	// HardLimit is the retake.now condition ("" for none).
	HardLimit string
	// Confirm is the retake.confirm condition ("" for the rule's own).
	Confirm string
}

// RetakeOf returns the effective retake setting of a rule.
func (p *Pack) RetakeOf(ruleID string) (RetakeSetting, bool) {
	r, ok := p.byID[ruleID]
	if !ok {
		return RetakeSetting{}, false
	}
	s := RetakeSetting{Enabled: r.retake, Within: r.retakeWithin}
	if r.retakeNow != nil {
		s.HardLimit = r.retakeNow.src
	}
	if r.retakeConfirm != nil {
		s.Confirm = r.retakeConfirm.src
	}
	return s, true
}
