package rpm_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

func f(v float64) *float64 { return &v }

var now = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     rpm.Reading
		want   rpm.Measurement
		fields []string // invalid fields, when the reading is rejected
	}{
		{name: "heart rate bpm", in: rpm.Reading{Kind: rpm.HeartRate, Value: f(72), Unit: "bpm", ObservedAt: now},
			want: rpm.Measurement{Kind: rpm.HeartRate, Value: 72, Unit: "/min", ObservedAt: now}},
		{name: "blood pressure", in: rpm.Reading{Kind: rpm.BloodPressure, Systolic: f(184), Diastolic: f(121), Unit: "mmHg", ObservedAt: now},
			want: rpm.Measurement{Kind: rpm.BloodPressure, Value: 184, Systolic: 184, Diastolic: 121, Unit: "mm[Hg]", ObservedAt: now}},
		{name: "weight in pounds", in: rpm.Reading{Kind: rpm.BodyWeight, Value: f(200), Unit: "[lb_av]", ObservedAt: now},
			want: rpm.Measurement{Kind: rpm.BodyWeight, Value: 90.718474, Unit: "kg", ObservedAt: now}},
		{name: "weight in grams", in: rpm.Reading{Kind: rpm.BodyWeight, Value: f(80500), Unit: "g", ObservedAt: now},
			want: rpm.Measurement{Kind: rpm.BodyWeight, Value: 80.5, Unit: "kg", ObservedAt: now}},
		{name: "fahrenheit", in: rpm.Reading{Kind: rpm.BodyTemperature, Value: f(101.3), Unit: "[degF]", ObservedAt: now},
			want: rpm.Measurement{Kind: rpm.BodyTemperature, Value: 38.5, Unit: "Cel", ObservedAt: now}},
		{name: "glucose mmol", in: rpm.Reading{Kind: rpm.BloodGlucose, Value: f(3), Unit: "mmol/L", ObservedAt: now},
			want: rpm.Measurement{Kind: rpm.BloodGlucose, Value: 54.0468, Unit: "mg/dL", ObservedAt: now}},
		{name: "exactly at plausible edge", in: rpm.Reading{Kind: rpm.SpO2, Value: f(100), Unit: "%", ObservedAt: now},
			want: rpm.Measurement{Kind: rpm.SpO2, Value: 100, Unit: "%", ObservedAt: now}},
		{name: "four minutes ahead is clock skew", in: rpm.Reading{Kind: rpm.SpO2, Value: f(97), Unit: "%", ObservedAt: now.Add(4 * time.Minute)},
			want: rpm.Measurement{Kind: rpm.SpO2, Value: 97, Unit: "%", ObservedAt: now.Add(4 * time.Minute)}},
		{name: "implausible", in: rpm.Reading{Kind: rpm.SpO2, Value: f(100.5), Unit: "%", ObservedAt: now}, fields: []string{"value"}},
		{name: "unknown unit", in: rpm.Reading{Kind: rpm.HeartRate, Value: f(70), Unit: "Hz", ObservedAt: now}, fields: []string{"unit"}},
		{name: "missing everything", in: rpm.Reading{Kind: rpm.HeartRate}, fields: []string{"value", "unit", "observed_at"}},
		{name: "unknown kind", in: rpm.Reading{Kind: "mood", Value: f(1), Unit: "x", ObservedAt: now}, fields: []string{"kind"}},
		{name: "future", in: rpm.Reading{Kind: rpm.SpO2, Value: f(97), Unit: "%", ObservedAt: now.Add(6 * time.Minute)}, fields: []string{"observed_at"}},
		{name: "systolic not above diastolic", in: rpm.Reading{Kind: rpm.BloodPressure, Systolic: f(90), Diastolic: f(90), Unit: "mm[Hg]", ObservedAt: now}, fields: []string{"systolic"}},
		{name: "bp with value", in: rpm.Reading{Kind: rpm.BloodPressure, Value: f(1), Systolic: f(120), Diastolic: f(80), Unit: "mm[Hg]", ObservedAt: now}, fields: []string{"value"}},
		{name: "systolic on heart rate", in: rpm.Reading{Kind: rpm.HeartRate, Value: f(70), Systolic: f(120), Unit: "/min", ObservedAt: now}, fields: []string{"systolic"}},
		{name: "NaN", in: rpm.Reading{Kind: rpm.HeartRate, Value: f(math.NaN()), Unit: "/min", ObservedAt: now}, fields: []string{"value"}},
		{name: "glucose implausible after conversion", in: rpm.Reading{Kind: rpm.BloodGlucose, Value: f(0.5), Unit: "mmol/L", ObservedAt: now}, fields: []string{"value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rpm.Normalize(tt.in, now)
			if tt.fields != nil {
				var v *rpm.ValidationError
				if !errors.As(err, &v) {
					t.Fatalf("err = %v, want a validation error", err)
				}
				seen := map[string]bool{}
				for _, fe := range v.Fields {
					seen[fe.Field] = true
				}
				for _, want := range tt.fields {
					if !seen[want] {
						t.Errorf("no error for %s in %v", want, v)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.Value-tt.want.Value) > 1e-9 || got.Unit != tt.want.Unit || got.Systolic != tt.want.Systolic ||
				got.Diastolic != tt.want.Diastolic || !got.ObservedAt.Equal(tt.want.ObservedAt) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUrgencyOrder(t *testing.T) {
	t.Parallel()
	us := rpm.Urgencies()
	for i := 1; i < len(us); i++ {
		if us[i-1].Rank() <= us[i].Rank() {
			t.Errorf("%s should outrank %s", us[i-1], us[i])
		}
	}
	if rpm.Low.AckDeadline() != 0 || rpm.Critical.AckDeadline() != 5*time.Minute {
		t.Error("ack deadlines differ from SPEC §3")
	}
}

func FuzzNormalize(f *testing.F) {
	f.Add("blood_pressure", 120.0, 80.0, 0.0, "mm[Hg]")
	f.Add("blood_glucose", 0.0, 0.0, 5.5, "mmol/L")
	f.Add("", math.Inf(1), math.NaN(), -1.0, "")
	f.Fuzz(func(t *testing.T, kind string, sys, dia, value float64, unit string) {
		m, err := rpm.Normalize(rpm.Reading{Kind: rpm.Kind(kind), Systolic: &sys, Diastolic: &dia, Value: &value, Unit: unit, ObservedAt: now}, now)
		if err != nil {
			var v *rpm.ValidationError
			if !errors.As(err, &v) || len(v.Fields) == 0 {
				t.Fatalf("error is not a non-empty validation error: %v", err)
			}
			return
		}
		spec, _ := rpm.SpecOf(m.Kind)
		if !spec.Plausible.Contains(m.Value) || m.Unit != spec.Unit {
			t.Fatalf("accepted %+v outside its plausible range", m)
		}
	})
}

func ExampleNormalize() {
	m, err := rpm.Normalize(rpm.Reading{Kind: rpm.BloodGlucose, Value: f(3.9), Unit: "mmol/L", ObservedAt: now}, now)
	fmt.Printf("%.1f %s %v\n", m.Value, m.Unit, err)
	_, err = rpm.Normalize(rpm.Reading{Kind: rpm.SpO2, Value: f(140), Unit: "%", ObservedAt: now}, now)
	fmt.Println(err)
	// Output:
	// 70.3 mg/dL <nil>
	// invalid input: value: 140 is outside the plausible range 50–100 %
}
