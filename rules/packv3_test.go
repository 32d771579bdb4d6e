package rules

import (
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// TestDefaultPackScenarios replays the shipped pack (version 3) through the
// situations its changes were made for, one routine at a time.
func TestDefaultPackScenarios(t *testing.T) {
	t.Parallel()
	p := mustShipped(t)
	day := 24 * time.Hour
	min := time.Minute
	// dailySpO2 is a COPD patient's once-a-day SpO2 at 92 % for n days.
	dailySpO2 := func(n int) []Observation {
		var rs []Observation
		for i := range n {
			rs = append(rs, obs("d"+string(rune('a'+i)), rpm.SpO2, 92, at(time.Duration(i)*day)))
		}
		return rs
	}
	type want struct {
		rule    string // "" for no alert
		retake  RetakeOutcome
		openedM time.Duration // when the alert opened, from the scenario's event
	}
	tests := []struct {
		name     string
		programs []string
		readings []Observation
		reports  []SymptomReport
		event    time.Time
		want     want
	}{
		{
			name:     "once-daily SpO2: a desaturation pages on the first confirming reading",
			programs: []string{"copd"},
			readings: append(dailySpO2(14), obs("low", rpm.SpO2, 88, at(14*day)), obs("again", rpm.SpO2, 88, at(14*day+4*min))),
			event:    at(14 * day),
			want:     want{rule: "spo2-copd-below-usual", retake: RetakeConfirmed, openedM: 4 * min},
		},
		{
			name:     "once-daily SpO2: a moving finger reading 78 % asks for a retake, which refutes it",
			programs: []string{"copd"},
			readings: append(dailySpO2(14), obs("finger", rpm.SpO2, 78, at(14*day)), obs("still", rpm.SpO2, 92, at(14*day+3*min))),
			event:    at(14 * day),
		},
		{
			name:     "a cuff over a sleeve reads a crisis; the retake refutes it",
			programs: []string{"hypertension"},
			readings: []Observation{bp("m1", 148, 90, at(0)), bp("sleeve", 186, 112, at(day)), bp("bare", 149, 91, at(day+5*min))},
			event:    at(day),
		},
		{
			name:     "a cuff artefact of 205/132 no longer pages at once",
			programs: []string{"hypertension"},
			readings: []Observation{bp("m1", 160, 96, at(0)), bp("sleeve", 205, 132, at(day)), bp("bare", 158, 95, at(day+5*min))},
			event:    at(day),
		},
		{
			name:     "a borderline retake of a real crisis confirms it",
			programs: []string{"hypertension"},
			readings: []Observation{bp("m1", 150, 92, at(0)), bp("crisis", 186, 112, at(day)), bp("retake", 175, 108, at(day+6*min))},
			event:    at(day),
			want:     want{rule: "bp-crisis", retake: RetakeConfirmed, openedM: 6 * min},
		},
		{
			name:     "a crisis past the hard limit pages at once",
			programs: []string{"hypertension"},
			readings: []Observation{bp("m1", 150, 92, at(0)), bp("crisis", 245, 142, at(day))},
			event:    at(day),
			want:     want{rule: "bp-crisis", retake: RetakeNone},
		},
		{
			name:     "breathlessness asks for an SpO2 reading, which finds the desaturation",
			programs: []string{"copd"},
			readings: append(dailySpO2(14), obs("asked", rpm.SpO2, 87, at(14*day+5*time.Hour+8*min)), obs("retake", rpm.SpO2, 88, at(14*day+5*time.Hour+13*min))),
			reports:  []SymptomReport{{ID: "s1", At: at(14*day + 5*time.Hour), Symptoms: []rpm.Symptom{{Code: rpm.ShortnessOfBreath, Severity: 5}}}},
			event:    at(14*day + 5*time.Hour + 8*min),
			want:     want{rule: "spo2-copd-below-usual", retake: RetakeConfirmed, openedM: 5 * min},
		},
		{
			name:     "level 1 hypoglycaemia is confirmed by a re-check",
			programs: []string{"diabetes"},
			readings: []Observation{obs("g1", rpm.BloodGlucose, 140, at(0)), obs("low", rpm.BloodGlucose, 64, at(day)), obs("recheck", rpm.BloodGlucose, 66, at(day+12*min))},
			event:    at(day),
			want:     want{rule: "glucose-low", retake: RetakeConfirmed, openedM: 12 * min},
		},
		{
			name:     "level 2 hypoglycaemia pages at once",
			programs: []string{"diabetes"},
			readings: []Observation{obs("g1", rpm.BloodGlucose, 140, at(0)), obs("low", rpm.BloodGlucose, 48, at(day))},
			event:    at(day),
			want:     want{rule: "glucose-critical-low", retake: RetakeNone},
		},
		{
			name:     "one high glucose checked once a day pages when the re-check confirms it",
			programs: []string{"diabetes"},
			readings: []Observation{obs("g1", rpm.BloodGlucose, 150, at(0)), obs("high", rpm.BloodGlucose, 360, at(day)), obs("recheck", rpm.BloodGlucose, 352, at(day+10*min))},
			event:    at(day),
			want:     want{rule: "glucose-high", retake: RetakeConfirmed, openedM: 10 * min},
		},
		{
			name:     "heart failure: one weight 1.5 kg above the week's lowest pages",
			programs: []string{"heart_failure"},
			readings: []Observation{obs("w1", rpm.BodyWeight, 80, at(0)), obs("w2", rpm.BodyWeight, 80.4, at(day)), obs("w3", rpm.BodyWeight, 80.8, at(3*day)),
				obs("w4", rpm.BodyWeight, 81.1, at(4*day)), obs("w5", rpm.BodyWeight, 81.6, at(6*day))},
			event: at(6 * day),
			want:  want{rule: "hf-weight-gain-7d", retake: RetakeNone},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := p.Replay(ReplayInput{Readings: tt.readings, SymptomReports: tt.reports, Programs: tt.programs})
			var got []ReplayAlert
			for _, a := range res.Alerts {
				if !a.FirstAt.Before(tt.event) {
					got = append(got, a)
				}
			}
			if tt.want.rule == "" {
				if len(got) != 0 {
					t.Fatalf("paged: %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].RuleID != tt.want.rule || got[0].Retake != tt.want.retake || !got[0].OpenedAt.Equal(tt.event.Add(tt.want.openedM)) {
				t.Fatalf("alerts %+v, want one of %s (%v) opened %v after the event", got, tt.want.rule, tt.want.retake, tt.want.openedM)
			}
		})
	}
}
