package rules

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rpm"
)

// Pack is a compiled, immutable set of rules. It is safe for concurrent use.
type Pack struct {
	rules []*rule // in pack order
	byID  map[string]*rule
	// readings holds the enabled reading rules per kind, in pack order.
	readings map[rpm.Kind][]*rule
	symptoms []*rule // enabled symptom rules
	missing  []*rule // enabled missing-data rules
	events   []*rule // enabled event rules
	// lookback is the longest history any enabled reading rule needs; byKind
	// the same for the rules of one kind.
	lookback      time.Duration
	byKind        map[rpm.Kind]time.Duration
	eventLookback time.Duration
	rt            *runtime
}

// rule is one compiled rule.
type rule struct {
	src      Rule
	id       string
	title    string
	version  int
	urgency  rpm.Urgency
	typ      RuleType
	enabled  bool
	kind     rpm.Kind
	programs []string
	params   paramSet

	// Reading rules.
	cond        *cond
	consecutive int
	within      time.Duration
	sustained   time.Duration
	// shift moves each param towards firing by its re-arm margin (nil: no
	// margin); rearmWhen replaces it when set.
	shift     []float64
	rearmWhen *expr
	after     time.Duration
	// needs is how far back History must reach, per kind.
	needs map[rpm.Kind]time.Duration
	// apart is the spacing of the readings consecutive counts.
	apart time.Duration
	// retake: findings wait retakeWithin for a confirming reading unless
	// retakeNow holds (nil: never at once).
	retake       bool
	retakeWithin time.Duration
	retakeNow    *expr
	// retakeConfirm, when set, is what a retake must meet to confirm (nil:
	// the rule's condition).
	retakeConfirm *expr
	// usesBaseline is set when the condition reads baseline.
	usesBaseline bool

	missing time.Duration
	symptom rpm.SymptomCode
	// askKind, when set, makes a symptom rule ask for a reading of that
	// kind within askWithin instead of paging.
	askKind   rpm.Kind
	askWithin time.Duration
	event     *EventSpec
}

// cond is a compiled condition: every present part must hold.
type cond struct {
	when  *expr
	delta *deltaSpec
	all   []*cond
	any   []*cond
}

type deltaSpec struct {
	window     time.Duration
	rise, fall float64 // fixed thresholds (nested conditions)
	// riseSlot and fallSlot are the params holding the thresholds of a
	// top-level delta; -1 when fixed.
	riseSlot, fallSlot int
	field              field
}

// paramSet is a rule's params, by slot (sorted by name).
type paramSet struct {
	names    []string
	index    map[string]int
	defaults []float64
	// dirs says which way each param makes the rule fire more readily.
	dirs []int8
	// bounded says a param declares a plausible range [lo, hi].
	bounded  []bool
	lo, hi   []float64
	programs []programOverride // sorted by program
}

type programOverride struct {
	program string
	slots   []int
	vals    []float64
}

// index files the compiled rules by what they watch and computes lookbacks.
func (p *Pack) index() {
	for _, r := range p.rules {
		if !r.enabled {
			continue
		}
		switch r.typ {
		case ReadingRule:
			p.readings[r.kind] = append(p.readings[r.kind], r)
			for _, d := range r.needs {
				p.lookback = max(p.lookback, d)
				p.byKind[r.kind] = max(p.byKind[r.kind], d)
			}
		case SymptomRule:
			p.symptoms = append(p.symptoms, r)
		case MissingRule:
			p.missing = append(p.missing, r)
		case EventRule:
			p.events = append(p.events, r)
			p.eventLookback = max(p.eventLookback, 2*r.event.Window.Std())
		}
	}
}

// Rules returns a copy of the pack's rules, in pack order.
func (p *Pack) Rules() []Rule {
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.src.clone()
	}
	return out
}

// Rule returns a copy of the rule with the given id.
func (p *Pack) Rule(id string) (Rule, bool) {
	r, ok := p.byID[id]
	if !ok {
		return Rule{}, false
	}
	return r.src.clone(), true
}

