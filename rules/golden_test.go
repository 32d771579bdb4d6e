package rules

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tendhealth/tend/rpm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

type fixturePatient struct {
	Patient    string                        `yaml:"patient"`
	Programs   []string                      `yaml:"programs"`
	EnrolledAt time.Time                     `yaml:"enrolled_at"`
	Until      time.Time                     `yaml:"until"`
	Params     map[string]map[string]float64 `yaml:"params"`
	Readings   []string                      `yaml:"readings"`
	Symptoms   []string                      `yaml:"symptoms"`
	Events     []string                      `yaml:"events"`
}

var shortKinds = map[string]rpm.Kind{
	"bp": rpm.BloodPressure, "hr": rpm.HeartRate, "spo2": rpm.SpO2, "weight": rpm.BodyWeight,
	"temp": rpm.BodyTemperature, "glucose": rpm.BloodGlucose, "rr": rpm.RespiratoryRate,
}

func offset(t *testing.T, base time.Time, s string) time.Time {
	t.Helper()
	d, err := ParseDuration(strings.TrimPrefix(s, "+"))
	if err != nil {
		t.Fatalf("offset %q: %v", s, err)
	}
	return base.Add(d.Std())
}

func (fp *fixturePatient) load(t *testing.T) ReplayInput {
	t.Helper()
	in := ReplayInput{Programs: fp.Programs, Params: fp.Params, EnrolledAt: fp.EnrolledAt, Until: fp.Until}
	for i, line := range fp.Readings {
		f := strings.Fields(line)
		kind, ok := shortKinds[f[1]]
		if len(f) != 3 || !ok {
			t.Fatalf("%s: bad reading %q", fp.Patient, line)
		}
		o := Observation{ID: fmt.Sprintf("%s-r%d", fp.Patient[:3], i+1), Kind: kind, ObservedAt: offset(t, fp.EnrolledAt, f[0])}
		if spec, ok := rpm.SpecOf(kind); ok {
			o.Unit = spec.Unit
		}
		if sys, dia, isBP := strings.Cut(f[2], "/"); isBP {
			o.Systolic, _ = strconv.ParseFloat(sys, 64)
			o.Diastolic, _ = strconv.ParseFloat(dia, 64)
			o.Value = o.Systolic
		} else {
			o.Value, _ = strconv.ParseFloat(f[2], 64)
		}
		in.Readings = append(in.Readings, o)
	}
	for i, line := range fp.Symptoms {
		f := strings.Fields(line)
		rep := SymptomReport{ID: fmt.Sprintf("%s-s%d", fp.Patient[:3], i+1), At: offset(t, fp.EnrolledAt, f[0])}
		for _, s := range f[1:] {
			code, sev, _ := strings.Cut(s, ":")
			n, _ := strconv.Atoi(sev)
			rep.Symptoms = append(rep.Symptoms, rpm.Symptom{Code: rpm.SymptomCode(code), Severity: n})
		}
		in.SymptomReports = append(in.SymptomReports, rep)
	}
	for i, line := range fp.Events {
		f := strings.Fields(line)
		in.Events = append(in.Events, Event{ID: fmt.Sprintf("%s-e%d", fp.Patient[:3], i+1), Type: EventType(f[1]), Medication: f[2], At: offset(t, fp.EnrolledAt, f[0])})
	}
	return in
}

// TestDefaultPackGolden runs the default pack over the fixture cohort, live
// (readings in arrival order, each against those that arrived before it)
// and as a replay, and compares the report with testdata/default_pack.golden.
// Regenerate with: go test ./rules -run Golden -update
func TestDefaultPackGolden(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join("testdata", "cohort.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cohort []fixturePatient
	if err := yaml.Unmarshal(src, &cohort); err != nil {
		t.Fatal(err)
	}
	p := mustShipped(t)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# default pack over testdata/cohort.yaml (go test ./rules -run Golden -update)\n")
	for _, fp := range cohort {
		in := fp.load(t)
		fmt.Fprintf(&b, "\n## %s programs=%v\n\nlive:\n", fp.Patient, fp.Programs)
		for i, o := range in.Readings {
			res := p.Evaluate(Input{Reading: o, History: in.Readings[:i], Programs: in.Programs, Params: in.Params, Now: o.ObservedAt})
			v := strconv.FormatFloat(o.Value, 'f', -1, 64)
			if o.Kind == rpm.BloodPressure {
				v = fmt.Sprintf("%g/%g", o.Systolic, o.Diastolic)
			}
			fmt.Fprintf(&b, "  %s %s %-16s %-7s", o.ID, o.ObservedAt.Format("01-02T15:04"), o.Kind, v)
			for _, f := range res.Findings {
				late := ""
				if f.Late {
					late = " LATE"
				}
				fmt.Fprintf(&b, " %s(%s%s)", f.RuleID, f.Urgency, late)
			}
			for _, f := range res.Suppressed {
				fmt.Fprintf(&b, " ~%s", f.RuleID)
			}
			for _, e := range res.Errors {
				fmt.Fprintf(&b, " !%s: %v", e.RuleID, e.Err)
			}
			b.WriteByte('\n')
		}
		rp := p.Replay(in)
		fmt.Fprintf(&b, "replay: %d findings, %d alerts, %d suppressed, %d errors\n", len(rp.Findings), len(rp.Alerts), rp.Suppressed, len(rp.Errors))
		for _, f := range rp.Findings {
			mark := "  "
			if f.Opened {
				mark = "+ "
			}
			fmt.Fprintf(&b, "  %s%s %-22s %-8s alert#%d %s\n", mark, f.At.Format("01-02T15:04"), f.RuleID, f.Urgency, f.Alert, f.ObservationID)
		}
	}
	golden := filepath.Join("testdata", "default_pack.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("report differs from %s (run with -update after checking the change):\n%s", golden, diffLines(string(want), b.String()))
	}
}

// diffLines shows the first differing lines.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			fmt.Fprintf(&out, "line %d:\n- %s\n+ %s\n", i+1, a, b)
			shown++
		}
	}
	return out.String()
}
