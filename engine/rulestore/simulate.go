package rulestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
	"github.com/tendhealth/tend/rules/sim"
)

// Limits of a simulation through the API: it runs on the server's cores,
// so it is bounded in size, in time and to one at a time.
const (
	// MaxSimulatePatients bounds the patients per seed.
	MaxSimulatePatients = 1000
	// MaxSimulateWeeks bounds the weeks simulated.
	MaxSimulateWeeks = 8
	// MaxSimulateSeeds bounds the seeds pooled.
	MaxSimulateSeeds = 3
	// MaxSimulatePatientWeeks bounds the patient-weeks per pack over the
	// whole grid (seeds × profiles × answer rates × patients × weeks).
	MaxSimulatePatientWeeks = 12_000
	// MaxSimulateRules bounds the rules of a proposed change.
	MaxSimulateRules = 50
	// SimulateTimeout bounds how long one simulation may run.
	SimulateTimeout = 60 * time.Second
	// defaultSimulatePatients is the patients per seed when none is given.
	defaultSimulatePatients = 200
)

// ErrBusy is returned when the server is already running a simulation.
var ErrBusy = errors.New("busy")

// SimulateRequest asks for the figures of a proposed change to the active
// pack next to the active pack's own: rules that replace the rule of the
// same id (or are added), and new default values of params.
type SimulateRequest struct {
	// Rules are rule definitions (the rule language, as JSON).
	Rules []json.RawMessage
	// Params are new default param values: rule id → param → value.
	Params map[string]map[string]float64
	// Patients (per seed), Weeks and Seeds size the cohorts; Profiles
	// (normal, double, device) and AnswerRates choose the grid's cells.
	Patients    int
	Weeks       int
	Seeds       []uint64
	Profiles    []string
	AnswerRates []float64
}

// SimulateResult is the grid's figures for the active pack and the
// proposed one, cell by cell.
type SimulateResult struct {
	Patients    int       `json:"patients"`
	Weeks       int       `json:"weeks"`
	Seeds       []uint64  `json:"seeds"`
	Profiles    []string  `json:"profiles"`
	AnswerRates []float64 `json:"answer_rates"`
	// Changed lists the rule ids the proposal changes or adds.
	Changed  []string  `json:"changed"`
	Current  []SimCell `json:"current"`
	Proposed []SimCell `json:"proposed"`
	Elapsed  string    `json:"elapsed"`
}

// SimCell is one cell of the grid: an artefact profile and answer rate.
type SimCell struct {
	Profile    string  `json:"profile"`
	AnswerRate float64 `json:"answer_rate"`
	// Needless is the needless pages per patient-week, overall and per
	// program, with their causes.
	Needless SimNeedless  `json:"needless"`
	Programs []SimProgram `json:"programs"`
	// Events are per event type over every routine (routine "all"), then
	// per routine.
	Events []SimEvent `json:"events"`
}

// SimNeedless is a rate of needless pages and its causes (counts).
type SimNeedless struct {
	PerPatientWeek float64        `json:"per_patient_week"`
	Causes         map[string]int `json:"causes"`
}

// SimProgram is the needless pages of one program's patients.
type SimProgram struct {
	Program string `json:"program"`
	SimNeedless
}

// SimEvent is the sensitivity for one event type under one routine.
type SimEvent struct {
	Type        string  `json:"type"`
	Routine     string  `json:"routine"`
	Measurable  int     `json:"measurable"`
	Caught      int     `json:"caught"`
	Sensitivity float64 `json:"sensitivity"`
	Low         float64 `json:"low"`
	High        float64 `json:"high"`
	// MedianHours and P90Hours are from detectability to the page; null
	// when nothing was caught.
	MedianHours *float64 `json:"median_hours"`
	P90Hours    *float64 `json:"p90_hours"`
}

