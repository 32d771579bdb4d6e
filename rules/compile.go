package rules

import (
	"fmt"
	"regexp"
	"slices"
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

// checkHeader checks the fields every rule has (id, title, description,
// source, version, urgency, programs) and returns the id to name the rule by
// in problems: empty when the id is missing or malformed.
func (c *compiler) checkHeader(src *Rule, path string) string {
	ps := c.ps
	f := func(name string) string { return join(path, name) }
	id := src.ID
	switch {
	case src.ID == "":
		ps.add(f("id"), "", "is required")
	case !idPattern.MatchString(src.ID):
		ps.add(f("id"), "", "must be 1–64 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit")
		id = ""
	}
	switch {
	case src.Title == "":
		ps.add(f("title"), id, "is required")
	case len(src.Title) > maxTitle:
		ps.add(f("title"), id, "is longer than %d characters", maxTitle)
	}
	if len(src.Description) > maxText {
		ps.add(f("description"), id, "is longer than %d characters", maxText)
	}
	if len(src.Source) > maxText {
		ps.add(f("source"), id, "is longer than %d characters", maxText)
	}
	if src.Version < 0 {
		ps.add(f("version"), id, "must not be negative")
	}
	switch {
	case src.Urgency == "":
		ps.add(f("urgency"), id, "is required: critical, high, medium or low")
	case !src.Urgency.Valid():
		ps.add(f("urgency"), id, "unknown urgency %q: expected critical, high, medium or low", text.Truncate(string(src.Urgency), 40))
	}
	for i, prog := range src.Programs {
		if !rpm.ValidProgram(prog) {
			ps.add(index(f("programs"), i), id, "unknown program %q: expected one of %s", text.Truncate(prog, 40), joinStrings(rpm.Programs()))
		} else if slices.Index(src.Programs, prog) < i {
			ps.add(index(f("programs"), i), id, "program %q is listed twice", prog)
		}
	}
	return id
}

// checkWatch checks that the rule watches exactly one thing (a vital kind, a
// symptom or an event) and that a vital kind is known.
func (c *compiler) checkWatch(src *Rule, path, id string) {
	ps := c.ps
	watches := 0
	for _, set := range []bool{src.Kind != "", src.Symptom != "", src.Event != nil} {
		if set {
			watches++
		}
	}
	switch {
	case watches == 0:
		ps.add(path, id, "a rule needs one of kind (a vital sign), symptom or event")
	case watches > 1:
		ps.add(path, id, "a rule watches one thing: give only one of kind, symptom and event")
	}
	if src.Kind != "" && !src.Kind.Valid() {
		ps.add(join(path, "kind"), id, "unknown vital kind %q: expected one of %s", text.Truncate(string(src.Kind), 40), joinKinds())
	}
}

// setField is a rule field and whether the source gives it, for the checks
// of fields a rule type does not allow.
type setField struct {
	name string
	set  bool
}

// checkForm checks that the durations are not negative and that the rule
// gives the fields its type needs and none that its type ignores.
func (c *compiler) checkForm(src *Rule, typ RuleType, cond Condition, path, id string) {
	for _, d := range []struct {
		name string
		v    Duration
	}{{"within", src.Within}, {"sustained", src.Sustained}, {"missing", src.Missing}} {
		if d.v < 0 {
			c.ps.add(join(path, d.name), id, "must be positive")
		}
	}
	switch typ {
	case SymptomRule:
		c.checkSymptomForm(src, path, id)
	case EventRule:
		c.checkEventForm(src, path, id)
	case MissingRule:
		c.forbid(path, id, "missing-data rules", notForEvent(src))
	case ReadingRule:
		c.checkReadingForm(src, cond, path, id)
	}
}

// forbid reports each field of fields that the source gives, as one that
// does not apply to rules of what ("symptom rules").
func (c *compiler) forbid(path, id, what string, fields []setField) {
	for _, x := range fields {
		c.rejectIf(path, id, x.name, x.set, x.name+" does not apply to "+what)
	}
}

// rejectIf reports field name of the rule at path, with why, when set.
func (c *compiler) rejectIf(path, id, name string, set bool, why string) {
	if set {
		c.ps.add(join(path, name), id, "%s", why)
	}
}

// notForEvent lists the fields that event and missing-data rules ignore.
func notForEvent(src *Rule) []setField {
	return []setField{{"when", src.When != ""}, {"delta", src.Delta != nil}, {"all", src.All != nil}, {"any", src.Any != nil},
		{"consecutive", src.Consecutive != 0}, {"within", src.Within != 0}, {"sustained", src.Sustained != 0},
		{"rearm", src.Rearm != nil}, {"min_severity", src.MinSeverity != 0}, {"apart", src.Apart != 0}, {"retake", src.Retake != nil},
		{"ask", src.Ask != nil}}
}

// checkSymptomForm checks a symptom rule: a known symptom, a severity
// threshold in range, and none of the reading-rule fields.
func (c *compiler) checkSymptomForm(src *Rule, path, id string) {
	if !src.Symptom.Valid() {
		c.ps.add(join(path, "symptom"), id, "unknown symptom %q", text.Truncate(string(src.Symptom), 40))
	}
	c.rejectIf(path, id, "when", src.When != "", "when cannot be combined with symptom: a symptom rule fires on the reported severity (use min_severity)")
	c.forbid(path, id, "symptom rules", []setField{{"delta", src.Delta != nil}, {"all", src.All != nil}, {"any", src.Any != nil},
		{"consecutive", src.Consecutive != 0}, {"within", src.Within != 0}, {"sustained", src.Sustained != 0},
		{"missing", src.Missing != 0}, {"rearm", src.Rearm != nil}, {"apart", src.Apart != 0}, {"retake", src.Retake != nil}})
	if src.MinSeverity < 0 || src.MinSeverity > rpm.MaxSeverity {
		c.ps.add(join(path, "min_severity"), id, "must be between 1 and 10")
	}
	if a := src.Ask; a != nil {
		if !a.Kind.Valid() {
			c.ps.add(join(path, "ask.kind"), id, "unknown vital kind %q: expected one of %s", text.Truncate(string(a.Kind), 40), joinKinds())
		}
		if a.Within < 0 || a.Within.Std() > maxRetakeWithin {
			c.ps.add(join(path, "ask.within"), id, "must be a positive duration of at most %s", Duration(maxRetakeWithin))
		}
	}
}

// checkEventForm checks an event rule: its event's type, count, window and
// grouping, and none of the reading-rule fields.
func (c *compiler) checkEventForm(src *Rule, path, id string) {
	ps := c.ps
	e := src.Event
	switch {
	case e.Type == "":
		ps.add(join(path, "event.type"), id, "is required: missed_dose or missed_measurement")
	case !e.Type.Valid():
		ps.add(join(path, "event.type"), id, "unknown event type %q: expected missed_dose or missed_measurement", text.Truncate(string(e.Type), 40))
	}
	if e.Count < 1 || e.Count > maxEventCount {
		ps.add(join(path, "event.count"), id, "must be between 1 and %d", maxEventCount)
	}
	if e.Window <= 0 {
		ps.add(join(path, "event.window"), id, `is required: a positive duration such as "72h"`)
	}
	if e.Per != "" && e.Per != PerMedication && e.Per != PerKind {
		ps.add(join(path, "event.per"), id, "unknown grouping %q: expected medication or kind", text.Truncate(e.Per, 40))
	}
	c.forbid(path, id, "event rules", notForEvent(src))
}

// checkReadingForm checks a reading rule: a condition, and consecutive,
// within, sustained and apart in range and consistent with each other.
func (c *compiler) checkReadingForm(src *Rule, cond Condition, path, id string) {
	ps := c.ps
	if cond.empty() {
		ps.add(path, id, "a rule on kind %s needs a condition: when, delta, all or any (or missing for a missing-data rule)", text.Truncate(string(src.Kind), 40))
	}
	c.rejectIf(path, id, "min_severity", src.MinSeverity != 0, "min_severity only applies to symptom rules")
	c.rejectIf(path, id, "ask", src.Ask != nil, "ask only applies to symptom rules (a reading rule asks with retake)")
	if src.Consecutive < 0 || src.Consecutive > maxConsecutive {
		ps.add(join(path, "consecutive"), id, "must be between 1 and %d", maxConsecutive)
	}
	c.rejectIf(path, id, "within", src.Within != 0 && src.Consecutive < 2, "within only applies to consecutive (2 or more)")
	c.rejectIf(path, id, "sustained", src.Sustained != 0 && src.Consecutive != 0, "give either consecutive or sustained, not both")
	c.rejectIf(path, id, "apart", src.Apart != 0 && src.Consecutive < 2, "apart only applies to consecutive (2 or more)")
	if src.Apart < 0 {
		ps.add(join(path, "apart"), id, "must be positive")
	} else if src.Apart > 0 && src.Consecutive >= 2 && src.Apart.Std() >= max(src.Within.Std(), defaultWithinIfZero(src.Within)) {
		ps.add(join(path, "apart"), id, "must be shorter than within")
	}
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
	if d := k.Delta; d != nil {
		dp := join(path, "delta")
		ds := &deltaSpec{window: d.Window.Std(), rise: d.Rise, fall: d.Fall, riseSlot: -1, fallSlot: -1}
		switch {
		case d.Window <= 0:
			ps.add(join(dp, "window"), x.ruleID, `is required: a positive duration such as "24h"`)
			ok = false
		}
		if d.Rise < 0 || d.Fall < 0 {
			ps.add(dp, x.ruleID, "rise and fall are sizes of change: give them as positive numbers")
			ok = false
		} else if d.Rise == 0 && d.Fall == 0 {
			ps.add(dp, x.ruleID, "needs rise or fall (or both)")
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
			ps.add(join(dp, "series"), x.ruleID, "series is systolic or diastolic, for blood_pressure rules only")
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
		out.delta = ds
	}
	for _, list := range []struct {
		name  string
		conds []Condition
		dst   *[]*cond
	}{{"all", k.All, &out.all}, {"any", k.Any, &out.any}} {
		if list.conds == nil {
			continue
		}
		lp := join(path, list.name)
		if len(list.conds) == 0 {
			ps.add(lp, x.ruleID, "must list at least one condition")
			ok = false
		}
		for i, sub := range list.conds {
			s := c.cond(sub, index(lp, i), x, depth+1, false, dirs)
			if s == nil {
				ok = false
				continue
			}
			*list.dst = append(*list.dst, s)
		}
	}
	if !ok {
		return nil
	}
	return out
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
