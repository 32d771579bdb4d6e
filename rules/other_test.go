package rules

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

func TestEvaluateSymptoms(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		name     string
		symptoms []rpm.Symptom
		params   map[string]map[string]float64
		want     []string
	}{
		{"chest pain at severity 1", []rpm.Symptom{{Code: rpm.ChestPain, Severity: 1}}, nil, []string{"chest-pain"}},
		{"severity 0 is not reported pain", []rpm.Symptom{{Code: rpm.ChestPain, Severity: 0}}, nil, []string{}},
		{"several symptoms", []rpm.Symptom{{Code: rpm.Headache, Severity: 9}, {Code: rpm.WeaknessOneSide, Severity: 3}, {Code: rpm.Fainting, Severity: 10}},
			nil, []string{"fainting", "weakness-one-side"}},
		{"the worst report of a code counts", []rpm.Symptom{{Code: rpm.ChestPain, Severity: 0}, {Code: rpm.ChestPain, Severity: 2}}, nil, []string{"chest-pain"}},
		{"personal min_severity", []rpm.Symptom{{Code: rpm.ChestPain, Severity: 3}}, map[string]map[string]float64{"chest-pain": {"min_severity": 4}}, []string{}},
		{"nothing", nil, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := p.EvaluateSymptoms(SymptomInput{ReportID: "rep", Symptoms: tt.symptoms, Params: tt.params, Now: t0})
			if got := ids(res.Findings); !slices.Equal(got, tt.want) {
				t.Errorf("findings = %v, want %v", got, tt.want)
			}
			for _, f := range res.Findings {
				if f.ObservationID != "rep" || !f.At.Equal(t0) || f.Symptom == "" || f.Urgency != rpm.Critical {
					t.Errorf("finding %+v", f)
				}
			}
		})
	}
}

func TestEvaluateMissing(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	hf := []string{"heart_failure"}
	enrolled := t0
	tests := []struct {
		name     string
		programs []string
		last     map[rpm.Kind]time.Time
		now      time.Time
		since    time.Time
		want     []string
		at       time.Time
	}{
		{"no reading yet, just enrolled", hf, nil, at(35 * time.Hour), time.Time{}, []string{}, time.Time{}},
		{"no reading 36h after enrolment", hf, nil, at(36 * time.Hour), time.Time{}, []string{"no-weight-36h"}, at(36 * time.Hour)},
		{"reading before enrolment does not count", hf, map[rpm.Kind]time.Time{rpm.BodyWeight: at(-48 * time.Hour)}, at(30 * time.Hour), time.Time{}, []string{}, time.Time{}},
		{"last weight 36h ago", hf, map[rpm.Kind]time.Time{rpm.BodyWeight: at(10 * time.Hour)}, at(46 * time.Hour), time.Time{}, []string{"no-weight-36h"}, at(46 * time.Hour)},
		{"last weight 35h ago", hf, map[rpm.Kind]time.Time{rpm.BodyWeight: at(10 * time.Hour)}, at(45 * time.Hour), time.Time{}, []string{}, time.Time{}},
		{"other kinds do not help", hf, map[rpm.Kind]time.Time{rpm.HeartRate: at(40 * time.Hour)}, at(40 * time.Hour), time.Time{}, []string{"no-weight-36h"}, at(36 * time.Hour)},
		{"not in the program", []string{"copd"}, nil, at(100 * time.Hour), time.Time{}, []string{}, time.Time{}},
		{"edge-triggered: gap already reported", hf, nil, at(40 * time.Hour), at(37 * time.Hour), []string{}, time.Time{}},
		{"edge-triggered: gap since the last run", hf, nil, at(40 * time.Hour), at(35 * time.Hour), []string{"no-weight-36h"}, at(36 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := p.EvaluateMissing(MissingInput{Programs: tt.programs, EnrolledAt: enrolled, LastObserved: tt.last, Now: tt.now, Since: tt.since})
			if !slices.Equal(ids(got), tt.want) {
				t.Fatalf("findings = %v, want %v", ids(got), tt.want)
			}
			for _, f := range got {
				if !f.At.Equal(tt.at) || f.Kind != rpm.BodyWeight || f.Urgency != rpm.Low {
					t.Errorf("finding %+v, want at %v", f, tt.at)
				}
			}
		})
	}
}

