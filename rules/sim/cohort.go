// Package sim is Tend's cohort simulator: it generates a synthetic cohort of
// remotely monitored patients (programs hypertension, heart failure, COPD and
// diabetes) with realistic measurement habits, physiology, measurement noise
// and device artefacts, injects labelled deteriorations, replays every
// patient through a rule pack with rules.Pack.Replay — the code path of live
// alerting, with grouping, hysteresis, re-arm and retake — and scores the
// pack: sensitivity per event type and non-actionable alerts per
// patient-week, with their cause.
//
// The package is pure and deterministic: the same Config gives the same
// cohort and the same report, whatever the pack.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Config describes a simulated cohort.
type Config struct {
	// Seed makes the cohort; the same seed gives the same cohort.
	Seed uint64
	// Patients and Weeks size the cohort.
	Patients int
	Weeks    int
	// ArtefactRate multiplies every device artefact rate (1 is the
	// published rates; 2 doubles them).
	ArtefactRate float64
}

// DefaultConfig is the cohort `tend simulate` uses without flags.
func DefaultConfig() Config { return Config{Seed: 1, Patients: 400, Weeks: 8, ArtefactRate: 1} }

// Check reports what is wrong with the config.
func (c Config) Check() error {
	switch {
	case c.Patients < 1 || c.Patients > 100_000:
		return fmt.Errorf("patients must be between 1 and 100000")
	case c.Weeks < 1 || c.Weeks > 104:
		return fmt.Errorf("weeks must be between 1 and 104")
	case !(c.ArtefactRate >= 0 && c.ArtefactRate <= 20):
		return fmt.Errorf("artefact rate must be between 0 and 20")
	}
	return nil
}

// Start is the fixed start of every simulation, so that reports do not
// depend on the clock.
func Start() time.Time { return time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) }

// EventType is a kind of injected deterioration.
type EventType string

// The injected deteriorations.
const (
	HFDecompensation   EventType = "hf_decompensation"
	Fever              EventType = "fever_38_0_to_38_4"
	Tachycardia        EventType = "tachycardia_120_130"
	HypertensiveCrisis EventType = "hypertensive_crisis"
	COPDDesaturation   EventType = "copd_desaturation"
	Hypoglycaemia      EventType = "hypoglycaemia"
	Hyperglycaemia     EventType = "hyperglycaemia"
)

// EventTypes lists the event types in report order.
func EventTypes() []EventType {
	return []EventType{HFDecompensation, Fever, Tachycardia, HypertensiveCrisis, COPDDesaturation, Hypoglycaemia, Hyperglycaemia}
}

// Event is one injected, labelled deterioration.
type Event struct {
	Type EventType
	// Kind is the vital sign that shows it.
	Kind rpm.Kind
	// Start is the onset, Full when it reaches its full size, End when it
	// is over.
	Start, Full, End time.Time
}

// Reading is a simulated reading with its ground truth.
type Reading struct {
	rules.Observation
	// TrueValue, TrueSys and TrueDia are the patient's physiological value
	// without measurement noise or artefact.
	TrueValue, TrueSys, TrueDia float64
	// Artefact marks a reading spoiled by the device or how it was used.
	Artefact bool
}

// Patient is one simulated patient.
type Patient struct {
	ID       string
	Programs []string
	Readings []Reading // in time order
	Events   []Event
	// index, gen and sized let Score take the retakes a pack asks for.
	index int
	gen   *gen
	sized []eventSize
}

// physiology is a patient's usual values.
type physiology struct {
	sys, dia, hr, spo2, weight, temp, glucose, rr float64
	poorGlucose                                   bool
}

// state is the physiological offset an event adds at a time.
type offsets struct {
	sys, dia, hr, spo2, weight, temp, glucose, rr float64
}

// Generate builds the cohort. Patient i depends only on the seed and i.
func Generate(cfg Config) []Patient {
	out := make([]Patient, cfg.Patients)
	for i := range out {
		out[i] = generatePatient(cfg, i)
	}
	return out
}

