package rules

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"cel.dev/cel-go/cel"

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
				ps.add(join(path, "id"), truncate(src.ID, 64), "duplicate rule id %q (first defined at %s)", truncate(src.ID, 64), where)
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

// rule validates and compiles one rule; nil when it has problems.
func (c *compiler) rule(src Rule, path string) *rule {
	ps := c.ps
	before := len(ps.list)
	id := src.ID
	f := func(name string) string { return join(path, name) }

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
		ps.add(f("urgency"), id, "unknown urgency %q: expected critical, high, medium or low", truncate(string(src.Urgency), 40))
	}
	for i, prog := range src.Programs {
		if !rpm.ValidProgram(prog) {
			ps.add(index(f("programs"), i), id, "unknown program %q: expected one of %s", truncate(prog, 40), joinStrings(rpm.Programs()))
		} else if slices.Index(src.Programs, prog) < i {
			ps.add(index(f("programs"), i), id, "program %q is listed twice", prog)
		}
	}

	// What the rule watches.
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
		ps.add(f("kind"), id, "unknown vital kind %q: expected one of %s", truncate(string(src.Kind), 40), joinKinds())
	}
	typ := src.Type()
	not := func(name string, set bool, why string) {
		if set {
			ps.add(f(name), id, "%s", why)
		}
	}
	cond := src.condition()
	for _, d := range []struct {
		name string
		v    Duration
	}{{"within", src.Within}, {"sustained", src.Sustained}, {"missing", src.Missing}} {
		if d.v < 0 {
			ps.add(f(d.name), id, "must be positive")
		}
	}
	switch typ {
	case SymptomRule:
		if !src.Symptom.Valid() {
			ps.add(f("symptom"), id, "unknown symptom %q", truncate(string(src.Symptom), 40))
		}
		not("when", src.When != "", "when cannot be combined with symptom: a symptom rule fires on the reported severity (use min_severity)")
		for _, x := range []struct {
			name string
			set  bool
		}{{"delta", src.Delta != nil}, {"all", src.All != nil}, {"any", src.Any != nil}, {"consecutive", src.Consecutive != 0},
			{"within", src.Within != 0}, {"sustained", src.Sustained != 0}, {"missing", src.Missing != 0}, {"rearm", src.Rearm != nil},
			{"apart", src.Apart != 0}, {"retake", src.Retake != nil}} {
			not(x.name, x.set, x.name+" does not apply to symptom rules")
		}
		if src.MinSeverity < 0 || src.MinSeverity > rpm.MaxSeverity {
			ps.add(f("min_severity"), id, "must be between 1 and 10")
		}
	case EventRule:
		e := src.Event
		switch {
		case e.Type == "":
			ps.add(f("event.type"), id, "is required: missed_dose or missed_measurement")
		case !e.Type.Valid():
			ps.add(f("event.type"), id, "unknown event type %q: expected missed_dose or missed_measurement", truncate(string(e.Type), 40))
		}
		if e.Count < 1 || e.Count > maxEventCount {
			ps.add(f("event.count"), id, "must be between 1 and %d", maxEventCount)
		}
		if e.Window <= 0 {
			ps.add(f("event.window"), id, `is required: a positive duration such as "72h"`)
		}
		if e.Per != "" && e.Per != PerMedication && e.Per != PerKind {
			ps.add(f("event.per"), id, "unknown grouping %q: expected medication or kind", truncate(e.Per, 40))
		}
		for _, x := range []struct {
			name string
			set  bool
		}{{"when", src.When != ""}, {"delta", src.Delta != nil}, {"all", src.All != nil}, {"any", src.Any != nil},
			{"consecutive", src.Consecutive != 0}, {"within", src.Within != 0}, {"sustained", src.Sustained != 0},
			{"rearm", src.Rearm != nil}, {"min_severity", src.MinSeverity != 0}, {"apart", src.Apart != 0}, {"retake", src.Retake != nil}} {
			not(x.name, x.set, x.name+" does not apply to event rules")
		}
	case MissingRule:
		for _, x := range []struct {
			name string
			set  bool
		}{{"when", src.When != ""}, {"delta", src.Delta != nil}, {"all", src.All != nil}, {"any", src.Any != nil},
			{"consecutive", src.Consecutive != 0}, {"within", src.Within != 0}, {"sustained", src.Sustained != 0},
			{"rearm", src.Rearm != nil}, {"min_severity", src.MinSeverity != 0}, {"apart", src.Apart != 0}, {"retake", src.Retake != nil}} {
			not(x.name, x.set, x.name+" does not apply to missing-data rules")
		}
	case ReadingRule:
		if cond.empty() {
			ps.add(path, id, "a rule on kind %s needs a condition: when, delta, all or any (or missing for a missing-data rule)", truncate(string(src.Kind), 40))
		}
		not("min_severity", src.MinSeverity != 0, "min_severity only applies to symptom rules")
		if src.Consecutive < 0 || src.Consecutive > maxConsecutive {
			ps.add(f("consecutive"), id, "must be between 1 and %d", maxConsecutive)
		}
		not("within", src.Within != 0 && src.Consecutive < 2, "within only applies to consecutive (2 or more)")
		not("sustained", src.Sustained != 0 && src.Consecutive != 0, "give either consecutive or sustained, not both")
		not("apart", src.Apart != 0 && src.Consecutive < 2, "apart only applies to consecutive (2 or more)")
		if src.Apart < 0 {
			ps.add(f("apart"), id, "must be positive")
		} else if src.Apart > 0 && src.Consecutive >= 2 && src.Apart.Std() >= max(src.Within.Std(), defaultWithinIfZero(src.Within)) {
			ps.add(f("apart"), id, "must be shorter than within")
		}
	}

	// Params: the declared defaults plus the thresholds of declarative forms.
	params := map[string]float64{}
	names := make([]string, 0, len(src.Params)+2)
	for name, v := range src.Params {
		p := f("params." + name)
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
			ps.add(f("params."+name), id, "param %s is set by %s; remove it from params", name, from)
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
		ps.add(f("params"), id, "a rule has at most %d params", maxParams)
	}
	sort.Strings(names)
	slots := make(map[string]int, len(names))
	for i, n := range names {
		slots[n] = i
	}

	r := &rule{
		src: src, id: id, title: src.Title, version: max(src.Version, 1), urgency: src.Urgency,
		typ: typ, enabled: src.IsEnabled(), kind: src.Kind, programs: src.Programs,
		symptom: src.Symptom, event: src.Event, consecutive: src.Consecutive, within: src.Within.Std(),
		sustained: src.Sustained.Std(), missing: src.Missing.Std(), apart: src.Apart.Std(),
	}
	if r.consecutive >= 2 && r.within == 0 {
		r.within = defaultWithin
	}
	r.params = paramSet{names: names, index: slots, defaults: make([]float64, len(names)), dirs: make([]int8, len(names))}
	for i, n := range names {
		r.params.defaults[i] = params[n]
	}

	// Conditions.
	dirs := map[string]int8{}
	x := exprContext{env: c.env, rt: c.rt, ps: ps, ruleID: id, kind: src.Kind, params: slots, names: names}
	if typ == ReadingRule && !cond.empty() {
		r.cond = c.cond(cond, path, x, 0, true, dirs)
	}
	switch typ {
	case SymptomRule:
		dirs["min_severity"] = dirDown
	case EventRule:
		dirs["count"] = dirDown
	}
	for i, n := range names {
		r.params.dirs[i] = dirs[n]
	}
	if typ == ReadingRule && r.cond != nil {
		r.usesBaseline = r.cond.usesBaseline()
		c.retake(r, src.Retake, f("retake"), x)
	}
	c.bounds(r, src.Bounds, f("bounds"), id)

	// Program overrides.
	progs := make([]string, 0, len(src.ProgramParams))
	for prog := range src.ProgramParams {
		progs = append(progs, prog)
	}
	sort.Strings(progs)
	for _, prog := range progs {
		pp := f("program_params." + prog)
		if !rpm.ValidProgram(prog) {
			ps.add(pp, id, "unknown program %q: expected one of %s", truncate(prog, 40), joinStrings(rpm.Programs()))
			continue
		}
		o := programOverride{program: prog}
		vals := src.ProgramParams[prog]
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			slot, ok := slots[k]
			if !ok {
				ps.add(join(pp, k), id, "override of unknown param %q: declare its default in params", truncate(k, 40))
				continue
			}
			if !finite(vals[k]) {
				ps.add(join(pp, k), id, "must be a finite number")
				continue
			}
			o.slots = append(o.slots, slot)
			o.vals = append(o.vals, vals[k])
		}
		r.params.programs = append(r.params.programs, o)
	}

	// Bounds of program overrides.
	for _, o := range r.params.programs {
		for k, slot := range o.slots {
			if msg := r.params.outOfBounds(slot, o.vals[k]); msg != "" {
				ps.add(join(f("program_params."+o.program), names[slot]), id, "%s", msg)
			}
		}
	}

	// Hysteresis.
	if typ == ReadingRule {
		c.rearm(r, src.Rearm, f("rearm"), x)
	}
	if len(ps.list) > before {
		return nil
	}
	r.lookbacks()
	return r
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
			ps.add(p, r.id, "unknown param %q", truncate(k, 40))
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
