package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesCheckListsEveryProblem(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "pack.yaml", `- id: ok
  title: Fine
  kind: spo2
  when: value < 90
  urgency: high
- id: bad
  title: Broken
  kind: spo2
  when: value <
  urgency: soon
`)
	var out bytes.Buffer
	err := run(context.Background(), []string{"rules", "check", file}, &out, &out)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	for _, want := range []string{file + ":9: [1].when:", file + ":10: [1].urgency:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRulesBacktestCommand(t *testing.T) {
	t.Parallel()
	pool := enginetest.NewPool(t)
	ctx := context.Background()
	eng, err := engine.New(engine.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	doc, p := teamWithPatient(t, ctx, eng, "Team", "Dr Ada Osei", "Sam Lee")
	v := 85.0
	if _, err := eng.Ingest(ctx, doc, engine.IngestRequest{PatientID: p.ID,
		Readings: []rpm.Reading{{Kind: rpm.SpO2, Value: &v, Unit: "%", ObservedAt: time.Now().Add(-2 * time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "TEND_DATABASE_URL" {
			return pool.Config().ConnString()
		}
		return ""
	}

	var out bytes.Buffer
	if err := rulesCmd(ctx, env, []string{"backtest", "--rule-id", "spo2-critical", "--since", "1d"}, &out, &out); err != nil {
		t.Fatalf("backtest: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "would have produced 1 findings and opened 1 alerts") || !strings.Contains(out.String(), p.ID.String()) {
		t.Errorf("output:\n%s", out.String())
	}

	// A rule from a pack file, as JSON.
	file := writeFile(t, "draft.yaml", `- id: spo2-under-90
  title: SpO2 under 90
  kind: spo2
  when: value < 90
  urgency: high
- id: other
  title: Other
  symptom: cough
  urgency: low
`)
	out.Reset()
	if err := rulesCmd(ctx, env, []string{"backtest", "--file", file, "--rule-id", "spo2-under-90", "--json"}, &out, &out); err != nil {
		t.Fatalf("backtest --file: %v\n%s", err, out.String())
	}
	var res engine.BacktestResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.RuleID != "spo2-under-90" || res.Findings != 1 {
		t.Errorf("json output %s: %v", out.String(), err)
	}
	err = rulesCmd(ctx, env, []string{"backtest", "--file", file}, &out, &out)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("a pack without --rule-id: err = %v, want exit 2", err)
	}

	// --org replays that organisation's patients alone (by slug or id).
	if _, err := pool.Exec(ctx, `INSERT INTO organisations (id, name, slug) VALUES (gen_random_uuid(), 'Clinic B', 'clinic-b')`); err != nil {
		t.Fatal(err)
	}
	for org, findings := range map[string]int{"clinic-b": 0, "default": 1, "00000000-0000-0000-0000-000000000001": 1} {
		out.Reset()
		if err := rulesCmd(ctx, env, []string{"backtest", "--rule-id", "spo2-critical", "--since", "1d", "--org", org, "--json"}, &out, &out); err != nil {
			t.Fatalf("backtest --org %s: %v\n%s", org, err, out.String())
		}
		res = engine.BacktestResult{}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Findings != findings || res.PatientsScanned != findings {
			t.Errorf("backtest --org %s: %s, %v; want %d findings over %d patients", org, out.String(), err, findings, findings)
		}
	}
	err = rulesCmd(ctx, env, []string{"backtest", "--rule-id", "spo2-critical", "--org", "nowhere"}, &out, &out)
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("an unknown --org: err = %v, want exit 2", err)
	}
}