func generatePatient(cfg Config, i int) Patient {
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
	g := &gen{cfg: cfg, rng: rng, days: cfg.Weeks * 7, start: Start()}
	p := Patient{ID: fmt.Sprintf("p%05d", i)}
	// Program mix of a typical remote-monitoring service; comorbidity is
	// the rule (most heart-failure and diabetes patients are hypertensive).
	switch u := rng.Float64(); {
	case u < 0.35:
		p.Programs = []string{"hypertension"}
	case u < 0.60:
		p.Programs = []string{"heart_failure"}
		if rng.Float64() < 0.6 {
			p.Programs = append(p.Programs, "hypertension")
		}
	case u < 0.80:
		p.Programs = []string{"copd"}
		if rng.Float64() < 0.2 {
			p.Programs = append(p.Programs, "heart_failure")
		}
	default:
		p.Programs = []string{"diabetes"}
		if rng.Float64() < 0.5 {
			p.Programs = append(p.Programs, "hypertension")
		}
	}
	slices.Sort(p.Programs)
	g.has = func(prog string) bool { return slices.Contains(p.Programs, prog) }
	g.physiology()
	p.Events = g.events()
	p.Readings = g.readings(p.ID, p.Events)
	p.index, p.gen, p.sized = i, g, g.sized
	return p
}

type gen struct {
	start time.Time
	cfg   Config
	rng   *rand.Rand
	days  int
	has   func(string) bool
	ph    physiology
	// day-to-day drift per day index.
	drift []offsets
	// benign weight swings (a salty meal, a missed diuretic dose): day → kg.
	swing []float64
	sized []eventSize
}

func (g *gen) norm(mean, sd float64) float64 { return mean + sd*g.rng.NormFloat64() }
func (g *gen) unif(lo, hi float64) float64   { return lo + (hi-lo)*g.rng.Float64() }
func (g *gen) chance(p float64) bool         { return g.rng.Float64() < p }
func clamp(v, lo, hi float64) float64        { return math.Max(lo, math.Min(hi, v)) }

func (g *gen) physiology() {
	ph := &g.ph
	if g.has("hypertension") {
		ph.sys, ph.dia = clamp(g.norm(142, 12), 115, 172), clamp(g.norm(86, 8), 65, 104)
	} else {
		ph.sys, ph.dia = clamp(g.norm(126, 11), 98, 160), clamp(g.norm(78, 7), 58, 96)
	}
	ph.hr = clamp(g.norm(72, 9), 50, 100)
	if g.has("heart_failure") {
		ph.hr = clamp(g.norm(68, 8), 50, 95) // beta-blocked
		ph.sys -= 8
	}
	ph.spo2 = clamp(g.norm(97, 1), 94, 99)
	ph.rr = clamp(g.norm(16, 1.8), 12, 21)
	if g.has("copd") {
		// Many COPD patients live inside the 88–92 % target range.
		ph.spo2 = clamp(g.norm(91.5, 1.8), 88, 95)
		ph.rr = clamp(g.norm(19, 2), 14, 24)
		ph.hr += 6
	}
	ph.weight = clamp(g.norm(84, 16), 48, 150)
	ph.temp = clamp(g.norm(36.6, 0.2), 36.1, 37.1)
	ph.glucose = clamp(g.norm(145, 25), 95, 210)
	if g.has("diabetes") && g.chance(0.25) {
		ph.poorGlucose = true
		ph.glucose = clamp(g.norm(205, 30), 160, 270)
	}
	// Slow day-to-day drift (AR(1)): usual values wander.
	g.drift = make([]offsets, g.days+1)
	g.swing = make([]float64, g.days+2)
	var d offsets
	for day := range g.drift {
		d.sys = 0.7*d.sys + g.norm(0, 4)
		d.dia = 0.7*d.dia + g.norm(0, 2.5)
		d.hr = 0.6*d.hr + g.norm(0, 3)
		d.spo2 = 0.5*d.spo2 + g.norm(0, 0.6)
		d.weight = d.weight + g.norm(0, 0.08)
		d.temp = 0.3*d.temp + g.norm(0, 0.08)
		d.glucose = 0.5*d.glucose + g.norm(0, 0.10)*ph.glucose
		d.rr = 0.5*d.rr + g.norm(0, 0.8)
		g.drift[day] = d
		if g.has("heart_failure") && g.chance(0.06) {
			// A benign swing of 0.6–1.2 kg over a day or two (salt, a
			// missed diuretic), gone in two days: real physiology.
			k := g.unif(0.6, 1.2)
			g.swing[day] += k
			if day+1 < len(g.swing) {
				g.swing[day+1] += k / 2
			}
		}
	}
}

