package sim

import (
	"context"
	"fmt"

	"github.com/tendhealth/tend/rules"
)

// Profile is one artefact setting of the matrix: a shape and a rate.
type Profile struct {
	Name      string
	Artefacts ArtefactProfile
	Rate      float64
}

// Profiles are the matrix's artefact settings: the published rates, the
// same doubled, and device-specific failures.
func Profiles() []Profile {
	return []Profile{
		{Name: "normal", Artefacts: ArtefactsNormal, Rate: 1},
		{Name: "double", Artefacts: ArtefactsNormal, Rate: 2},
		{Name: "device", Artefacts: ArtefactsDevice, Rate: 1},
	}
}

// ProfileNamed returns the profile called name.
func ProfileNamed(name string) (Profile, bool) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// MatrixConfig is the grid `tend simulate --matrix` runs: every artefact
// profile with every answer rate, each over the cohorts of every seed, whose
// patients follow every routine (a mixed cohort: each patient draws a
// routine per vital sign, and the report slices events by it).
type MatrixConfig struct {
	Seeds       []uint64
	Patients    int
	Weeks       int
	Profiles    []Profile
	AnswerRates []float64
}

// DefaultMatrix is the grid the figures in docs/clinical-signal.md come
// from: 5 seeds of 1,000 patients for 8 weeks, three artefact profiles and
// answer rates 0.6, 0.8 and 1.0.
func DefaultMatrix() MatrixConfig {
	return MatrixConfig{Seeds: []uint64{1, 2, 3, 4, 5}, Patients: 1000, Weeks: 8, Profiles: Profiles(),
		AnswerRates: []float64{0.6, 0.8, 1.0}}
}

// PatientWeeks is the number of patient-weeks the grid simulates per pack.
func (m MatrixConfig) PatientWeeks() int {
	return len(m.Seeds) * m.Patients * m.Weeks * len(m.Profiles) * len(m.AnswerRates)
}

