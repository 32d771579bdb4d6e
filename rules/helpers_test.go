package rules

import (
	"os"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// mustDefault loads version 1 of the default pack (testdata/pack_v1.yaml),
// the fixture of the rule-language tests; mustShipped loads the pack that
// ships in the binary.
func mustDefault(t testing.TB) *Pack {
	t.Helper()
	src, err := os.ReadFile("testdata/pack_v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return mustLoad(t, string(src))
}

func mustShipped(t testing.TB) *Pack {
	t.Helper()
	p, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t testing.TB, src string) *Pack {
	t.Helper()
	p, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func obs(id string, kind rpm.Kind, v float64, t time.Time) Observation {
	return Observation{ID: id, Kind: kind, Value: v, ObservedAt: t}
}

func bp(id string, sys, dia float64, t time.Time) Observation {
	return Observation{ID: id, Kind: rpm.BloodPressure, Value: sys, Systolic: sys, Diastolic: dia, Unit: "mm[Hg]", ObservedAt: t}
}

// ids returns the rule ids of findings, in order.
func ids(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.RuleID)
	}
	return out
}

func errIDs(es []EvalError) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.RuleID)
	}
	return out
}