// events draws the deteriorations of the patient.
func (g *gen) events() []Event {
	var out []Event
	horizon := float64(g.days) * 24
	add := func(t EventType, kind rpm.Kind, perWeek float64, rise, plateau func() float64) {
		n := poisson(g.rng, perWeek*float64(g.cfg.Weeks))
		for range n {
			at := g.start.Add(time.Duration(g.unif(24, horizon-24) * float64(time.Hour)))
			r := time.Duration(rise() * float64(time.Hour))
			pl := time.Duration(plateau() * float64(time.Hour))
			e := Event{Type: t, Kind: kind, Start: at, Full: at.Add(r), End: at.Add(r + pl)}
			overlap := false
			for _, o := range out {
				if e.Start.Before(o.End.Add(48*time.Hour)) && o.Start.Before(e.End.Add(48*time.Hour)) {
					overlap = true
				}
			}
			if !overlap {
				out = append(out, e)
			}
		}
	}
	hours := func(lo, hi float64) func() float64 { return func() float64 { return g.unif(lo, hi) } }
	if g.has("heart_failure") {
		add(HFDecompensation, rpm.BodyWeight, 0.06, hours(72, 120), hours(48, 72))
	}
	feverRate := 0.015
	if g.has("copd") || g.has("heart_failure") {
		feverRate = 0.035
	}
	add(Fever, rpm.BodyTemperature, feverRate, hours(4, 12), hours(36, 72))
	add(Tachycardia, rpm.HeartRate, 0.02, hours(0.5, 2), hours(8, 48))
	if g.has("hypertension") {
		add(HypertensiveCrisis, rpm.BloodPressure, 0.03, hours(6, 36), hours(12, 36))
	}
	if g.has("copd") {
		add(COPDDesaturation, rpm.SpO2, 0.06, hours(24, 48), hours(48, 96))
	}
	if g.has("diabetes") {
		add(Hypoglycaemia, rpm.BloodGlucose, 0.05, hours(0.2, 0.5), hours(0.5, 1.5))
		add(Hyperglycaemia, rpm.BloodGlucose, 0.025, hours(12, 24), hours(24, 60))
	}
	slices.SortFunc(out, func(a, b Event) int { return a.Start.Compare(b.Start) })
	return out
}

// eventSize draws each event's magnitude once.
type eventSize struct {
	e    Event
	size float64
}

// offsetAt is what the events add to the patient's physiology at t.
func offsetAt(evs []eventSize, t time.Time) offsets {
	var o offsets
	for _, es := range evs {
		e := es.e
		if t.Before(e.Start) || !t.Before(e.End) {
			continue
		}
		f := 1.0
		if t.Before(e.Full) {
			f = float64(t.Sub(e.Start)) / float64(e.Full.Sub(e.Start))
		}
		s := es.size * f
		switch e.Type {
		case HFDecompensation:
			o.weight += s
			o.hr += 4 * f
			o.spo2 -= 1 * f
		case Fever:
			o.temp += s
			o.hr += 8 * f
			o.rr += 2 * f
		case Tachycardia:
			o.hr += s
		case HypertensiveCrisis:
			o.sys += s
			o.dia += s * 0.55
		case COPDDesaturation:
			o.spo2 -= s
			o.rr += 4 * f
			o.hr += 8 * f
		case Hypoglycaemia, Hyperglycaemia:
			o.glucose += s
		}
	}
	return o
}