func TestEvaluateEvents(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	dose := func(id, med string, d time.Duration) Event {
		return Event{ID: id, Type: MissedDose, Medication: med, At: at(d)}
	}
	tests := []struct {
		name    string
		event   Event
		history []Event
		params  map[string]map[string]float64
		want    []string
	}{
		{"first missed dose", dose("a", "furosemide", 0), nil, nil, []string{}},
		{"second within 72h", dose("b", "furosemide", 72*time.Hour), []Event{dose("a", "furosemide", 0)}, nil, []string{"missed-doses"}},
		{"second after 72h", dose("b", "furosemide", 72*time.Hour+time.Minute), []Event{dose("a", "furosemide", 0)}, nil, []string{}},
		{"another medication", dose("b", "lisinopril", time.Hour), []Event{dose("a", "furosemide", 0)}, nil, []string{}},
		{"third of the same episode", dose("c", "furosemide", 48*time.Hour), []Event{dose("a", "furosemide", 0), dose("b", "furosemide", 24*time.Hour)}, nil, []string{"~missed-doses"}},
		{"new episode after the window", dose("d", "furosemide", 200*time.Hour), []Event{dose("a", "furosemide", 0), dose("b", "furosemide", 24*time.Hour), dose("c", "furosemide", 190*time.Hour)}, nil, []string{"missed-doses"}},
		{"personal count", dose("b", "furosemide", time.Hour), []Event{dose("a", "furosemide", 0)}, map[string]map[string]float64{"missed-doses": {"count": 3}}, []string{}},
		{"other event types", Event{ID: "m", Type: MissedMeasurement, Kind: rpm.BodyWeight, At: t0}, []Event{{ID: "n", Type: MissedMeasurement, Kind: rpm.BodyWeight, At: at(-time.Hour)}}, nil, []string{}},
		{"the event itself in history", dose("b", "furosemide", time.Hour), []Event{dose("b", "furosemide", time.Hour)}, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := p.EvaluateEvents(EventInput{Event: tt.event, History: tt.history, Params: tt.params})
			got := ids(res.Findings)
			for _, s := range res.Suppressed {
				got = append(got, "~"+s.RuleID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("findings = %v, want %v", got, tt.want)
			}
			for _, f := range res.Findings {
				if f.Key != tt.event.Medication || f.ObservationID != tt.event.ID || !f.At.Equal(tt.event.At) {
					t.Errorf("finding %+v", f)
				}
			}
		})
	}
	t.Run("late", func(t *testing.T) {
		t.Parallel()
		res := p.EvaluateEvents(EventInput{Event: dose("b", "x", 0), History: []Event{dose("a", "x", -time.Hour), dose("c", "x", time.Hour)}})
		if len(res.Findings) != 1 || !res.Findings[0].Late {
			t.Errorf("late event: %+v", res)
		}
	})
}