// Simulate scores the active pack (the actor's organisation's effective
// pack; the default pack for Tend itself) and a proposed change over the same
// synthetic cohorts (rules/sim), so that a lead sees what a change costs in
// needless pages and gains in sensitivity before saving it. It reads and
// writes nothing. Admins and care-team leads; one simulation at a time per
// process (ErrBusy otherwise), bounded in size and by SimulateTimeout.
func (rs *Service) Simulate(ctx context.Context, a access.Actor, req SimulateRequest) (SimulateResult, error) {
	if err := rs.mayTuneRules(ctx, a); err != nil {
		return SimulateResult{}, err
	}
	mc, err := checkSimulate(&req)
	if err != nil {
		return SimulateResult{}, err
	}
	current := rs.packOf(ruleOrg(a))
	proposed, changed, err := proposePack(current, req)
	if err != nil {
		return SimulateResult{}, err
	}
	select {
	case rs.simSlot <- struct{}{}:
		defer func() { <-rs.simSlot }()
	default:
		return SimulateResult{}, fmt.Errorf("simulate: another simulation is running: %w", ErrBusy)
	}
	ctx, cancel := context.WithTimeout(ctx, SimulateTimeout)
	defer cancel()
	start := rs.now()
	ms, err := sim.RunMatrix(ctx, mc, current, proposed)
	if errors.Is(err, context.DeadlineExceeded) {
		return SimulateResult{}, fmt.Errorf("simulate: took longer than %s; ask for fewer patients or cells: %w", SimulateTimeout, ErrBusy)
	}
	if err != nil {
		return SimulateResult{}, fmt.Errorf("simulate: %w", err)
	}
	res := SimulateResult{Patients: mc.Patients, Weeks: mc.Weeks, Seeds: mc.Seeds, Profiles: req.Profiles, AnswerRates: mc.AnswerRates,
		Changed: changed, Current: simCells(ms[0]), Proposed: simCells(ms[1]), Elapsed: rs.now().Sub(start).Round(time.Millisecond).String()}
	return res, nil
}

// mayTuneRules lets admins and the leads of any care team simulate.
func (rs *Service) mayTuneRules(ctx context.Context, a access.Actor) error {
	if a.Is(access.RoleAdmin) {
		return nil
	}
	if !a.Is(access.RoleClinician) {
		return fmt.Errorf("simulate: admins and care-team leads only: %w", access.ErrForbidden)
	}
	var lead bool
	if err := rs.pool.QueryRow(ctx, isLeadSQL, a.UserID).Scan(&lead); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if !lead {
		return fmt.Errorf("simulate: admins and care-team leads only: %w", access.ErrForbidden)
	}
	return nil
}

// checkSimulate validates a request, fills in its defaults and returns the
// grid to run.
func checkSimulate(req *SimulateRequest) (sim.MatrixConfig, error) {
	var v rpm.ValidationError
	if len(req.Rules) == 0 && len(req.Params) == 0 {
		v.Add("rules", "give rules or params to compare with the active pack")
	}
	if len(req.Rules) > MaxSimulateRules {
		v.Add("rules", fmt.Sprintf("at most %d rules", MaxSimulateRules))
	}
	req.Patients = defaultInt(req.Patients, defaultSimulatePatients)
	req.Weeks = defaultInt(req.Weeks, MaxSimulateWeeks)
	if req.Patients < 1 || req.Patients > MaxSimulatePatients {
		v.Add("patients", fmt.Sprintf("must be between 1 and %d", MaxSimulatePatients))
	}
	if req.Weeks < 1 || req.Weeks > MaxSimulateWeeks {
		v.Add("weeks", fmt.Sprintf("must be between 1 and %d", MaxSimulateWeeks))
	}
	if len(req.Seeds) == 0 {
		req.Seeds = []uint64{1}
	}
	if len(req.Seeds) > MaxSimulateSeeds {
		v.Add("seeds", fmt.Sprintf("at most %d seeds", MaxSimulateSeeds))
	}
	if len(req.Profiles) == 0 {
		req.Profiles = []string{"normal", "double", "device"}
	}
	mc := sim.MatrixConfig{Seeds: req.Seeds, Patients: req.Patients, Weeks: req.Weeks}
	for i, name := range req.Profiles {
		p, ok := sim.ProfileNamed(name)
		if !ok || slices.Index(req.Profiles, name) < i {
			v.Add(fmt.Sprintf("profiles[%d]", i), "must be normal, double or device, each once")
			continue
		}
		mc.Profiles = append(mc.Profiles, p)
	}
	if len(req.AnswerRates) == 0 {
		req.AnswerRates = []float64{sim.DefaultAnswerRate}
	}
	for i, a := range req.AnswerRates {
		if !(a > 0 && a <= 1) || slices.Index(req.AnswerRates, a) < i {
			v.Add(fmt.Sprintf("answer_rates[%d]", i), "must be above 0 and at most 1, each once")
		}
	}
	mc.AnswerRates = req.AnswerRates
	if err := v.OrNil(); err != nil {
		return mc, err
	}
	if n := mc.PatientWeeks(); n > MaxSimulatePatientWeeks {
		v.Add("patients", fmt.Sprintf("the grid would simulate %d patient-weeks per pack; at most %d (seeds × profiles × answer rates × patients × weeks)", n, MaxSimulatePatientWeeks))
	}
	return mc, v.OrNil()
}

func defaultInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// proposePack applies the proposal to the active pack's rules and compiles
// the result. It returns the rule ids changed or added; problems are a
// *rules.LoadError (fields "rules[i]…" for the rules, "params.<rule>.<param>"
// for the params).
func proposePack(current *rules.Pack, req SimulateRequest) (*rules.Pack, []string, error) {
	defs := current.Rules()
	var changed []string
	var v rpm.ValidationError
	var bad rules.LoadError
	for i, raw := range req.Rules {
		r, err := checkRule(raw)
		var le *rules.LoadError
		if errors.As(err, &le) {
			for _, pr := range le.Problems {
				pr.Field = strings.TrimSuffix(fmt.Sprintf("rules[%d].%s", i, pr.Field), ".")
				pr.Line = 0
				bad.Problems = append(bad.Problems, pr)
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		j := slices.IndexFunc(defs, func(d rules.Rule) bool { return d.ID == r.ID })
		if j >= 0 {
			defs[j] = r
		} else {
			defs = append(defs, r)
		}
		changed = append(changed, r.ID)
	}
	for id, ps := range req.Params {
		j := slices.IndexFunc(defs, func(d rules.Rule) bool { return d.ID == id })
		if j < 0 {
			v.Add("params."+id, "no such rule")
			continue
		}
		for name, val := range ps {
			if _, ok := defs[j].Params[name]; !ok || math.IsNaN(val) || math.IsInf(val, 0) {
				v.Add("params."+id+"."+name, "no such param of the rule, or not a finite number")
				continue
			}
			defs[j].Params = maps(defs[j].Params)
			defs[j].Params[name] = val
		}
		changed = append(changed, id)
	}
	if len(bad.Problems) > 0 {
		return nil, nil, &bad
	}
	if err := v.OrNil(); err != nil {
		return nil, nil, err
	}
	p, err := rules.Compile(defs)
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(changed)
	return p, slices.Compact(changed), nil
}

// maps returns a copy of m, so that a proposal never changes the active
// pack's definitions.
func maps(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// simCells turns a matrix into its JSON cells.
func simCells(m sim.Matrix) []SimCell {
	out := make([]SimCell, 0, len(m.Cells))
	for _, c := range m.Cells {
		r := c.Report
		cell := SimCell{Profile: c.Profile, AnswerRate: c.AnswerRate, Needless: needless(r.PerPatientWeek, r.NonActionable[:])}
		for _, p := range r.Programs {
			cell.Programs = append(cell.Programs, SimProgram{Program: p.Program, SimNeedless: needless(p.PerPatientWeek, p.NonActionable[:])})
		}
		for _, e := range slices.Concat(r.Events, r.ByRoutine) {
			routine := e.Routine
			if routine == "" {
				routine = "all"
			}
			cell.Events = append(cell.Events, SimEvent{Type: string(e.Type), Routine: routine, Measurable: e.Measurable, Caught: e.Caught,
				Sensitivity: e.Sensitivity, Low: e.Low, High: e.High, MedianHours: finite(e.MedianHours), P90Hours: finite(e.P90Hours)})
		}
		out = append(out, cell)
	}
	return out
}

func needless(rate float64, causes []int) SimNeedless {
	n := SimNeedless{PerPatientWeek: rate, Causes: map[string]int{}}
	for i, c := range sim.Causes() {
		n.Causes[c.String()] = causes[i]
	}
	return n
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