// Check reports what is wrong with the grid.
func (m MatrixConfig) Check() error {
	switch {
	case len(m.Seeds) == 0 || len(m.Seeds) > 20:
		return fmt.Errorf("seeds: give between 1 and 20")
	case len(m.Profiles) == 0:
		return fmt.Errorf("profiles: give at least one artefact profile")
	case len(m.AnswerRates) == 0:
		return fmt.Errorf("answer rates: give at least one")
	}
	for _, a := range m.AnswerRates {
		c := Config{Patients: m.Patients, Weeks: m.Weeks, ArtefactRate: 1, AnswerRate: a}
		if err := c.Check(); err != nil {
			return err
		}
		if a == 0 {
			return fmt.Errorf("answer rate must be above 0")
		}
	}
	for _, p := range m.Profiles {
		c := Config{Patients: m.Patients, Weeks: m.Weeks, ArtefactRate: p.Rate, Artefacts: p.Artefacts}
		if err := c.Check(); err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	return nil
}

// Cell is the score of one pack under one artefact profile and answer
// rate, pooled over the seeds.
type Cell struct {
	Profile    string
	AnswerRate float64
	Report     Report
}

// Matrix is the score of one pack over the grid.
type Matrix struct {
	Config MatrixConfig
	Cells  []Cell
}

// Cell returns the cell of a profile and answer rate.
func (m Matrix) Cell(profile string, answer float64) (Cell, bool) {
	for _, c := range m.Cells {
		if c.Profile == profile && c.AnswerRate == answer {
			return c, true
		}
	}
	return Cell{}, false
}

// RunMatrix scores each pack over the grid; the packs see the same
// cohorts. It stops with ctx's error when ctx ends first.
func RunMatrix(ctx context.Context, mc MatrixConfig, packs ...*rules.Pack) ([]Matrix, error) {
	if err := mc.Check(); err != nil {
		return nil, err
	}
	type cellKey struct{ profile, answer int }
	tallies := make([]map[cellKey]*tally, len(packs))
	for i := range tallies {
		tallies[i] = map[cellKey]*tally{}
	}
	stop := func() bool { return ctx.Err() != nil }
	for _, seed := range mc.Seeds {
		for pi, prof := range mc.Profiles {
			base := Config{Seed: seed, Patients: mc.Patients, Weeks: mc.Weeks, ArtefactRate: prof.Rate, Artefacts: prof.Artefacts}
			cohort := Generate(base)
			for ai, answer := range mc.AnswerRates {
				cfg := base
				cfg.AnswerRate = answer
				for k, pack := range packs {
					t := scoreTally(cfg, cohort, pack, stop)
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					key := cellKey{pi, ai}
					if tallies[k][key] == nil {
						tallies[k][key] = newTally()
					}
					tallies[k][key].merge(t)
				}
			}
		}
	}
	out := make([]Matrix, len(packs))
	for k := range packs {
		out[k].Config = mc
		for pi, prof := range mc.Profiles {
			for ai, answer := range mc.AnswerRates {
				cfg := Config{Patients: mc.Patients, Weeks: mc.Weeks, ArtefactRate: prof.Rate, Artefacts: prof.Artefacts, AnswerRate: answer}
				out[k].Cells = append(out[k].Cells, Cell{Profile: prof.Name, AnswerRate: answer,
					Report: tallies[k][cellKey{pi, ai}].report(cfg)})
			}
		}
	}
	return out, nil
}

// Goals are the targets a default pack is held to.
type Goals struct {
	// Sensitivity is the least share of each event type caught, LowerBound
	// the least lower end of its 95 % interval.
	Sensitivity, LowerBound float64
	// Needless is the most needless pages per patient-week at the normal
	// artefact profile (COPD its own), NeedlessDouble at double.
	Needless, NeedlessCOPD, NeedlessDouble float64
	// MedianReadings is the most routine readings from detectability to
	// the page, as a median.
	MedianReadings float64
}

// DefaultGoals are the goals of the default pack.
func DefaultGoals() Goals {
	return Goals{Sensitivity: 0.95, LowerBound: 0.92, Needless: 0.25, NeedlessCOPD: 0.4, NeedlessDouble: 0.35, MedianReadings: 1}
}

// Miss is one figure of a matrix that misses a goal.
type Miss struct {
	Profile    string
	AnswerRate float64
	// What names the figure (an event type and routine, or a program).
	What   string
	Figure float64
	Goal   float64
}

func (m Miss) String() string {
	return fmt.Sprintf("%s, answer %.1f: %s %.3f (goal %.3f)", m.Profile, m.AnswerRate, m.What, m.Figure, m.Goal)
}

// Misses lists the figures of m that miss g: each event type under each
// routine (sensitivity, interval, median readings) and the needless pages.
func (m Matrix) Misses(g Goals) []Miss {
	var out []Miss
	for _, c := range m.Cells {
		miss := func(what string, fig, goal float64) {
			out = append(out, Miss{Profile: c.Profile, AnswerRate: c.AnswerRate, What: what, Figure: fig, Goal: goal})
		}
		// Every routine: the share caught and the time to the page. The
		// interval is judged per event type: a routine's slice of one
		// type is too small for a narrow interval.
		for _, e := range c.Report.ByRoutine {
			if e.Measurable == 0 {
				continue
			}
			name := string(e.Type) + " · " + e.Routine
			if e.Sensitivity < g.Sensitivity {
				miss(name+" sensitivity", e.Sensitivity, g.Sensitivity)
			}
			if e.MedianReadings > g.MedianReadings {
				miss(name+" median readings to page", e.MedianReadings, g.MedianReadings)
			}
		}
		for _, e := range c.Report.Events {
			if e.Measurable > 0 && e.Low < g.LowerBound {
				miss(string(e.Type)+" interval low", e.Low, g.LowerBound)
			}
		}
		switch c.Profile {
		case "normal":
			if r := c.Report.PerPatientWeek; r > g.Needless {
				miss("needless pages per patient-week", r, g.Needless)
			}
			if r := c.Report.Program("copd").PerPatientWeek; r > g.NeedlessCOPD {
				miss("COPD needless pages per patient-week", r, g.NeedlessCOPD)
			}
		case "double":
			if r := c.Report.PerPatientWeek; r > g.NeedlessDouble {
				miss("needless pages per patient-week", r, g.NeedlessDouble)
			}
		}
	}
	return out
}
