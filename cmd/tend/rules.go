package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rules"
)

const rulesUsage = `usage: tend rules check FILE
       tend rules backtest (--rule-id ID | --file FILE [--rule-id ID]) [--org O] [--since T] [--until T]
                           [--patient ID]... [--program P]... [--examples N] [--json]
Run tend rules check -h or tend rules backtest -h for details.`

func rulesCmd(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return rulesCheck(args[1:], stdout, stderr)
		case "backtest":
			return rulesBacktest(ctx, env, args[1:], stdout, stderr)
		}
	}
	return groupUsage(args, rulesUsage, stdout)
}

// rulesCheck validates a rule pack and lists every problem with its line.
func rulesCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules check", "FILE", "Validates a rule pack (YAML or JSON) and lists every problem with its line; exits 1 on any.",
		stdout, stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, err: errors.New("usage: tend rules check FILE")}
	}
	file := fs.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	problems := rules.Check(data)
	printProblems(stdout, file, problems)
	if len(problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %s", len(problems), file)}
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	return nil
}

func printProblems(w io.Writer, file string, ps []rules.Problem) {
	for _, p := range ps {
		fmt.Fprintf(w, "%s:%d: %s: %s\n", file, p.Line, p.Field, p.Reason)
	}
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// rulesBacktest runs engine.Backtest against the database and prints the
// result.
func rulesBacktest(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules backtest", "(--rule-id ID | --file FILE [--rule-id ID]) [flags]",
		"Shows what a rule would have raised over the stored readings and symptom reports. Creates nothing.", stdout, stderr)
	ruleID := fs.String("rule-id", "", "a stored rule (or, with --file, the rule of that id in the pack)")
	file := fs.String("file", "", "a rule or rule pack file (YAML or JSON), backtested without being stored")
	since := fs.String("since", "", "start: RFC 3339 time or a duration back from now such as 30d (default: until - 30d)")
	until := fs.String("until", "", "end: RFC 3339 time or a duration back from now (default: now)")
	examples := fs.Int("examples", 0, "findings listed per patient (default 3, at most 20)")
	org := fs.String("org", "", "an organisation's id or slug: its patients, and --rule-id as it has the rule (its override, else\n"+
		"the default pack's) (default: the default pack's rule over every organisation's patients)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	dbURL := fs.String("database-url", "", databaseURLUsage)
	var patients, programs multiFlag
	fs.Var(&patients, "patient", "restrict to a patient id (repeatable)")
	fs.Var(&programs, "program", "restrict to patients of a program (repeatable)")
	if err := fs.parse(args); err != nil {
		return err
	}
	*dbURL = cmp.Or(*dbURL, env("TEND_DATABASE_URL"))
	if fs.NArg() > 0 || (*ruleID == "" && *file == "") {
		return &exitError{code: 2, err: errors.New("give --rule-id ID or --file FILE (tend rules backtest -h lists the flags)")}
	}
	now := time.Now()
	req := engine.BacktestRequest{Programs: programs, Examples: *examples}
	var err error
	if req.Since, err = parseWhen(*since, now); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--since: %w", err)}
	}
	if req.Until, err = parseWhen(*until, now); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--until: %w", err)}
	}
	for _, p := range patients {
		id, err := uuid.Parse(p)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--patient %q is not a patient id (UUID)", p)}
		}
		req.PatientIDs = append(req.PatientIDs, id)
	}
	if *file != "" {
		if req.Rule, err = ruleFromFile(*file, *ruleID, stdout); err != nil {
			return err
		}
	} else {
		req.RuleID = *ruleID
	}
	eng, done, err := adminEngine(ctx, env, stderr, *dbURL)
	if err != nil {
		return err
	}
	defer done()
	a := engine.System("cli:rules-backtest")
	if a.OrgID, err = orgID(ctx, eng, *org); err != nil {
		return err
	}
	res, err := eng.Backtest(ctx, a, req)
	var le *rules.LoadError
	if errors.As(err, &le) {
		printProblems(stdout, *file, le.Problems)
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) in the rule", len(le.Problems))}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printBacktest(stdout, res)
	return nil
}

// ruleFromFile reads the rule to backtest: the file's only rule, or the one
// with id from a pack. Problems are printed with their lines.
func ruleFromFile(file, id string, stdout io.Writer) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if ps := rules.Check(data); len(ps) > 0 {
		printProblems(stdout, file, ps)
		return nil, &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %s", len(ps), file)}
	}
	rs, err := rules.Parse(data)
	if err != nil {
		return nil, err
	}
	var pick []rules.Rule
	for _, r := range rs {
		if id == "" || r.ID == id {
			pick = append(pick, r)
		}
	}
	switch {
	case len(pick) == 0 && id != "":
		return nil, &exitError{code: 1, err: fmt.Errorf("%s has no rule %q", file, id)}
	case len(pick) != 1:
		return nil, &exitError{code: 2, err: fmt.Errorf("%s holds %d rules: pick one with --rule-id", file, len(pick))}
	}
	return json.Marshal(pick[0])
}

// parseWhen reads an RFC 3339 time or a duration back from now ("30d");
// empty is the zero time (the engine's default).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := rules.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 30d", s)
	}
	return now.Add(-d.Std()), nil
}

func printBacktest(w io.Writer, res engine.BacktestResult) {
	version := "not stored"
	if res.RuleVersion > 0 {
		version = fmt.Sprintf("version %d", res.RuleVersion)
	}
	fmt.Fprintf(w, "rule %s (%s), %s to %s\n", res.RuleID, version, res.Since.UTC().Format(time.RFC3339), res.Until.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "scanned %d patients, %d readings, %d symptom reports\n", res.PatientsScanned, res.ReadingsScanned, res.SymptomReportsScanned)
	fmt.Fprintf(w, "would have produced %d findings and opened %d alerts (%d evaluation errors)\n", res.Findings, res.Alerts, res.Errors)
	if len(res.Patients) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPATIENT\tFINDINGS\tALERTS\tERRORS\tFIRST\tEXAMPLES")
	for _, p := range res.Patients {
		first := "-"
		if p.FirstAt != nil {
			first = p.FirstAt.UTC().Format(time.RFC3339)
		}
		var ex []string
		for _, e := range p.Examples {
			s := e.At.UTC().Format(time.RFC3339)
			if e.Opened {
				s += " (opens alert)"
			}
			ex = append(ex, s)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", p.PatientID, p.Findings, p.Alerts, p.Errors, first, strings.Join(ex, ", "))
	}
	_ = tw.Flush()
	if res.Truncated {
		fmt.Fprintf(w, "(only the first %d patients are listed)\n", len(res.Patients))
	}
}
