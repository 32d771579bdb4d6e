package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tendhealth/tend/rules"
	"github.com/tendhealth/tend/rules/sim"
)

// simPack is a pack scored by simulate, with the name it is shown under.
type simPack struct {
	name string
	pack *rules.Pack
}

// simulate scores the default rule pack (and a candidate, side by side)
// over a synthetic cohort: sensitivity per injected deterioration and
// routine, and needless pages per patient-week. It needs no database.
func simulate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("simulate", "[--pack FILE] [--matrix] [--seed N | --seeds 1-5] [--patients N] [--weeks N] [--artefact-rate X] [--artefacts normal|device] [--answer-rate X] [--spo2-per-day N] [--bp-per-day N] [--glucose-per-day N] [--weigh-days X] [--html FILE]",
		"Scores the default rule pack (and a candidate, side by side) over a synthetic cohort. Needs no database.\n"+
			"--matrix runs the grid of artefact profiles (normal, double, device) and answer rates (0.6, 0.8, 1.0) over\n"+
			"every measurement routine and prints one table.", stdout, stderr)
	def := sim.DefaultConfig()
	packFile := fs.String("pack", "", "a candidate rule pack (YAML or JSON), compared with the default pack")
	matrix := fs.Bool("matrix", false, "run the grid: every artefact profile and answer rate, every routine, pooled over --seeds")
	seeds := fs.String("seeds", "1-5", "with --matrix: the seeds pooled, as a range (1-5) or a list (1,2,7)")
	seed := fs.Uint64("seed", def.Seed, "cohort seed: the same seed gives the same cohort")
	patients := fs.Int("patients", def.Patients, "patients in the cohort (per seed with --matrix; default 1000 there)")
	weeks := fs.Int("weeks", def.Weeks, "weeks simulated")
	artefacts := fs.Float64("artefact-rate", def.ArtefactRate, "multiplier of the device artefact rates (2 doubles them)")
	profile := fs.String("artefacts", "normal", "shape of the artefacts: normal, or device (oximeter 70–85 %, cuff over a sleeve, doubled pulse)")
	answer := fs.Float64("answer-rate", def.AnswerRate, "share of requests to measure (retakes, requests after symptoms) patients answer")
	var rt sim.Routine
	fs.IntVar(&rt.SpO2PerDay, "spo2-per-day", 0, "pulse-oximeter sessions a day: 1, 2 or 4 (0: each patient draws one)")
	fs.IntVar(&rt.BPPerDay, "bp-per-day", 0, "blood-pressure sessions a day: 1 or 2 (0: drawn)")
	fs.IntVar(&rt.GlucosePerDay, "glucose-per-day", 0, "glucose checks a day: 1 to 4 (0: drawn)")
	fs.Float64Var(&rt.WeighDays, "weigh-days", 0, "share of mornings heart-failure patients weigh: 0.9 or 0.7 (0: drawn)")
	htmlFile := fs.String("html", "", "also write a self-contained HTML report with plots to this file")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	packs, err := simPacks(*packFile, stderr)
	if err != nil {
		return err
	}
	if *matrix {
		n := *patients
		if !fs.set("patients") {
			n = sim.DefaultMatrix().Patients
		}
		return simulateMatrix(stdout, packs, *seeds, n, *weeks)
	}
	prof, ok := sim.ProfileNamed(*profile)
	if !ok || *profile == "double" {
		return &exitError{code: 2, err: fmt.Errorf("--artefacts: expected normal or device (double the rate with --artefact-rate 2)")}
	}
	cfg := sim.Config{Seed: *seed, Patients: *patients, Weeks: *weeks, ArtefactRate: *artefacts, Artefacts: prof.Artefacts,
		AnswerRate: *answer, Routine: rt}
	if err := cfg.Check(); err != nil {
		return &exitError{code: 2, err: err}
	}
	cohort := sim.Generate(cfg)
	var reps []sim.Named
	for _, pk := range packs {
		reps = append(reps, sim.Named{Pack: pk.name, Report: sim.Score(cfg, cohort, pk.pack)})
	}
	if err := sim.WriteText(stdout, reps); err != nil {
		return err
	}
	return writeSimHTML(*htmlFile, reps)
}

// simPacks returns the default pack and, when file is given, the candidate
// in it.
func simPacks(file string, stderr io.Writer) ([]simPack, error) {
	p, err := rules.Default()
	if err != nil {
		return nil, err
	}
	packs := []simPack{{"default", p}}
	if file == "" {
		return packs, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if ps := rules.Check(data); len(ps) > 0 {
		printProblems(stderr, file, ps)
		return nil, &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %s", len(ps), file)}
	}
	cand, err := rules.Load(data)
	if err != nil {
		return nil, err
	}
	return append(packs, simPack{file, cand}), nil
}

// simulateMatrix runs the grid for each pack and prints its table.
func simulateMatrix(stdout io.Writer, packs []simPack, seeds string, patients, weeks int) error {
	mc := sim.DefaultMatrix()
	list, err := parseSeeds(seeds)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--seeds: %w", err)}
	}
	mc.Seeds, mc.Patients, mc.Weeks = list, patients, weeks
	if err := mc.Check(); err != nil {
		return &exitError{code: 2, err: err}
	}
	names := make([]string, len(packs))
	ps := make([]*rules.Pack, len(packs))
	for i, p := range packs {
		names[i], ps[i] = p.name, p.pack
	}
	ms, err := sim.RunMatrix(context.Background(), mc, ps...)
	if err != nil {
		return err
	}
	return sim.WriteMatrix(stdout, names, ms)
}

// parseSeeds reads "1-5" or "1,2,7".
func parseSeeds(s string) ([]uint64, error) {
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := strconv.ParseUint(lo, 10, 64)
		b, err2 := strconv.ParseUint(hi, 10, 64)
		if err1 != nil || err2 != nil || b < a || b-a >= 20 {
			return nil, fmt.Errorf("expected a range such as 1-5 of at most 20 seeds")
		}
		var out []uint64
		for v := a; v <= b; v++ {
			out = append(out, v)
		}
		return out, nil
	}
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("expected seeds such as 1-5 or 1,2,7")
		}
		out = append(out, v)
	}
	return out, nil
}

// writeSimHTML writes the HTML report to file, when one is named.
func writeSimHTML(file string, reps []sim.Named) error {
	if file == "" {
		return nil
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := sim.WriteHTML(f, reps); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