// readings generates the patient's measurement sessions.
func (g *gen) readings(id string, evs []Event) []Reading {
	ph := g.ph
	sized := make([]eventSize, len(evs))
	for i, e := range evs {
		var s float64
		switch e.Type {
		case HFDecompensation:
			s = g.unif(2.0, 2.5) // kg over 3–5 days
		case Fever:
			s = g.unif(38.0, 38.4) - ph.temp
		case Tachycardia:
			s = g.unif(120, 130) - ph.hr
		case HypertensiveCrisis:
			s = g.unif(185, 210) - ph.sys
		case COPDDesaturation:
			s = g.unif(4, 7)
		case Hypoglycaemia:
			s = g.unif(42, 62) - ph.glucose
		case Hyperglycaemia:
			s = g.unif(320, 420) - ph.glucose
		}
		sized[i] = eventSize{e: e, size: s}
	}
	g.sized = sized
	var out []Reading
	n := 0
	emit := func(kind rpm.Kind, t time.Time, repeats int) {
		for k := range repeats {
			at := t.Add(time.Duration(k) * time.Duration(60+g.rng.IntN(60)) * time.Second)
			r := g.measure(kind, at, sized)
			n++
			r.ID = fmt.Sprintf("%s-%d", id, n)
			out = append(out, r)
		}
	}
	// repeats: how many readings a session takes (AHA advises two BP
	// readings a minute apart; many take one).
	reps := func(p2 float64) int {
		if g.chance(p2) {
			return 2
		}
		return 1
	}
	at := func(day int, fromH, toH float64) time.Time {
		return g.start.Add(time.Duration(day)*24*time.Hour + time.Duration(g.unif(fromH, toH)*float64(time.Hour)))
	}
	ill := func(t time.Time, kinds ...rpm.Kind) bool {
		for _, e := range evs {
			if slices.Contains(kinds, e.Kind) && !t.Before(e.Start.Add(e.Full.Sub(e.Start)/2)) && t.Before(e.End) {
				return true
			}
		}
		return false
	}
	for day := range g.days {
		morning, evening := at(day, 6.5, 9.5), at(day, 19, 22.5)
		// Blood pressure with the cuff's pulse.
		bpAdh := 0.45
		switch {
		case g.has("hypertension"):
			bpAdh = 0.8
		case g.has("heart_failure"):
			bpAdh = 0.75
		}
		for _, t := range []time.Time{morning, evening} {
			if g.chance(bpAdh) || (ill(t, rpm.BloodPressure, rpm.HeartRate) && g.chance(0.8)) {
				r := reps(0.45)
				emit(rpm.BloodPressure, t, r)
				emit(rpm.HeartRate, t.Add(time.Second), 1)
			}
		}
		// Pulse oximetry (SpO2 and pulse).
		oxAdh := 0.0
		switch {
		case g.has("copd"):
			oxAdh = 0.8
		case g.has("heart_failure"):
			oxAdh = 0.5
		}
		for _, t := range []time.Time{morning.Add(5 * time.Minute), evening.Add(5 * time.Minute)} {
			if (oxAdh > 0 && g.chance(oxAdh)) || (ill(t, rpm.SpO2) && g.chance(0.8)) {
				emit(rpm.SpO2, t, reps(0.3))
				emit(rpm.HeartRate, t.Add(2*time.Second), 1)
			}
		}
		// Weight every morning for heart failure.
		if g.has("heart_failure") && g.chance(0.88) {
			emit(rpm.BodyWeight, morning.Add(-10*time.Minute), 1)
		}
		// Temperature: daily for COPD, now and then for others, and
		// whenever the patient feels feverish.
		tempAdh := 0.1
		if g.has("copd") {
			tempAdh = 0.6
		} else if g.has("heart_failure") {
			tempAdh = 0.3
		}
		if g.chance(tempAdh) {
			emit(rpm.BodyTemperature, morning.Add(15*time.Minute), reps(0.15))
		}
		if ill(evening, rpm.BodyTemperature) && g.chance(0.7) {
			emit(rpm.BodyTemperature, evening.Add(15*time.Minute), reps(0.15))
		}
		// Respiratory rate, counted by COPD patients on some days.
		if g.has("copd") && g.chance(0.3) {
			emit(rpm.RespiratoryRate, morning.Add(20*time.Minute), 1)
		}
		// Glucose: fasting and after meals.
		if g.has("diabetes") {
			if g.chance(0.9) {
				emit(rpm.BloodGlucose, morning.Add(-20*time.Minute), 1)
			}
			for _, h := range []float64{13.5, 19.5} {
				if g.chance(0.5) {
					emit(rpm.BloodGlucose, at(day, h, h+1), 1)
				}
			}
			if g.chance(0.3) {
				emit(rpm.BloodGlucose, at(day, 22, 23.5), 1)
			}
		}
		// Extra checks when symptoms start (palpitations, sweating and
		// shaking of a hypo, feeling unwell): within the event.
		for _, e := range evs {
			if e.Start.Before(g.start.Add(time.Duration(day)*24*time.Hour)) || !e.Start.Before(g.start.Add(time.Duration(day+1)*24*time.Hour)) {
				continue
			}
			switch e.Type {
			case Hypoglycaemia:
				if g.chance(0.85) {
					t := e.Start.Add(time.Duration(g.unif(0.3, 0.8) * float64(e.Full.Sub(e.Start)+time.Hour/2)))
					emit(rpm.BloodGlucose, t, 1)
					if g.chance(0.5) {
						emit(rpm.BloodGlucose, t.Add(15*time.Minute), 1) // the rule of 15
					}
				}
			case Tachycardia:
				if g.chance(0.7) {
					t := e.Full.Add(time.Duration(g.unif(0.2, 3) * float64(time.Hour)))
					emit(rpm.BloodPressure, t, 1)
					emit(rpm.HeartRate, t.Add(time.Second), 1)
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Reading) int { return a.ObservedAt.Compare(b.ObservedAt) })
	return out
}

// measure takes one reading of kind at t.
func (g *gen) measure(kind rpm.Kind, t time.Time, evs []eventSize) Reading {
	ph := g.ph
	day := int(t.Sub(g.start) / (24 * time.Hour))
	d := g.drift[min(max(day, 0), len(g.drift)-1)]
	o := offsetAt(evs, t)
	hour := float64(t.Sub(g.start)%(24*time.Hour)) / float64(time.Hour)
	morning := hour < 12
	art := func(base float64) bool { return g.chance(base * g.cfg.ArtefactRate) }
	spec, _ := rpm.SpecOf(kind)
	r := Reading{Observation: rules.Observation{Kind: kind, Unit: spec.Unit, ObservedAt: t}}
	switch kind {
	case rpm.BloodPressure:
		sys, dia := ph.sys+d.sys+o.sys, ph.dia+d.dia+o.dia
		if morning {
			sys, dia = sys+5, dia+3 // morning surge
		}
		r.TrueSys, r.TrueDia, r.TrueValue = sys, dia, sys
		// Within-session variability of home BP, SD about 6/4 mm Hg.
		ms, md := sys+g.norm(0, 6), dia+g.norm(0, 4)
		// Cuff artefacts: talking, moving, a cuff over clothing or too
		// small — falsely high readings, 2 % of home readings.
		if art(0.02) {
			r.Artefact = true
			ms += g.unif(25, 55)
			md += g.unif(12, 30)
		}
		r.Systolic, r.Diastolic = math.Round(ms), math.Round(md)
		r.Value = r.Systolic
	case rpm.HeartRate:
		v := ph.hr + d.hr + o.hr
		r.TrueValue = v
		m := v + g.norm(0, 4)
		// Pulse miscounts (irregular rhythm, movement): doubled or
		// spurious high counts.
		if art(0.012) {
			r.Artefact = true
			if g.chance(0.5) {
				m = m * 2
			} else {
				m += g.unif(45, 75)
			}
		}
		r.Value = math.Round(m)
	case rpm.SpO2:
		v := ph.spo2 + d.spo2 + o.spo2
		r.TrueValue = v
		// Pulse oximeter accuracy: about ±2 % (ARMS); 1 point of reading
		// noise around the true value.
		m := v + g.norm(0, 1.0)
		// Motion, cold fingers, nail polish: falsely low readings.
		if art(0.02) {
			r.Artefact = true
			m -= g.unif(5, 12)
		}
		r.Value = clamp(math.Round(m), 50, 100)
	case rpm.BodyWeight:
		v := ph.weight + d.weight + o.weight + g.swing[min(max(day, 0), len(g.swing)-1)]
		r.TrueValue = v
		m := v + g.norm(0, 0.3) // clothing, meal, time of day
		if art(0.005) {
			r.Artefact = true // someone else on the scale, a scale on carpet
			m += g.unif(2.5, 6) * float64(1-2*g.rng.IntN(2))
		}
		r.Value = math.Round(m*10) / 10
	case rpm.BodyTemperature:
		v := ph.temp + d.temp + o.temp
		if !morning {
			v += 0.3 // diurnal
		}
		r.TrueValue = v
		m := v + g.norm(0, 0.15)
		// A hot drink, a thermometer not under the tongue.
		if art(0.01) {
			r.Artefact = true
			if g.chance(0.5) {
				m += g.unif(0.9, 1.8)
			} else {
				m -= g.unif(0.8, 1.5)
			}
		}
		r.Value = math.Round(m*10) / 10
	case rpm.BloodGlucose:
		base := ph.glucose + d.glucose
		if !morning || hour > 11 {
			base += g.unif(20, 80) // after a meal
		}
		v := math.Max(base+o.glucose, 30)
		if o.glucose < 0 {
			v = math.Max(ph.glucose+o.glucose, 35) // a hypo overrides the meal
		}
		r.TrueValue = v
		m := v * (1 + g.norm(0, 0.05)) // meter error, ISO 15197
		if art(0.01) {
			r.Artefact = true // sugar on the finger
			m += g.unif(80, 180)
		}
		r.Value = math.Round(m)
	case rpm.RespiratoryRate:
		v := ph.rr + d.rr + o.rr
		r.TrueValue = v
		m := v + g.norm(0, 1.5) // counting error
		if art(0.01) {
			r.Artefact = true
			m += g.unif(8, 14)
		}
		r.Value = math.Round(m)
	}
	return r
}

// RetakeResponse is the share of retake requests ("Please measure again")
// that patients answer, and the delay of their answer.
const (
	RetakeResponse = 0.85
	retakeMinDelay = 2 * time.Minute
	retakeMaxDelay = 8 * time.Minute
)

// retake returns the reading a patient takes when asked to measure kind
// again after the reading observed at t, or false when the patient does
// not answer. It depends only on the seed, the patient and the request.
func (p *Patient) retake(cfg Config, kind rpm.Kind, t time.Time, n int) (Reading, bool) {
	g := *p.gen
	g.rng = rand.New(rand.NewPCG(cfg.Seed^0x5eed5eed5eed, uint64(p.index)<<32|uint64(t.Unix())&0xffffffff))
	if !g.chance(RetakeResponse) {
		return Reading{}, false
	}
	at := t.Add(retakeMinDelay + time.Duration(g.rng.Int64N(int64(retakeMaxDelay-retakeMinDelay))))
	r := g.measure(kind, at, p.sized)
	r.ID = fmt.Sprintf("%s-retake-%d", p.ID, n)
	return r, true
}

// poisson draws a Poisson count (Knuth; small means only).
func poisson(rng *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
