package rules

import (
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// HistoryNeeds says which readings Input.History must hold to evaluate a
// reading of kind: for each kind the enabled rules look at, how far back from
// the reading. Kinds absent from the map are not needed. The engine uses it to
// load only what the rules read, with one query per batch.
func (p *Pack) HistoryNeeds(kind rpm.Kind) map[rpm.Kind]time.Duration {
	out := map[rpm.Kind]time.Duration{}
	for _, r := range p.readings[kind] {
		for k, d := range r.needs {
			out[k] = max(out[k], d)
		}
	}
	return out
}

// NeedsHistory reports whether Evaluate(in) can depend on in.History at all:
// some rule that applies reads a window (delta, aggregates), or some rule's
// condition already holds (or errs) on the reading alone — then consecutive
// and sustained counts, hysteresis and lateness must look at other readings.
// When it is false, Evaluate finds nothing whatever History holds, so a
// caller may skip loading it: a normal reading costs no history.
func (p *Pack) NeedsHistory(in Input) bool {
	rs := p.readings[in.Reading.Kind]
	if len(rs) == 0 {
		return false
	}
	s := p.scratch()
	defer p.release(s)
	s.cur = in.Reading
	c := ectx{cur: &s.cur, baseline: in.Baseline}
	for _, r := range rs {
		if !r.appliesTo(in.Programs) {
			continue
		}
		if r.cond.windowed() {
			return true
		}
		c.params = r.params.resolve(s.params[:0], in.Programs, in.Params[r.id])
		if ok, err := r.cond.test(&c); ok || err != nil {
			return true
		}
	}
	return false
}

// readsWindow reports whether the condition reads other readings of the
// window itself (an aggregate or a delta); unlike windowed, the baseline,
// a single figure, does not count.
func (k *cond) readsWindow() bool {
	if k == nil {
		return false
	}
	if k.delta != nil || (k.when != nil && len(k.when.aggs) > 0) {
		return true
	}
	for _, s := range slices.Concat(k.all, k.any) {
		if s.readsWindow() {
			return true
		}
	}
	return false
}

// windowed reports whether the condition reads other readings itself — an
// aggregate, a delta, or the patient's baseline, which is computed from the
// history.
func (k *cond) windowed() bool {
	if k == nil {
		return false
	}
	if k.delta != nil || (k.when != nil && len(k.when.aggs) > 0) || k.usesBaseline() {
		return true
	}
	for _, s := range k.all {
		if s.windowed() {
			return true
		}
	}
	for _, s := range k.any {
		if s.windowed() {
			return true
		}
	}
	return false
}
