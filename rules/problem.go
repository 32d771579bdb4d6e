package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a rule pack.
type Problem struct {
	// Line is the 1-based line in the YAML or JSON source; 0 when the rules
	// did not come from source text (Compile).
	Line int `json:"line,omitempty"`
	// Field is the path of the offending field, such as "[2].delta.window"
	// (rule index 2) or "when" for a single rule.
	Field string `json:"field"`
	// Reason says what is wrong, in words a rule author can act on.
	Reason string `json:"reason"`
	// Rule is the id of the rule the problem is in, when known.
	Rule string `json:"rule,omitempty"`
}

// Error implements error, so that a Problem can be found with errors.As in
// a *LoadError.
func (p Problem) Error() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		if p.Rule != "" {
			fmt.Fprintf(&b, " (rule %s)", p.Rule)
		}
		b.WriteString(": ")
	} else if p.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", p.Rule)
	}
	b.WriteString(p.Reason)
	return b.String()
}

// LoadError is returned by Parse, Compile and Load when a pack is invalid. It
// lists every problem found, in source order.
type LoadError struct {
	Problems []Problem
}

func (e *LoadError) Error() string {
	switch len(e.Problems) {
	case 0:
		return "invalid rules"
	case 1:
		return "invalid rules: " + e.Problems[0].Error()
	}
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return fmt.Sprintf("invalid rules (%d problems): %s", len(e.Problems), strings.Join(parts, "; "))
}

// Unwrap returns each problem as an error.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// problems collects problems while a pack is read and checked.
type problems struct {
	list []Problem
	// lines maps field paths to source lines; nil when there is no source.
	lines map[string]int
	// block marks fields written as YAML block scalars (| or >), whose text
	// starts on the next line.
	block map[string]bool
	// single is set when the source was one rule object, not a list: field
	// paths then have no "[i]." prefix.
	single bool
}

// add records a problem with field (a full path) in rule id.
func (ps *problems) add(field, rule, format string, args ...any) {
	ps.list = append(ps.list, Problem{Line: ps.line(field), Field: field, Reason: fmt.Sprintf(format, args...), Rule: rule})
}

// addAt records a problem at an explicit line.
func (ps *problems) addAt(line int, field, rule, format string, args ...any) {
	ps.list = append(ps.list, Problem{Line: line, Field: field, Reason: fmt.Sprintf(format, args...), Rule: rule})
}

// line returns the source line of field, or of its closest ancestor.
func (ps *problems) line(field string) int {
	if ps.lines == nil {
		return 0
	}
	for f := field; ; {
		if l, ok := ps.lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			return ps.lines[""]
		}
		if i == 0 && f[0] == '[' { // "[3]" itself is recorded; "[3" is not a path
			return ps.lines[""]
		}
		f = f[:i]
	}
}

// sorted returns the problems ordered by line (stable), nil when none.
func (ps *problems) sorted() []Problem {
	if len(ps.list) == 0 {
		return nil
	}
	out := slices.Clone(ps.list)
	slices.SortStableFunc(out, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return out
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &LoadError{Problems: ps.sorted()}
}

// join builds a field path: join("[2]", "when") is "[2].when",
// join("", "when") is "when".
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
