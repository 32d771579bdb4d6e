package rules

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rpm"
)

// Limits of one rule.
const (
	maxParams      = 32
	maxConsecutive = 50
	maxDepth       = 8
	maxTitle       = 200
	maxText        = 2000
	maxEventCount  = 1000
	// defaultWithin is how old the readings counted by consecutive may be.
	defaultWithin = 24 * time.Hour
	// minAfter is the shortest default re-arm period.
	minAfter = 12 * time.Hour
	// DefaultRetakeWithin is how long a finding waits for a retake by
	// default.
	DefaultRetakeWithin = 10 * time.Minute
	// DefaultAskWithin is how long a symptom rule's request to measure
	// stands by default.
	DefaultAskWithin = 30 * time.Minute
	// maxRetakeWithin bounds Retake.Within: a retake is a re-measurement,
	// not a new episode.
	maxRetakeWithin = 2 * time.Hour
	// deltaTolerance absorbs floating-point noise when a rise or fall is
	// compared with its threshold (81.3-79.9 is 1.3999999999999915).
	deltaTolerance = 1e-9
)

var (
	idPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	paramPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)
)

// Compile validates rules and compiles their expressions. Problems are
// reported as a *LoadError (without line numbers: use Load or Check on the
// source text for those).
func Compile(rules []Rule) (*Pack, error) {
	return compile(rules, &problems{})
}

type compiler struct {
	env *cel.Env
	ps  *problems
	rt  *runtime
}

