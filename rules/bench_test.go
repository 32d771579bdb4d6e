package rules

import (
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "readings/s")
}

// thresholdInputs are readings of the default pack's threshold-only kinds,
// none of which fires.
func thresholdInputs() []Input {
	return []Input{
		{Reading: bp("a", 132, 84, t0), Programs: []string{"hypertension"}},
		{Reading: obs("b", rpm.HeartRate, 72, t0), Programs: []string{"hypertension"}},
		{Reading: obs("c", rpm.BloodGlucose, 126, t0), Programs: []string{"diabetes"}},
		{Reading: obs("d", rpm.SpO2, 96, t0), Programs: []string{"copd"}},
		{Reading: obs("e", rpm.BodyTemperature, 36.9, t0)},
	}
}

// BenchmarkEvaluateThreshold: the default pack on threshold-only kinds, no
// history. Target: 1,000,000 readings/s per core.
func BenchmarkEvaluateThreshold(b *testing.B) {
	p := mustDefault(b)
	ins := thresholdInputs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Evaluate(ins[i%len(ins)])
		i++
	}
	reportRate(b)
}

// BenchmarkEvaluateThresholdFiring: a reading that fires two rules.
func BenchmarkEvaluateThresholdFiring(b *testing.B) {
	p := mustDefault(b)
	in := Input{Reading: obs("g", rpm.BloodGlucose, 40, t0), Programs: []string{"diabetes"}}
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(in)
	}
	reportRate(b)
}

// BenchmarkEvaluateThresholdParallel: the threshold case on every core.
func BenchmarkEvaluateThresholdParallel(b *testing.B) {
	p := mustDefault(b)
	ins := thresholdInputs()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p.Evaluate(ins[i%len(ins)])
			i++
		}
	})
	reportRate(b)
}

const windowRules = `
- id: hr-jump
  title: Heart rate jump
  kind: heart_rate
  delta: {window: 1h, rise: 40}
  urgency: medium
- id: hr-above-usual
  title: Heart rate above usual
  kind: heart_rate
  when: count("24h") >= 10 && value > avg("24h") + params.margin
  params: {margin: 40}
  urgency: medium
- id: hr-high-sustained
  title: Heart rate high for two hours
  kind: heart_rate
  when: value > params.max
  params: {max: 120}
  sustained: 2h
  urgency: high
- id: hr-low-repeated
  title: Heart rate low on repeated readings
  kind: heart_rate
  when: value < params.min && min("6h") < params.min
  params: {min: 45}
  consecutive: 3
  urgency: high
`

// windowInput is a heart rate reading with a 24-hour history of 100
// readings.
func windowInput() Input {
	hist := make([]Observation, 100)
	for i := range hist {
		hist[i] = obs("h", rpm.HeartRate, float64(60+i%25), t0.Add(-24*time.Hour+time.Duration(i)*864*time.Second))
	}
	return Input{Reading: obs("x", rpm.HeartRate, 88, t0), History: hist, Programs: []string{"heart_failure"}}
}

// BenchmarkEvaluateWindow: the default pack plus window rules (delta,
// aggregates, sustained, consecutive) over a 24-hour history of 100
// readings. Target: 200,000 readings/s per core.
func BenchmarkEvaluateWindow(b *testing.B) {
	p := mustLoad(b, string(DefaultSource())+windowRules)
	in := windowInput()
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(in)
	}
	reportRate(b)
}

// BenchmarkEvaluateWindowCEL: the same on the CEL interpreter only, for
// comparison with the native evaluator.
func BenchmarkEvaluateWindowCEL(b *testing.B) {
	p := stripNative(mustLoad(b, string(DefaultSource())+windowRules))
	in := windowInput()
	b.ReportAllocs()
	for b.Loop() {
		p.Evaluate(in)
	}
	reportRate(b)
}

func BenchmarkLoadDefault(b *testing.B) {
	src := DefaultSource()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplay: backtesting a week of one patient's readings (4 a day
// of four kinds, plus a CGM-like glucose every 15 minutes).
func BenchmarkReplay(b *testing.B) {
	p := mustDefault(b)
	var rs []Observation
	for i := range 7 * 96 {
		t := t0.Add(time.Duration(i) * 15 * time.Minute)
		rs = append(rs, obs("g", rpm.BloodGlucose, float64(60+(i*37)%250), t))
		if i%24 == 0 {
			rs = append(rs, bp("b", float64(120+(i*7)%70), float64(70+(i*3)%55), t), obs("s", rpm.SpO2, float64(86+(i*5)%12), t),
				obs("h", rpm.HeartRate, float64(45+(i*11)%100), t), obs("w", rpm.BodyWeight, 80+float64(i%96)/40, t))
		}
	}
	in := ReplayInput{Readings: rs, Programs: []string{"heart_failure", "diabetes"}, EnrolledAt: t0, Until: t0.Add(7 * 24 * time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		p.Replay(in)
	}
	b.ReportMetric(float64(b.N*len(rs))/b.Elapsed().Seconds(), "readings/s")
}
