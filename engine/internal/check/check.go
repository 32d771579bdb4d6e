// Package check holds the small validations every use case shares: field
// errors, names, text truncation, time zones and clock times.
package check

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// MaxNameLen bounds names (users, teams, patients).
const MaxNameLen = 200

// FieldError is a *rpm.ValidationError for one field.
func FieldError(field, reason string) error {
	return &rpm.ValidationError{Fields: []rpm.FieldError{{Field: field, Reason: reason}}}
}

// Name adds an error to v unless name is a non-blank name of at most
// MaxNameLen characters.
func Name(v *rpm.ValidationError, field, name string) {
	switch {
	case strings.TrimSpace(name) == "":
		v.Add(field, "is required")
	case len(name) > MaxNameLen:
		v.Add(field, fmt.Sprintf("is longer than %d characters", MaxNameLen))
	}
}

// Dedupe returns s without repeated values, in first-seen order.
func Dedupe(s []string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// LoadZone loads an IANA zone, refusing the names that mean "wherever this
// server is" ("", "Local").
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, errors.New("not an IANA time zone")
	}
	return time.LoadLocation(name)
}
