package rules

import (
	"slices"

	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rpm"
)

// The checks of what a rule says before anything is compiled: its header,
// what it watches, and the fields its type needs and ignores.

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
