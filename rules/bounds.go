package rules

import (
	"sort"
	"strconv"

	"github.com/tendhealth/tend/internal/text"
)

// bounds compiles a rule's declared param ranges and checks its defaults
// against them.
func (c *compiler) bounds(r *rule, bounds map[string][]float64, path, id string) {
	ps := c.ps
	n := len(r.params.names)
	r.params.bounded = make([]bool, n)
	r.params.lo = make([]float64, n)
	r.params.hi = make([]float64, n)
	keys := make([]string, 0, len(bounds))
	for k := range bounds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := join(path, k)
		slot, ok := r.params.index[k]
		if !ok {
			ps.add(p, id, "bounds of unknown param %q: declare its default in params", text.Truncate(k, 40))
			continue
		}
		b := bounds[k]
		if len(b) != 2 {
			ps.add(p, id, "must be [min, max]")
			continue
		}
		if !finite(b[0]) || !finite(b[1]) || b[0] > b[1] {
			ps.add(p, id, "must be [min, max] with finite numbers, min ≤ max")
			continue
		}
		r.params.bounded[slot] = true
		r.params.lo[slot], r.params.hi[slot] = b[0], b[1]
		if msg := r.params.outOfBounds(slot, r.params.defaults[slot]); msg != "" {
			ps.add(join("params", k), id, "the default %s", msg)
		}
	}
}

// outOfBounds returns why v is not a plausible value of the param in slot;
// "" when it is.
func (ps *paramSet) outOfBounds(slot int, v float64) string {
	if !finite(v) {
		return "must be a finite number"
	}
	if slot >= len(ps.bounded) || !ps.bounded[slot] {
		return ""
	}
	if v < ps.lo[slot] || v > ps.hi[slot] {
		return "must be between " + formatNum(ps.lo[slot]) + " and " + formatNum(ps.hi[slot])
	}
	return ""
}

func formatNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Bounds returns the declared plausible range of every bounded param of a
// rule: param → [min, max]. False for an unknown rule.
func (p *Pack) Bounds(ruleID string) (map[string][2]float64, bool) {
	r, ok := p.byID[ruleID]
	if !ok {
		return nil, false
	}
	out := map[string][2]float64{}
	for i, n := range r.params.names {
		if r.params.bounded[i] {
			out[n] = [2]float64{r.params.lo[i], r.params.hi[i]}
		}
	}
	return out, true
}

// CheckOverrides validates one rule's per-patient overrides (param → value),
// as sent in PUT /v1/patients/{id}/params. Each problem names its field as
// "<rule id>.<param>" (or the rule id alone for an unknown rule) with the
// reason: unknown rule, unknown param, not a finite number, or outside the
// param's declared bounds. Nil when every override is acceptable.
func (p *Pack) CheckOverrides(ruleID string, own map[string]float64) []Problem {
	r, ok := p.byID[ruleID]
	if !ok {
		return []Problem{{Field: text.Truncate(ruleID, 64), Reason: "unknown rule"}}
	}
	names := make([]string, 0, len(own))
	for n := range own {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Problem
	for _, n := range names {
		field := ruleID + "." + text.Truncate(n, 64)
		slot, ok := r.params.index[n]
		if !ok {
			reason := "unknown param"
			if len(r.params.names) > 0 {
				reason += "; the rule's params are " + joinStrings(r.params.names)
			} else {
				reason += "; the rule has no params"
			}
			out = append(out, Problem{Field: field, Reason: reason, Rule: ruleID})
			continue
		}
		if msg := r.params.outOfBounds(slot, own[n]); msg != "" {
			out = append(out, Problem{Field: field, Reason: msg, Rule: ruleID})
		}
	}
	return out
}
