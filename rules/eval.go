package rules

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// ectx is the context of one evaluation of a condition on one reading.
type ectx struct {
	cur *Observation
	// hist holds the readings observed at or before cur, ascending by time,
	// without cur itself.
	hist     []Observation
	params   []float64
	baseline map[rpm.Kind]float64
}

// at returns the context of the j-th history reading, judged against the
// readings before it.
func (c *ectx) at(j int) ectx {
	return ectx{cur: &c.hist[j], hist: c.hist[:j], params: c.params, baseline: c.baseline}
}

var errNoBaseline = fmt.Errorf("baseline: %w", ErrNoBaseline)

func (c *ectx) baselineValue() (float64, error) {
	if v, ok := c.baseline[c.cur.Kind]; ok {
		return v, nil
	}
	return 0, errNoBaseline
}

// windowStart returns the index of the first reading of hist observed at or
// after t.
func windowStart(hist []Observation, t time.Time) int {
	lo, hi := 0, len(hist)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if hist[m].ObservedAt.Before(t) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// aggregate computes a window aggregate over the readings of its series
// observed in [t-window, t], t being the time of the reading judged.
func aggregate(c *ectx, a *aggSpec) (float64, error) {
	lo := windowStart(c.hist, c.cur.ObservedAt.Add(-a.window))
	var n int
	var sum, lowest, highest, last float64
	for i := lo; i < len(c.hist); i++ {
		h := &c.hist[i]
		if h.Kind != a.series.kind {
			continue
		}
		v := a.series.field.raw(h)
		if n == 0 {
			lowest, highest = v, v
		} else {
			lowest, highest = min(lowest, v), max(highest, v)
		}
		sum += v
		last = v
		n++
	}
	if a.fn == aggCount {
		return float64(n), nil
	}
	if n == 0 {
		return 0, a.empty
	}
	lowest, highest, last = resolution(lowest), resolution(highest), resolution(last)
	now := last
	if a.series.kind == c.cur.Kind {
		now = a.series.field.value(c.cur)
	}
	switch a.fn {
	case aggAvg:
		return resolution(sum / float64(n)), nil
	case aggMin:
		return lowest, nil
	case aggMax:
		return highest, nil
	case aggLast:
		return last, nil
	case aggRise:
		return now - lowest, nil
	case aggFall:
		return highest - now, nil
	}
	return 0, fmt.Errorf("internal: unknown aggregate %d", a.fn)
}

// test reports whether the delta holds on c.cur.
func (d *deltaSpec) test(c *ectx) bool {
	lo := windowStart(c.hist, c.cur.ObservedAt.Add(-d.window))
	found := false
	var lowest, highest float64
	for i := lo; i < len(c.hist); i++ {
		h := &c.hist[i]
		if h.Kind != c.cur.Kind {
			continue
		}
		v := d.field.raw(h)
		if !found {
			lowest, highest, found = v, v, true
		} else {
			lowest, highest = min(lowest, v), max(highest, v)
		}
	}
	if !found {
		return false
	}
	lowest, highest = resolution(lowest), resolution(highest)
	v := d.field.value(c.cur)
	rise, fall := d.rise, d.fall
	if d.riseSlot >= 0 {
		rise = c.params[d.riseSlot]
	}
	if d.fallSlot >= 0 {
		fall = c.params[d.fallSlot]
	}
	if rise > 0 && v-lowest >= rise-deltaTolerance {
		return true
	}
	return fall > 0 && highest-v >= fall-deltaTolerance
}

// test evaluates the condition on c.cur. Like CEL's && and ||, a part that
// is false (all) or true (any) decides even when another part failed.
func (k *cond) test(c *ectx) (bool, error) {
	var firstErr error
	if k.delta != nil && !k.delta.test(c) {
		return false, nil
	}
	if k.when != nil {
		ok, err := k.when.test(c)
		if err == nil && !ok {
			return false, nil
		}
		firstErr = err
	}
	for _, s := range k.all {
		ok, err := s.test(c)
		if err == nil && !ok {
			return false, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if len(k.any) > 0 {
		var anyErr error
		hit := false
		for _, s := range k.any {
			ok, err := s.test(c)
			if err == nil && ok {
				hit = true
				break
			}
			if anyErr == nil {
				anyErr = err
			}
		}
		if !hit {
			if anyErr == nil {
				return false, nil
			}
			if firstErr == nil {
				firstErr = anyErr
			}
		}
	}
	if firstErr != nil {
		return false, firstErr
	}
	return true, nil
}

// test evaluates the expression natively when it can, else with CEL.
func (e *expr) test(c *ectx) (bool, error) {
	if e.native != nil {
		return e.native.test(c)
	}
	return e.testCEL(c)
}

// matches reports whether the rule's condition, with its consecutive or
// sustained qualifier, holds on c.cur.
func (r *rule) matches(c *ectx) (bool, error) {
	ok, err := r.cond.test(c)
	if err != nil || !ok {
		return false, err
	}
	switch {
	case r.consecutive >= 2:
		return r.consecutiveHolds(c)
	case r.sustained > 0:
		return r.sustainedHolds(c)
	}
	return true, nil
}

// consecutiveHolds checks the readings of the kind before c.cur: the
// previous consecutive-1 must all match and lie within r.within of c.cur.
func (r *rule) consecutiveHolds(c *ectx) (bool, error) {
	need := r.consecutive - 1
	from := c.cur.ObservedAt.Add(-r.within)
	counted := c.cur.ObservedAt
	for j := len(c.hist) - 1; j >= 0 && need > 0; j-- {
		h := &c.hist[j]
		if h.Kind != r.kind {
			continue
		}
		if h.ObservedAt.Before(from) {
			return false, nil
		}
		if r.apart > 0 && counted.Sub(h.ObservedAt) < r.apart {
			continue // a re-measurement of the reading counted last
		}
		counted = h.ObservedAt
		pc := c.at(j)
		ok, err := r.cond.test(&pc)
		if err != nil || !ok {
			return false, err
		}
		need--
	}
	return need == 0, nil
}

// sustainedHolds checks that the run of matching readings ending with
// c.cur reaches back at least r.sustained.
func (r *rule) sustainedHolds(c *ectx) (bool, error) {
	reach := c.cur.ObservedAt.Add(-r.sustained)
	limit := c.cur.ObservedAt.Add(-2 * r.sustained)
	for j := len(c.hist) - 1; j >= 0; j-- {
		h := &c.hist[j]
		if h.Kind != r.kind {
			continue
		}
		if h.ObservedAt.Before(limit) {
			return false, nil
		}
		pc := c.at(j)
		ok, err := r.cond.test(&pc)
		if err != nil || !ok {
			return false, err
		}
		if !h.ObservedAt.After(reach) {
			return true, nil
		}
	}
	return false, nil
}

// armed reports whether the rule may fire on c.cur: walking back through the
// readings of the kind within r.after, the first one that decides is either
// past the re-arm band (armed) or itself matching (disarmed: the episode was
// already reported). Readings in the dead band, and readings the condition
// cannot be evaluated on, decide nothing. No deciding reading: armed.
func (r *rule) armed(c *ectx, shifted []float64) bool {
	if r.shift != nil {
		shifted = shifted[:len(c.params)]
		for i, v := range c.params {
			shifted[i] = v + r.shift[i]
		}
	} else {
		shifted = nil
	}
	from := c.cur.ObservedAt.Add(-r.after)
	for j := len(c.hist) - 1; j >= 0; j-- {
		h := &c.hist[j]
		if h.Kind != r.kind {
			continue
		}
		if h.ObservedAt.Before(from) {
			break
		}
		pc := c.at(j)
		if r.cleared(&pc, shifted) {
			return true
		}
		if ok, err := r.matches(&pc); err == nil && ok && !r.refuted(c, j) {
			return false
		}
	}
	return true
}

// cleared reports whether c.cur is past the rule's re-arm band.
func (r *rule) cleared(c *ectx, shifted []float64) bool {
	if r.rearmWhen != nil {
		ok, err := r.rearmWhen.test(c)
		return err == nil && ok
	}
	cc := *c
	if shifted != nil {
		cc.params = shifted
	}
	ok, err := r.cond.test(&cc)
	return err == nil && !ok
}

// scratch is per-evaluation working memory, pooled so that the common path
// does not allocate.
type scratch struct {
	cur     Observation
	params  [maxParams]float64
	shifted [maxParams]float64
	sorted  []Observation
}

func (p *Pack) scratch() *scratch {
	if s, ok := p.rt.scratch.Get().(*scratch); ok {
		return s
	}
	return new(scratch)
}

func (p *Pack) release(s *scratch) {
	s.cur = Observation{}
	if s.sorted != nil {
		clear(s.sorted)
		s.sorted = s.sorted[:0]
	}
	p.rt.scratch.Put(s)
}

// history returns the readings of hist observed at or before cur (sorted,
// without cur itself), and whether a reading of cur's kind was observed
// after it (cur is late).
func (s *scratch) history(cur *Observation, hist []Observation) (view []Observation, late bool) {
	if len(hist) == 0 {
		return nil, false
	}
	own := false // hist is s.sorted, ours to change
	if !slices.IsSortedFunc(hist, byTime) {
		s.sorted = append(s.sorted[:0], hist...)
		slices.SortStableFunc(s.sorted, byTime)
		hist, own = s.sorted, true
	}
	t := cur.ObservedAt
	k := len(hist)
	for k > 0 && hist[k-1].ObservedAt.After(t) {
		k--
	}
	for i := k; i < len(hist); i++ {
		if hist[i].Kind == cur.Kind && (cur.ID == "" || hist[i].ID != cur.ID) {
			late = true
			break
		}
	}
	view = hist[:k]
	if cur.ID == "" {
		return view, late
	}
	for i := k - 1; i >= 0 && !hist[i].ObservedAt.Before(t); i-- {
		if hist[i].ID != cur.ID {
			continue
		}
		if i == k-1 {
			return view[:i], late
		}
		// The reading itself sits among others of the same instant.
		if !own {
			s.sorted = append(s.sorted[:0], view...)
			view = s.sorted
		}
		return slices.Delete(view, i, i+1), late
	}
	return view, late
}

func byTime(a, b Observation) int { return a.ObservedAt.Compare(b.ObservedAt) }

// Evaluate judges one reading against the pack's enabled rules for its kind
// and the patient's programs. It is pure: the result depends only on in.
//
// History is restricted to readings observed at or before in.Reading (the
// reading itself, if present by id, is ignored). When History holds a
// reading of the same kind observed after in.Reading, the reading is late:
// it is judged in time order and its findings are marked Late.
//
// Findings are ordered most urgent first (pack order among equals). Rules
// whose condition held but that are disarmed by hysteresis are listed in
// Result.Suppressed. Rules that could not be evaluated are in Result.Errors.
func (p *Pack) Evaluate(in Input) Result {
	rs := p.readings[in.Reading.Kind]
	if len(rs) == 0 {
		return Result{}
	}
	s := p.scratch()
	s.cur = in.Reading
	hist, late := s.history(&s.cur, in.History)
	c := ectx{cur: &s.cur, hist: hist, baseline: in.Baseline}
	var res Result
	for _, r := range rs {
		if !r.appliesTo(in.Programs) {
			continue
		}
		c.params = r.params.resolve(s.params[:0], in.Programs, in.Params[r.id])
		ok, err := r.matches(&c)
		if err != nil {
			res.Errors = append(res.Errors, EvalError{RuleID: r.id, Version: r.version, Err: err})
			continue
		}
		if !ok {
			continue
		}
		f := Finding{
			RuleID: r.id, Version: r.version, Urgency: r.urgency, Title: r.title, Late: late,
			Kind: r.kind, ObservationID: s.cur.ID, At: s.cur.ObservedAt,
		}
		if r.armed(&c, s.shifted[:0]) {
			if !late && !r.pagesAtOnce(&c) {
				f.RetakeBy = f.At.Add(r.retakeWithin)
			}
			res.Findings = append(res.Findings, f)
		} else {
			res.Suppressed = append(res.Suppressed, f)
		}
	}
	p.release(s)
	sortFindings(res.Findings)
	sortFindings(res.Suppressed)
	return res
}

// sortFindings orders findings most urgent first, stably.
func sortFindings(fs []Finding) {
	if len(fs) > 1 {
		slices.SortStableFunc(fs, func(a, b Finding) int { return cmp.Compare(b.Urgency.Rank(), a.Urgency.Rank()) })
	}
}
