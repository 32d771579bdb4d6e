package sim

import (
	"slices"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// physiology is a patient's usual values.
type physiology struct {
	sys, dia, hr, spo2, weight, temp, glucose, rr float64
	poorGlucose                                   bool
	// oximeter: a heart-failure patient who also has a pulse oximeter.
	oximeter bool
}

// offsets is the physiological offset an event (or the day's drift) adds.
type offsets struct {
	sys, dia, hr, spo2, weight, temp, glucose, rr float64
}

// physiology draws the patient's usual values and their day-to-day drift.
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
	ph.oximeter = g.chance(0.5)
	ph.weight = clamp(g.norm(84, 16), 48, 150)
	ph.temp = clamp(g.norm(36.6, 0.2), 36.1, 37.1)
	ph.glucose = clamp(g.norm(145, 25), 95, 210)
	if g.has("diabetes") && g.chance(0.25) {
		ph.poorGlucose = true
		ph.glucose = clamp(g.norm(205, 30), 160, 270)
	}
	g.driftAndSwings()
}

// driftAndSwings draws the slow day-to-day drift of the usual values (AR(1))
// and, for heart failure, benign weight swings.
func (g *gen) driftAndSwings() {
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
		d.glucose = 0.5*d.glucose + g.norm(0, 0.10)*g.ph.glucose
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
			overlap := slices.ContainsFunc(out, func(o Event) bool {
				return e.Start.Before(o.End.Add(48*time.Hour)) && o.Start.Before(e.End.Add(48*time.Hour))
			})
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

// eventSize is an event with its magnitude, drawn once.
type eventSize struct {
	e    Event
	size float64
}

// size draws each event's magnitude.
func (g *gen) size(evs []Event) {
	ph := g.ph
	g.sized = make([]eventSize, len(evs))
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
		g.sized[i] = eventSize{e: e, size: s}
	}
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

// ill reports whether an event shown by one of kinds is at half its size
// or more at t: the patient may feel it.
func ill(evs []Event, t time.Time, kinds ...rpm.Kind) bool {
	for _, e := range evs {
		if slices.Contains(kinds, e.Kind) && !t.Before(halfway(e)) && t.Before(e.End) {
			return true
		}
	}
	return false
}

// halfway is when the event reaches half its size.
func halfway(e Event) time.Time { return e.Start.Add(e.Full.Sub(e.Start) / 2) }