func compile(rules []Rule, ps *problems) (*Pack, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("rules: CEL environment: %w", err)
	}
	c := &compiler{env: env, ps: ps, rt: &runtime{}}
	p := &Pack{
		byID:     make(map[string]*rule, len(rules)),
		readings: make(map[rpm.Kind][]*rule),
		byKind:   make(map[rpm.Kind]time.Duration),
		rt:       c.rt,
	}
	single := ps.single || (ps.lines == nil && len(rules) == 1)
	firstAt := map[string]string{}
	for i := range rules {
		path := index("", i)
		if single {
			path = ""
		}
		src := rules[i].clone()
		if src.ID != "" {
			if prev, dup := firstAt[src.ID]; dup {
				where := prev
				if l := ps.line(prev); l > 0 {
					where = fmt.Sprintf("line %d", l)
				}
				ps.add(join(path, "id"), text.Truncate(src.ID, 64), "duplicate rule id %q (first defined at %s)", text.Truncate(src.ID, 64), where)
			} else {
				firstAt[src.ID] = path
			}
		}
		r := c.rule(src, path)
		if r == nil {
			continue
		}
		p.rules = append(p.rules, r)
		if _, dup := p.byID[r.id]; !dup {
			p.byID[r.id] = r
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	p.index()
	return p, nil
}

// rule validates and compiles one rule; nil when it has problems. Problems
// are recorded in the order a reader meets the fields: the rule's header,
// what it watches, the fields its type allows, params, conditions, retake,
// bounds, program overrides and re-arm.
func (c *compiler) rule(src Rule, path string) *rule {
	before := len(c.ps.list)
	id := c.checkHeader(&src, path)
	c.checkWatch(&src, path, id)
	typ := src.Type()
	cond := src.condition()
	c.checkForm(&src, typ, cond, path, id)

	names, defaults := c.params(&src, typ, path, id)
	r := newRule(&src, id, typ, names, defaults)
	x := exprContext{env: c.env, rt: c.rt, ps: c.ps, ruleID: id, kind: src.Kind, params: r.params.index, names: names}
	c.conditions(r, cond, path, x)
	c.bounds(r, src.Bounds, join(path, "bounds"), id)
	c.programParams(r, src.ProgramParams, path, id)
	c.programBounds(r, path, id)
	if typ == ReadingRule {
		c.rearm(r, src.Rearm, join(path, "rearm"), x)
	}
	if len(c.ps.list) > before {
		return nil
	}
	r.lookbacks()
	return r
}

// params gathers a rule's params: the declared defaults plus the thresholds
// of its declarative forms (delta.rise and delta.fall, min_severity,
// event.count). It returns their names, sorted, and default values.
func (c *compiler) params(src *Rule, typ RuleType, path, id string) ([]string, map[string]float64) {
	ps := c.ps
	params := map[string]float64{}
	names := make([]string, 0, len(src.Params)+2)
	for name, v := range src.Params {
		p := join(path, "params."+name)
		if !paramPattern.MatchString(name) {
			ps.add(p, id, "param names are lower-case identifiers (letters, digits, _)")
			continue
		}
		if !finite(v) {
			ps.add(p, id, "must be a finite number")
		}
		params[name] = v
		names = append(names, name)
	}
	auto := func(name, from string, v float64) {
		if _, clash := params[name]; clash {
			ps.add(join(path, "params."+name), id, "param %s is set by %s; remove it from params", name, from)
			return
		}
		params[name] = v
		names = append(names, name)
	}
	switch typ {
	case ReadingRule:
		if d := src.Delta; d != nil {
			if d.Rise > 0 {
				auto("rise", "delta.rise", d.Rise)
			}
			if d.Fall > 0 {
				auto("fall", "delta.fall", d.Fall)
			}
		}
	case SymptomRule:
		auto("min_severity", "min_severity", float64(max(src.MinSeverity, 1)))
	case EventRule:
		auto("count", "event.count", float64(src.Event.Count))
	}
	if len(names) > maxParams {
		ps.add(join(path, "params"), id, "a rule has at most %d params", maxParams)
	}
	sort.Strings(names)
	return names, params
}

// newRule builds the compiled rule from its source and its params (names
// sorted, defaults by name); conditions, bounds and overrides come later.
func newRule(src *Rule, id string, typ RuleType, names []string, defaults map[string]float64) *rule {
	r := &rule{
		src: *src, id: id, title: src.Title, version: max(src.Version, 1), urgency: src.Urgency,
		typ: typ, enabled: src.IsEnabled(), kind: src.Kind, programs: src.Programs,
		symptom: src.Symptom, event: src.Event, consecutive: src.Consecutive, within: src.Within.Std(),
		sustained: src.Sustained.Std(), missing: src.Missing.Std(), apart: src.Apart.Std(),
	}
	if r.consecutive >= 2 && r.within == 0 {
		r.within = defaultWithin
	}
	if a := src.Ask; a != nil && typ == SymptomRule {
		r.askKind, r.askWithin = a.Kind, a.Within.Std()
		if r.askWithin == 0 {
			r.askWithin = DefaultAskWithin
		}
	}
	slots := make(map[string]int, len(names))
	for i, n := range names {
		slots[n] = i
	}
	r.params = paramSet{names: names, index: slots, defaults: make([]float64, len(names)), dirs: make([]int8, len(names))}
	for i, n := range names {
		r.params.defaults[i] = defaults[n]
	}
	return r
}

// conditions compiles a reading rule's condition and retake, and records
// the direction in which each param makes the rule stricter.
func (c *compiler) conditions(r *rule, cond Condition, path string, x exprContext) {
	dirs := map[string]int8{}
	if r.typ == ReadingRule && !cond.empty() {
		r.cond = c.cond(cond, path, x, 0, true, dirs)
	}
	switch r.typ {
	case SymptomRule:
		dirs["min_severity"] = dirDown
	case EventRule:
		dirs["count"] = dirDown
	}
	for i, n := range r.params.names {
		r.params.dirs[i] = dirs[n]
	}
	if r.typ == ReadingRule && r.cond != nil {
		r.usesBaseline = r.cond.usesBaseline()
		c.retake(r, r.src.Retake, join(path, "retake"), x)
	}
}

// programParams compiles the per-program overrides of a rule's params, in
// program order; each overrides params the rule declares.
func (c *compiler) programParams(r *rule, overrides map[string]map[string]float64, path, id string) {
	progs := make([]string, 0, len(overrides))
	for prog := range overrides {
		progs = append(progs, prog)
	}
	sort.Strings(progs)
	for _, prog := range progs {
		pp := join(path, "program_params."+prog)
		if !rpm.ValidProgram(prog) {
			c.ps.add(pp, id, "unknown program %q: expected one of %s", text.Truncate(prog, 40), joinStrings(rpm.Programs()))
			continue
		}
		r.params.programs = append(r.params.programs, c.programOverride(r, prog, overrides[prog], pp, id))
	}
}

// programOverride compiles one program's param values, in param-name order.
func (c *compiler) programOverride(r *rule, prog string, vals map[string]float64, path, id string) programOverride {
	o := programOverride{program: prog}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		slot, ok := r.params.index[k]
		if !ok {
			c.ps.add(join(path, k), id, "override of unknown param %q: declare its default in params", text.Truncate(k, 40))
			continue
		}
		if !finite(vals[k]) {
			c.ps.add(join(path, k), id, "must be a finite number")
			continue
		}
		o.slots = append(o.slots, slot)
		o.vals = append(o.vals, vals[k])
	}
	return o
}

