package rpm

import (
	"fmt"
	"strings"
)

// FieldError is one invalid field and the reason it is invalid.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists every problem found in an input. Its reasons never
// contain secrets; they may echo the offending unit or kind, but never free text.
type ValidationError struct {
	Fields []FieldError
}

// Add records a problem with field.
func (e *ValidationError) Add(field, reason string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Reason: reason})
}

// Prefix returns a copy of e with every field prefixed, such as "readings[3].".
func (e *ValidationError) Prefix(p string) *ValidationError {
	out := &ValidationError{Fields: make([]FieldError, len(e.Fields))}
	for i, f := range e.Fields {
		out.Fields[i] = FieldError{Field: p + f.Field, Reason: f.Reason}
	}
	return out
}

// OrNil returns e as an error when it holds problems, else nil.
func (e *ValidationError) OrNil() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = fmt.Sprintf("%s: %s", f.Field, f.Reason)
	}
	return "invalid input: " + strings.Join(parts, "; ")
}
