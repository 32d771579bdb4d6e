package sim

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/tendhealth/tend/rules"
)

func small() Config { return Config{Seed: 7, Patients: 60, Weeks: 4, ArtefactRate: 1} }

// TestDeterministic: the same seed gives the same cohort and the same
// report; another seed gives another cohort.
func TestDeterministic(t *testing.T) {
	t.Parallel()
	p, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	a, b := Run(small(), p), Run(small(), p)
	if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) { // NaN medians: DeepEqual would never match
		t.Error("two runs with one seed differ")
	}
	var ta, tb bytes.Buffer
	if err := WriteText(&ta, []Named{{"default", a}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&tb, []Named{{"default", b}}); err != nil {
		t.Fatal(err)
	}
	if ta.String() != tb.String() {
		t.Error("text reports differ")
	}
	c := small()
	c.Seed = 8
	if reflect.DeepEqual(Generate(small())[0].Readings, Generate(c)[0].Readings) {
		t.Error("another seed gave the same patient")
	}
	// A patient depends only on the seed and its index.
	big := small()
	big.Patients = 80
	if !reflect.DeepEqual(Generate(small())[10].Readings, Generate(big)[10].Readings) {
		t.Error("cohort size changed patient 10")
	}
}

// TestCohortIsPlausible: readings are in time order, in range, labelled.
func TestCohortIsPlausible(t *testing.T) {
	t.Parallel()
	cfg := small()
	cfg.ArtefactRate = 0
	for _, p := range Generate(cfg) {
		if len(p.Programs) == 0 {
			t.Fatalf("%s has no program", p.ID)
		}
		for i, r := range p.Readings {
			if i > 0 && r.ObservedAt.Before(p.Readings[i-1].ObservedAt) {
				t.Fatalf("%s: readings out of order", p.ID)
			}
			if r.Artefact {
				t.Fatalf("%s: artefact with rate 0", p.ID)
			}
			if math.IsNaN(r.Value) || r.Value <= 0 || r.ID == "" || r.Unit == "" {
				t.Fatalf("%s: bad reading %+v", p.ID, r)
			}
		}
	}
}

// TestArtefactRateMatters: doubling artefacts raises artefact alerts of a
// pack without retake or persistence.
func TestArtefactRateMatters(t *testing.T) {
	t.Parallel()
	p, err := rules.Load([]byte(`
- id: hr-high
  title: High heart rate
  kind: heart_rate
  when: value > 130.0
  retake: {enabled: false}
  urgency: high
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := small()
	one := Run(cfg, p)
	cfg.ArtefactRate = 3
	three := Run(cfg, p)
	if three.NonActionable[Artefact] <= one.NonActionable[Artefact] {
		t.Errorf("artefact alerts %d at ×3, %d at ×1", three.NonActionable[Artefact], one.NonActionable[Artefact])
	}
}

// TestRetakeCutsArtefacts: the same rule with retake pages less for
// artefacts, and the simulated patients answer retake requests.
func TestRetakeCutsArtefacts(t *testing.T) {
	t.Parallel()
	src := `
- id: hr-high
  title: High heart rate
  kind: heart_rate
  when: value > 130.0
  retake: {enabled: %s}
  urgency: high
`
	off, err := rules.Load([]byte(strings.Replace(src, "%s", "false", 1)))
	if err != nil {
		t.Fatal(err)
	}
	on, err := rules.Load([]byte(strings.Replace(src, "%s", "true", 1)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := small()
	cfg.ArtefactRate = 3
	a, b := Run(cfg, off), Run(cfg, on)
	if b.NonActionable[Artefact] >= a.NonActionable[Artefact] || b.Readings <= a.Readings {
		t.Errorf("retake: artefact alerts %d → %d, readings %d → %d", a.NonActionable[Artefact], b.NonActionable[Artefact], a.Readings, b.Readings)
	}
}

func TestWilson(t *testing.T) {
	t.Parallel()
	tests := []struct {
		k, n      int
		p, lo, hi float64
	}{
		{0, 0, 0, 0, 0},
		{10, 10, 1, 0.7225, 1},
		{0, 10, 0, 0, 0.2775},
		{81, 100, 0.81, 0.7222, 0.8749},
	}
	for _, tt := range tests {
		p, lo, hi := Wilson(tt.k, tt.n)
		if math.Abs(p-tt.p) > 1e-4 || math.Abs(lo-tt.lo) > 1e-3 || math.Abs(hi-tt.hi) > 1e-3 {
			t.Errorf("Wilson(%d, %d) = %.4f [%.4f, %.4f], want %.4f [%.4f, %.4f]", tt.k, tt.n, p, lo, hi, tt.p, tt.lo, tt.hi)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{Patients: 0, Weeks: 1}, {Patients: 1, Weeks: 0}, {Patients: 1, Weeks: 1, ArtefactRate: math.NaN()}, {Patients: 1, Weeks: 1, ArtefactRate: -1}} {
		if c.Check() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := DefaultConfig().Check(); err != nil {
		t.Error(err)
	}
}

func TestHTML(t *testing.T) {
	t.Parallel()
	p, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, []Named{{"default <pack>", Run(small(), p)}}); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"<svg", "hf_decompensation", "default &lt;pack&gt;", "</html>"} {
		if !strings.Contains(s, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(s, "<script") || strings.Contains(s, "http://") || strings.Contains(s, "https://") {
		t.Error("HTML is not self-contained")
	}
}