func TestReplay(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	g := func(id string, v float64, d time.Duration) Observation { return obs(id, rpm.BloodGlucose, v, at(d)) }
	in := ReplayInput{
		// Out of order on purpose: Replay sorts.
		Readings: []Observation{
			g("r3", 69, 2*time.Hour), // suppressed: still in the episode
			g("r1", 40, 0),           // critical-low + low: one alert
			g("r2", 60, time.Hour),   // critical-low re-arms only at 70
			g("r4", 85, 3*time.Hour), // clears both
			g("r5", 65, 4*time.Hour), // low again: new alert
			bp("b1", 185, 110, at(5*time.Hour)),
		},
		SymptomReports: []SymptomReport{
			{ID: "s1", At: at(6 * time.Hour), Symptoms: []rpm.Symptom{{Code: rpm.ChestPain, Severity: 5}}},
			{ID: "s2", At: at(7 * time.Hour), Symptoms: []rpm.Symptom{{Code: rpm.ChestPain, Severity: 6}}},
			{ID: "s3", At: at(40 * time.Hour), Symptoms: []rpm.Symptom{{Code: rpm.ChestPain, Severity: 2}}},
		},
		Events: []Event{
			{ID: "e1", Type: MissedDose, Medication: "m", At: at(8 * time.Hour)},
			{ID: "e2", Type: MissedDose, Medication: "m", At: at(9 * time.Hour)},
			{ID: "e3", Type: MissedDose, Medication: "m", At: at(10 * time.Hour)},
		},
		Programs:   []string{"heart_failure", "diabetes"},
		EnrolledAt: at(-time.Hour),
		Until:      at(48 * time.Hour),
	}
	res := p.Replay(in)
	type row struct {
		rule, obs  string
		alert      int
		opened     bool
		suppressed bool
	}
	var got []row
	for _, f := range res.Findings {
		got = append(got, row{f.RuleID, f.ObservationID, f.Alert, f.Opened, f.Suppressed})
	}
	// Every finding is listed, suppressed ones with the alert they were
	// recorded on.
	want := []row{
		{"glucose-critical-low", "r1", 0, true, false},
		{"glucose-low", "r1", 0, false, false},
		{"glucose-low", "r2", 0, false, true},
		{"glucose-low", "r3", 0, false, true},
		{"glucose-low", "r5", 1, true, false},
		{"bp-crisis", "b1", 2, true, false}, // no retake came: paged at the deadline
		{"chest-pain", "s1", 3, true, false},
		{"chest-pain", "s2", 3, false, false},
		{"missed-doses", "e2", 4, true, false},
		{"missed-doses", "e3", 4, false, true},
		{"no-weight-36h", "", 5, true, false},
		{"chest-pain", "s3", 6, true, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n got %v\nwant %v", got, want)
	}
	if len(res.Alerts) != 7 || res.Suppressed != 3 || len(res.Errors) != 0 {
		t.Errorf("alerts %d, suppressed %d, errors %v", len(res.Alerts), res.Suppressed, res.Errors)
	}
	if a := res.Alerts[0]; a.RuleID != "glucose-critical-low" || a.Findings != 4 || !a.ClosedAt.Equal(at(3*time.Hour)) {
		t.Errorf("first alert %+v", a)
	}
	if a := res.Alerts[2]; a.Retake != RetakeTimedOut || !a.OpenedAt.Equal(at(5*time.Hour+10*time.Minute)) || !a.FirstAt.Equal(at(5*time.Hour)) || a.ObservationID != "b1" {
		t.Errorf("bp alert %+v", a)
	}
	if gap := res.Findings[10]; !gap.At.Equal(at(35 * time.Hour)) {
		t.Errorf("missing weight at %v", gap.At)
	}
	stats := res.ByRule()
	if s := stats["chest-pain"]; s.Findings != 3 || s.Alerts != 2 {
		t.Errorf("chest-pain stats %+v", s)
	}
	// Replay agrees with Evaluate reading by reading.
	for _, f := range res.Findings {
		if f.Kind == rpm.BloodGlucose && f.Late {
			t.Errorf("replayed finding marked late: %+v", f)
		}
	}
}

func TestReplayMissingGaps(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	w := func(id string, d time.Duration) Observation { return obs(id, rpm.BodyWeight, 80, at(d)) }
	res := p.Replay(ReplayInput{
		Readings:   []Observation{w("a", 10*time.Hour), w("b", 30*time.Hour), w("c", 80*time.Hour), w("d", 100*time.Hour)},
		Programs:   []string{"heart_failure"},
		EnrolledAt: t0,
		Until:      at(200 * time.Hour),
	})
	var gaps []time.Time
	for _, f := range res.Findings {
		if f.RuleID == "no-weight-36h" {
			gaps = append(gaps, f.At)
		}
	}
	want := []time.Time{at(66 * time.Hour), at(136 * time.Hour)}
	if !slices.EqualFunc(gaps, want, time.Time.Equal) {
		t.Errorf("gaps at %v, want %v", gaps, want)
	}
}
