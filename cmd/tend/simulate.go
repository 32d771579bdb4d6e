package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tendhealth/tend/rules"
	"github.com/tendhealth/tend/rules/sim"
)

// simulate scores the default rule pack (and a candidate, side by side)
// over a synthetic cohort: sensitivity per injected deterioration and
// non-actionable alerts per patient-week. It needs no database.
func simulate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("simulate", "[--pack FILE] [--seed N] [--patients N] [--weeks N] [--artefact-rate X] [--html FILE]",
		"Scores the default rule pack (and a candidate, side by side) over a synthetic cohort. Needs no database.", stdout, stderr)
	def := sim.DefaultConfig()
	packFile := fs.String("pack", "", "a candidate rule pack (YAML or JSON), compared with the default pack")
	seed := fs.Uint64("seed", def.Seed, "cohort seed: the same seed gives the same cohort")
	patients := fs.Int("patients", def.Patients, "patients in the cohort")
	weeks := fs.Int("weeks", def.Weeks, "weeks simulated")
	artefacts := fs.Float64("artefact-rate", def.ArtefactRate, "multiplier of the device artefact rates (2 doubles them)")
	htmlFile := fs.String("html", "", "also write a self-contained HTML report with plots to this file")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg := sim.Config{Seed: *seed, Patients: *patients, Weeks: *weeks, ArtefactRate: *artefacts}
	if err := cfg.Check(); err != nil {
		return &exitError{code: 2, err: err}
	}
	packs := []struct {
		name string
		pack *rules.Pack
	}{}
	p, err := rules.Default()
	if err != nil {
		return err
	}
	packs = append(packs, struct {
		name string
		pack *rules.Pack
	}{"default", p})
	if *packFile != "" {
		data, err := os.ReadFile(*packFile)
		if err != nil {
			return err
		}
		if ps := rules.Check(data); len(ps) > 0 {
			printProblems(stderr, *packFile, ps)
			return &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %s", len(ps), *packFile)}
		}
		cand, err := rules.Load(data)
		if err != nil {
			return err
		}
		packs = append(packs, struct {
			name string
			pack *rules.Pack
		}{*packFile, cand})
	}
	cohort := sim.Generate(cfg)
	var reps []sim.Named
	for _, pk := range packs {
		reps = append(reps, sim.Named{Pack: pk.name, Report: sim.Score(cfg, cohort, pk.pack)})
	}
	if err := sim.WriteText(stdout, reps); err != nil {
		return err
	}
	if *htmlFile == "" {
		return nil
	}
	f, err := os.Create(*htmlFile)
	if err != nil {
		return err
	}
	if err := sim.WriteHTML(f, reps); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *htmlFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", *htmlFile, err)
	}
	return nil
}