// Lookback is how far back, from the oldest reading evaluated, Input.History
// must reach for every enabled rule: the longest of their windows, the
// readings consecutive and sustained look at, and the re-arm period. The
// engine loads a patient's history once per batch from the batch's oldest
// reading minus Lookback, up to now.
func (p *Pack) Lookback() time.Duration { return p.lookback }

// LookbackFor is Lookback restricted to the rules that evaluate readings of
// kind (their history may include other kinds they aggregate). 0 when no
// enabled rule watches kind.
func (p *Pack) LookbackFor(kind rpm.Kind) time.Duration { return p.byKind[kind] }

// EventLookback is how far back, from the newest event, EventInput.History
// must reach.
func (p *Pack) EventLookback() time.Duration { return p.eventLookback }

// Kinds returns the vital kinds that enabled reading rules watch.
func (p *Pack) Kinds() []rpm.Kind {
	out := make([]rpm.Kind, 0, len(p.readings))
	for k := range p.readings {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// appliesTo reports whether the rule is for a patient in programs.
func (r *rule) appliesTo(programs []string) bool {
	if len(r.programs) == 0 {
		return true
	}
	for _, want := range r.programs {
		for _, have := range programs {
			if want == have {
				return true
			}
		}
	}
	return false
}

// resolve merges the rule's params for a patient into dst (resized to the
// rule's params): defaults, then the overrides of the patient's programs,
// then the patient's own. When two of the patient's programs override the
// same param, the value that fires more readily wins (the higher minimum,
// the lower maximum); when the direction is unknown, the program later in
// alphabetical order wins.
func (ps *paramSet) resolve(dst []float64, programs []string, own map[string]float64) []float64 {
	dst = append(dst[:0], ps.defaults...)
	if len(ps.programs) > 0 && len(programs) > 0 {
		var set uint64
		for i := range ps.programs {
			o := &ps.programs[i]
			if !slices.Contains(programs, o.program) {
				continue
			}
			for k, s := range o.slots {
				v := o.vals[k]
				if set&(1<<s) != 0 {
					switch ps.dirs[s] {
					case dirUp:
						v = max(v, dst[s])
					case dirDown:
						v = min(v, dst[s])
					}
				}
				dst[s] = v
				set |= 1 << s
			}
		}
	}
	for name, v := range own {
		if s, ok := ps.index[name]; ok && finite(v) {
			dst[s] = v
		}
	}
	return dst
}

// EffectiveParams returns the params a rule uses for a patient in programs
// with the patient's own overrides (nil for none): rule defaults, overridden
// by the patient's programs, overridden by the patient. Unknown override
// names are an error.
func (p *Pack) EffectiveParams(ruleID string, programs []string, own map[string]float64) (map[string]float64, error) {
	r, ok := p.byID[ruleID]
	if !ok {
		return nil, fmt.Errorf("unknown rule %q", text.Truncate(ruleID, 64))
	}
	for name := range own {
		if _, ok := r.params.index[name]; !ok {
			return nil, fmt.Errorf("rule %s has no param %q", ruleID, text.Truncate(name, 64))
		}
	}
	vals := r.params.resolve(nil, programs, own)
	out := make(map[string]float64, len(vals))
	for i, n := range r.params.names {
		out[n] = vals[i]
	}
	return out, nil
}

// CheckParams validates a patient's overrides (rule id → param → value), as
// sent to PUT /v1/patients/{id}/params, with CheckOverrides for each rule.
// Fields are "<rule id>.<param>" (the rule id alone for an unknown rule).
func (p *Pack) CheckParams(overrides map[string]map[string]float64) []Problem {
	var out []Problem
	ids := make([]string, 0, len(overrides))
	for id := range overrides {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		out = append(out, p.CheckOverrides(id, overrides[id])...)
	}
	return out
}
