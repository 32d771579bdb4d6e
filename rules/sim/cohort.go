// Package sim is Tend's cohort simulator: it generates a synthetic cohort of
// remotely monitored patients (programs hypertension, heart failure, COPD and
// diabetes) with the measurement routines real programs use, physiology,
// measurement noise, device artefacts and symptom reports, injects labelled
// deteriorations, replays every patient through a rule pack with
// rules.Pack.Replay — the code path of live alerting, with grouping,
// hysteresis, re-arm, retake and requests to measure — and scores the pack:
// sensitivity per event type and routine, time from detectability to the
// page, and needless pages per patient-week with their cause.
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
	// Artefacts is the shape of the artefacts: ArtefactsNormal (zero) or
	// ArtefactsDevice.
	Artefacts ArtefactProfile
	// AnswerRate is the share of requests to measure (retakes, requests
	// after a symptom report) that patients answer; 0 means
	// DefaultAnswerRate.
	AnswerRate float64
	// Routine fixes the measurement routine of every patient; its zero
	// fields are drawn per patient (a mixed cohort).
	Routine Routine
}

// DefaultAnswerRate is the share of requests to measure patients answer
// when Config.AnswerRate is 0.
const DefaultAnswerRate = 0.8

// DefaultConfig is the cohort `tend simulate` uses without flags.
func DefaultConfig() Config {
	return Config{Seed: 1, Patients: 400, Weeks: 8, ArtefactRate: 1, AnswerRate: DefaultAnswerRate}
}

// Check reports what is wrong with the config.
func (c Config) Check() error {
	switch {
	case c.Patients < 1 || c.Patients > 100_000:
		return fmt.Errorf("patients must be between 1 and 100000")
	case c.Weeks < 1 || c.Weeks > 104:
		return fmt.Errorf("weeks must be between 1 and 104")
	case !(c.ArtefactRate >= 0 && c.ArtefactRate <= 20):
		return fmt.Errorf("artefact rate must be between 0 and 20")
	case !(c.AnswerRate >= 0 && c.AnswerRate <= 1):
		return fmt.Errorf("answer rate must be between 0 and 1")
	case c.Artefacts != ArtefactsNormal && c.Artefacts != ArtefactsDevice:
		return fmt.Errorf("unknown artefact profile %q: expected normal or device", c.Artefacts)
	}
	return c.Routine.check()
}

func (c Config) answerRate() float64 {
	if c.AnswerRate == 0 {
		return DefaultAnswerRate
	}
	return c.AnswerRate
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
	// Asked marks a reading taken because Tend asked for it (a retake, or
	// a request after a symptom report), not in the patient's routine.
	Asked bool
	// Swing is the benign weight swing of the day (kg), for weights.
	Swing float64
}

// Patient is one simulated patient.
type Patient struct {
	ID       string
	Programs []string
	// Routine is how the patient measures.
	Routine  Routine
	Readings []Reading // in time order
	// Reports are the patient's symptom reports, in time order.
	Reports []rules.SymptomReport
	Events  []Event
	// index, gen and sized let Score take the readings a pack asks for.
	index int
	gen   *gen
	sized []eventSize
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
	p := Patient{ID: fmt.Sprintf("p%05d", i), Programs: drawPrograms(rng)}
	g.has = func(prog string) bool { return slices.Contains(p.Programs, prog) }
	g.physiology()
	p.Routine = g.routine()
	p.Events = g.events()
	g.size(p.Events)
	g.gaps = g.adherenceGaps()
	p.Readings = g.readings(p.ID, p.Events)
	p.Reports = g.reports(p.ID, p.Events)
	p.index, p.gen, p.sized = i, g, g.sized
	return p
}

// drawPrograms draws the programs of a typical remote-monitoring service;
// comorbidity is the rule (most heart-failure and diabetes patients are
// hypertensive).
func drawPrograms(rng *rand.Rand) []string {
	var progs []string
	chance := func(p float64) bool { return rng.Float64() < p }
	switch u := rng.Float64(); {
	case u < 0.35:
		progs = []string{"hypertension"}
	case u < 0.60:
		progs = []string{"heart_failure"}
		if chance(0.6) {
			progs = append(progs, "hypertension")
		}
	case u < 0.80:
		progs = []string{"copd"}
		if chance(0.2) {
			progs = append(progs, "heart_failure")
		}
	default:
		progs = []string{"diabetes"}
		if chance(0.5) {
			progs = append(progs, "hypertension")
		}
	}
	slices.Sort(progs)
	return progs
}

type gen struct {
	start time.Time
	cfg   Config
	rng   *rand.Rand
	days  int
	has   func(string) bool
	ph    physiology
	rt    Routine
	// day-to-day drift per day index.
	drift []offsets
	// benign weight swings (a salty meal, a missed diuretic dose): day → kg.
	swing []float64
	sized []eventSize
	// gaps marks the days the patient measures nothing (away, unwell,
	// out of the habit).
	gaps []bool
}

func (g *gen) norm(mean, sd float64) float64 { return mean + sd*g.rng.NormFloat64() }
func (g *gen) unif(lo, hi float64) float64   { return lo + (hi-lo)*g.rng.Float64() }
func (g *gen) chance(p float64) bool         { return g.rng.Float64() < p }
func clamp(v, lo, hi float64) float64        { return math.Max(lo, math.Min(hi, v)) }

// dayAt returns the time hours after the start of day.
func (g *gen) dayAt(day int, hours float64) time.Time {
	return g.start.Add(time.Duration(day)*24*time.Hour + time.Duration(hours*float64(time.Hour)))
}

// dayOf returns the day index of t, within the drift arrays.
func (g *gen) dayOf(t time.Time) int {
	return min(max(int(t.Sub(g.start)/(24*time.Hour)), 0), len(g.drift)-1)
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
