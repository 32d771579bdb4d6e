package enginetest

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// Ptr returns a pointer to v (reading values).
func Ptr(v float64) *float64 { return &v }

// BP is a blood pressure reading.
func BP(sys, dia float64, at time.Time, source string) rpm.Reading {
	return rpm.Reading{Kind: rpm.BloodPressure, Systolic: Ptr(sys), Diastolic: Ptr(dia), Unit: "mm[Hg]", ObservedAt: at, SourceID: source}
}

// SpO2 is an SpO2 reading.
func SpO2(v float64, at time.Time) rpm.Reading {
	return rpm.Reading{Kind: rpm.SpO2, Value: Ptr(v), Unit: "%", ObservedAt: at}
}

// Fever is a body temperature of 39 °C, observed now.
func Fever() rpm.Reading { return rpm.Reading{Kind: rpm.BodyTemperature, Value: Ptr(39), Unit: "Cel"} }

// WaitCtx is a context that ends after 15 s or with t.
func WaitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WaitFor polls cond until it holds or 15 s pass.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WantFields fails t unless err is a *rpm.ValidationError naming every field
// in want, and returns the fields it names.
func WantFields(t testing.TB, err error, want ...string) []rpm.FieldError {
	t.Helper()
	var v *rpm.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	named := map[string]bool{}
	for _, f := range v.Fields {
		named[f.Field] = true
	}
	for _, w := range want {
		if !named[w] {
			t.Errorf("no error for %s in %+v", w, v.Fields)
		}
	}
	return v.Fields
}

// ScanPHI fails t when text contains any of phi. Words and numbers match
// whole (so "121" does not match inside an id or a timestamp), case-folded.
func ScanPHI(t testing.TB, where, text string, phi []string) {
	t.Helper()
	for _, s := range phi {
		if s == "" {
			continue
		}
		re := regexp.MustCompile(`(?i)(^|[^0-9a-z])` + regexp.QuoteMeta(s) + `($|[^0-9a-z])`)
		if re.MatchString(text) {
			t.Errorf("%s leaks %q: %s", where, s, text)
		}
	}
}

// Clock is a settable time source for engine.Config.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock is a Clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Chicago is America/Chicago (a zone with daylight saving time).
func Chicago(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// SyncBuffer is a log sink safe for the engine's concurrent writes.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