// programBounds checks every program override against its param's bounds.
func (c *compiler) programBounds(r *rule, path, id string) {
	for _, o := range r.params.programs {
		for k, slot := range o.slots {
			if msg := r.params.outOfBounds(slot, o.vals[k]); msg != "" {
				c.ps.add(join(join(path, "program_params."+o.program), r.params.names[slot]), id, "%s", msg)
			}
		}
	}
}

// cond compiles a condition; nil when it has problems.
func (c *compiler) cond(k Condition, path string, x exprContext, depth int, top bool, dirs map[string]int8) *cond {
	ps := c.ps
	if depth > maxDepth {
		ps.add(path, x.ruleID, "conditions nest at most %d levels deep", maxDepth)
		return nil
	}
	if k.empty() {
		ps.add(path, x.ruleID, "a condition needs when, delta, all or any")
		return nil
	}
	out := &cond{}
	ok := true
	if k.When != "" {
		wx := x
		wx.path = join(path, "when")
		wx.dirs = dirs
		if out.when = compileExpr(wx, k.When); out.when == nil {
			ok = false
		}
	}
	if k.Delta != nil {
		out.delta = c.delta(k.Delta, join(path, "delta"), x, top, dirs)
		ok = ok && out.delta != nil
	}
	for _, list := range []struct {
		name  string
		conds []Condition
		dst   *[]*cond
	}{{"all", k.All, &out.all}, {"any", k.Any, &out.any}} {
		if list.conds != nil && !c.conds(list.conds, join(path, list.name), x, depth, dirs, list.dst) {
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return out
}

// conds compiles the conditions of an all or any list into dst; false when
// any has problems.
func (c *compiler) conds(list []Condition, path string, x exprContext, depth int, dirs map[string]int8, dst *[]*cond) bool {
	ok := true
	if len(list) == 0 {
		c.ps.add(path, x.ruleID, "must list at least one condition")
		ok = false
	}
	for i, sub := range list {
		s := c.cond(sub, index(path, i), x, depth+1, false, dirs)
		if s == nil {
			ok = false
			continue
		}
		*dst = append(*dst, s)
	}
	return ok
}

// delta compiles a delta condition at path; nil when it has problems. At
// the top of a rule its rise and fall are the params of the same names,
// which make the rule stricter as they go down.
func (c *compiler) delta(d *Delta, path string, x exprContext, top bool, dirs map[string]int8) *deltaSpec {
	ps := c.ps
	ok := true
	ds := &deltaSpec{window: d.Window.Std(), rise: d.Rise, fall: d.Fall, riseSlot: -1, fallSlot: -1}
	if d.Window <= 0 {
		ps.add(join(path, "window"), x.ruleID, `is required: a positive duration such as "24h"`)
		ok = false
	}
	if d.Rise < 0 || d.Fall < 0 {
		ps.add(path, x.ruleID, "rise and fall are sizes of change: give them as positive numbers")
		ok = false
	} else if d.Rise == 0 && d.Fall == 0 {
		ps.add(path, x.ruleID, "needs rise or fall (or both)")
		ok = false
	}
	switch {
	case d.Series == "" || d.Series == "value":
	case (d.Series == "systolic" || d.Series == "diastolic") && x.kind == rpm.BloodPressure:
		if d.Series == "diastolic" {
			ds.field = fieldDiastolic
		} else {
			ds.field = fieldSystolic
		}
	default:
		ps.add(join(path, "series"), x.ruleID, "series is systolic or diastolic, for blood_pressure rules only")
		ok = false
	}
	if top {
		if d.Rise > 0 {
			ds.riseSlot = x.params["rise"]
			dirs["rise"] = dirDown
		}
		if d.Fall > 0 {
			ds.fallSlot = x.params["fall"]
			dirs["fall"] = dirDown
		}
	}
	if !ok {
		return nil
	}
	return ds
}

// rearm compiles the hysteresis of a reading rule.
func (c *compiler) rearm(r *rule, re *Rearm, path string, x exprContext) {
	ps := c.ps
	if re == nil {
		re = &Rearm{}
	}
	if re.After < 0 {
		ps.add(join(path, "after"), r.id, "must be positive")
	}
	r.after = re.After.Std()
	if re.When != "" {
		if re.Value != 0 || re.Params != nil {
			ps.add(join(path, "when"), r.id, "rearm.when replaces the margins: remove rearm.value and rearm.params")
		}
		wx := x
		wx.path = join(path, "when")
		r.rearmWhen = compileExpr(wx, re.When)
		return
	}
	if re.Value < 0 {
		ps.add(join(path, "value"), r.id, "must not be negative")
	}
	shift := make([]float64, len(r.params.names))
	moved := false
	if re.Value > 0 {
		known := 0
		for i, n := range r.params.names {
			switch r.params.dirs[i] {
			case dirUp, dirDown:
				shift[i] = float64(r.params.dirs[i]) * re.Value
				known++
			case dirMixed:
				if _, own := re.Params[n]; !own {
					ps.add(join(path, "value"), r.id, "cannot tell which way params.%s moves the threshold: give rearm.params without it, or rearm.when", n)
				}
			}
		}
		if known == 0 {
			ps.add(join(path, "value"), r.id, "the condition has no threshold param to move by the margin: put its thresholds in params, or use rearm.when")
		}
		moved = known > 0
	}
	keys := make([]string, 0, len(re.Params))
	for k := range re.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := join(join(path, "params"), k)
		slot, ok := r.params.index[k]
		if !ok {
			ps.add(p, r.id, "unknown param %q", text.Truncate(k, 40))
			continue
		}
		m := re.Params[k]
		if m < 0 || !finite(m) {
			ps.add(p, r.id, "must be a non-negative number")
			continue
		}
		d := r.params.dirs[slot]
		if d != dirUp && d != dirDown {
			ps.add(p, r.id, "cannot tell which way params.%s moves the threshold: use rearm.when", k)
			continue
		}
		shift[slot] = float64(d) * m
		moved = true
	}
	if moved {
		r.shift = shift
	}
}

// lookbacks computes how much history the rule needs, per kind.
func (r *rule) lookbacks() {
	if r.typ != ReadingRule {
		return
	}
	w := map[rpm.Kind]time.Duration{}
	r.cond.windows(r.kind, w)
	if r.rearmWhen != nil {
		for _, a := range r.rearmWhen.aggs {
			w[a.series.kind] = max(w[a.series.kind], a.window)
		}
	}
	var span time.Duration // readings of the rule's kind looked at besides this one
	switch {
	case r.consecutive >= 2:
		span = r.within
	case r.sustained > 0:
		span = 2 * r.sustained
	}
	var widest time.Duration
	for _, d := range w {
		widest = max(widest, d)
	}
	if r.after == 0 {
		r.after = max(minAfter, span+widest)
	}
	r.needs = map[rpm.Kind]time.Duration{r.kind: r.after + span}
	if r.usesBaseline {
		// The baseline of a reading up to r.after back is judged too.
		r.needs[r.kind] = max(r.needs[r.kind], r.after+span+DefaultBaselineWindow)
	}
	for k, d := range w {
		r.needs[k] = max(r.needs[k], r.after+span+d)
	}
}

func (k *cond) windows(kind rpm.Kind, w map[rpm.Kind]time.Duration) {
	if k == nil {
		return
	}
	if k.when != nil {
		for _, a := range k.when.aggs {
			w[a.series.kind] = max(w[a.series.kind], a.window)
		}
	}
	if k.delta != nil {
		w[kind] = max(w[kind], k.delta.window)
	}
	for _, s := range k.all {
		s.windows(kind, w)
	}
	for _, s := range k.any {
		s.windows(kind, w)
	}
}

// defaultWithinIfZero returns the within consecutive uses when none is
// given.
func defaultWithinIfZero(d Duration) time.Duration {
	if d == 0 {
		return defaultWithin
	}
	return d.Std()
}

func joinKinds() string {
	ks := rpm.Kinds()
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return joinStrings(s)
}

func joinStrings(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
