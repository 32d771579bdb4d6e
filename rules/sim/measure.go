package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// ArtefactProfile is the shape of the device artefacts of a cohort.
type ArtefactProfile string

// The artefact profiles.
const (
	// ArtefactsNormal: the published shapes — a cuff reading 25–55 mm Hg
	// high, an oximeter 5–12 points low, a pulse doubled or 45–75 high.
	ArtefactsNormal ArtefactProfile = ""
	// ArtefactsDevice: device-specific failures at the same rates — finger
	// motion on a pulse oximeter reading 70–85 %, a cuff over a sleeve
	// reading 20–40 mm Hg high, a pulse counted twice.
	ArtefactsDevice ArtefactProfile = "device"
)

// measure takes one reading of kind at t: the patient's true value (usual
// value, drift, events) with measurement noise and, now and then, an
// artefact.
func (g *gen) measure(kind rpm.Kind, t time.Time, evs []eventSize) Reading {
	day := g.dayOf(t)
	d := g.drift[day]
	o := offsetAt(evs, t)
	hour := float64(t.Sub(g.start)%(24*time.Hour)) / float64(time.Hour)
	spec, _ := rpm.SpecOf(kind)
	r := Reading{Observation: rules.Observation{Kind: kind, Unit: spec.Unit, ObservedAt: t}}
	switch kind {
	case rpm.BloodPressure:
		g.bp(&r, d, o, hour < 12)
	case rpm.HeartRate:
		g.pulse(&r, g.ph.hr+d.hr+o.hr)
	case rpm.SpO2:
		g.spo2(&r, g.ph.spo2+d.spo2+o.spo2)
	case rpm.BodyWeight:
		r.Swing = g.swing[min(day, len(g.swing)-1)]
		g.weight(&r, g.ph.weight+d.weight+o.weight+r.Swing)
	case rpm.BodyTemperature:
		v := g.ph.temp + d.temp + o.temp
		if hour >= 12 {
			v += 0.3 // diurnal
		}
		g.temperature(&r, v)
	case rpm.BloodGlucose:
		g.glucoseReading(&r, d, o, hour)
	case rpm.RespiratoryRate:
		v := g.ph.rr + d.rr + o.rr
		r.TrueValue = v
		m := v + g.norm(0, 1.5) // counting error
		if g.artefact(0.01) {
			r.Artefact = true
			m += g.unif(8, 14)
		}
		r.Value = math.Round(m)
	}
	return r
}

// artefact draws whether a reading is spoiled, at base times the cohort's
// artefact rate.
func (g *gen) artefact(base float64) bool { return g.chance(base * g.cfg.ArtefactRate) }

func (g *gen) bp(r *Reading, d, o offsets, morning bool) {
	sys, dia := g.ph.sys+d.sys+o.sys, g.ph.dia+d.dia+o.dia
	if morning {
		sys, dia = sys+5, dia+3 // morning surge
	}
	r.TrueSys, r.TrueDia, r.TrueValue = sys, dia, sys
	// Within-session variability of home BP, SD about 6/4 mm Hg.
	ms, md := sys+g.norm(0, 6), dia+g.norm(0, 4)
	// Talking, moving, a cuff over clothing or too small: falsely high
	// readings, 2 % of home readings.
	if g.artefact(0.02) {
		r.Artefact = true
		if g.cfg.Artefacts == ArtefactsDevice {
			up := g.unif(20, 40) // a cuff over a sleeve
			ms, md = ms+up, md+up/2
		} else {
			ms += g.unif(25, 55)
			md += g.unif(12, 30)
		}
	}
	r.Systolic, r.Diastolic = math.Round(ms), math.Round(md)
	r.Value = r.Systolic
}

func (g *gen) pulse(r *Reading, v float64) {
	r.TrueValue = v
	m := v + g.norm(0, 4)
	// Miscounts (irregular rhythm, movement): doubled or spurious high.
	if g.artefact(0.012) {
		r.Artefact = true
		if g.cfg.Artefacts == ArtefactsDevice || g.chance(0.5) {
			m *= 2
		} else {
			m += g.unif(45, 75)
		}
	}
	r.Value = math.Round(m)
}

func (g *gen) spo2(r *Reading, v float64) {
	r.TrueValue = v
	// Pulse oximeter accuracy: about ±2 % (ARMS); 1 point of reading noise
	// around the true value.
	m := v + g.norm(0, 1.0)
	// Motion, cold fingers, nail polish: falsely low readings.
	if g.artefact(0.02) {
		r.Artefact = true
		if g.cfg.Artefacts == ArtefactsDevice {
			m = g.unif(70, 85) // a moving finger
		} else {
			m -= g.unif(5, 12)
		}
	}
	r.Value = clamp(math.Round(m), 50, 100)
}

func (g *gen) weight(r *Reading, v float64) {
	r.TrueValue = v
	m := v + g.norm(0, 0.3) // clothing, meal, time of day
	if g.artefact(0.005) {
		r.Artefact = true // someone else on the scale, a scale on carpet
		m += g.unif(2.5, 6) * float64(1-2*g.rng.IntN(2))
	}
	r.Value = math.Round(m*10) / 10
}

func (g *gen) temperature(r *Reading, v float64) {
	r.TrueValue = v
	m := v + g.norm(0, 0.15)
	// A hot drink, a thermometer not under the tongue.
	if g.artefact(0.01) {
		r.Artefact = true
		if g.chance(0.5) {
			m += g.unif(0.9, 1.8)
		} else {
			m -= g.unif(0.8, 1.5)
		}
	}
	r.Value = math.Round(m*10) / 10
}

func (g *gen) glucoseReading(r *Reading, d, o offsets, hour float64) {
	base := g.ph.glucose + d.glucose
	if hour > 11 {
		base += g.unif(20, 80) // after a meal
	}
	v := math.Max(base+o.glucose, 30)
	if o.glucose < 0 {
		v = math.Max(g.ph.glucose+o.glucose, 35) // a hypo overrides the meal
	}
	r.TrueValue = v
	m := v * (1 + g.norm(0, 0.05)) // meter error, ISO 15197
	if g.artefact(0.01) {
		r.Artefact = true // sugar on the finger
		m += g.unif(80, 180)
	}
	r.Value = math.Round(m)
}

// The delay of an answered request to measure.
const (
	retakeMinDelay = 2 * time.Minute
	retakeMaxDelay = 8 * time.Minute
)

// answer returns the reading a patient takes when asked to measure kind
// after the finding at t (a retake, or a request after a symptom report),
// or false when the patient does not answer. It depends only on the seed,
// the patient and the request.
func (p *Patient) answer(cfg Config, kind rpm.Kind, t time.Time, n int) (Reading, bool) {
	g := *p.gen
	g.rng = rand.New(rand.NewPCG(cfg.Seed^0x5eed5eed5eed, uint64(p.index)<<32|uint64(t.Unix())&0xffffffff))
	if !g.chance(cfg.answerRate()) {
		return Reading{}, false
	}
	at := t.Add(retakeMinDelay + time.Duration(g.rng.Int64N(int64(retakeMaxDelay-retakeMinDelay))))
	r := g.measure(kind, at, p.sized)
	r.ID = fmt.Sprintf("%s-asked-%d", p.ID, n)
	r.Asked = true
	return r, true
}
