package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/rules"
)

type ruleJSON struct {
	ID         string          `json:"id"`
	Version    int             `json:"version"`
	Enabled    bool            `json:"enabled"`
	Type       string          `json:"type"`
	Definition json.RawMessage `json:"definition"`
	Versions   []struct {
		Version int  `json:"version"`
		Enabled bool `json:"enabled"`
	} `json:"versions"`
}

type ruleProblemJSON struct {
	Status int `json:"status"`
	Errors []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
		Line   int    `json:"line"`
	} `json:"errors"`
}

func TestRulesAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)

	// Clinicians read the rules; the default pack is there, version 1.
	defaults, err := rules.DefaultRules()
	if err != nil {
		t.Fatal(err)
	}
	r := s.clinician.do("GET", "/v1/rules", nil)
	var list struct {
		Items      []ruleJSON `json:"items"`
		NextCursor *string    `json:"next_cursor"`
	}
	r.decode(t, &list)
	if r.status != http.StatusOK || len(list.Items) != len(defaults) || list.Items[0].ID != "bp-crisis" || list.Items[0].Version != 1 || !list.Items[0].Enabled {
		t.Fatalf("list rules: %d %s", r.status, r.body)
	}
	var one ruleJSON
	r = s.clinician.do("GET", "/v1/rules/chest-pain", nil)
	r.decode(t, &one)
	if r.status != http.StatusOK || one.Type != "symptom" || len(one.Versions) != 1 {
		t.Errorf("get rule: %d %s", r.status, r.body)
	}
	wantProblem(t, s.clinician.do("GET", "/v1/rules/no-such-rule", nil), http.StatusNotFound)
	wantProblem(t, s.device.do("GET", "/v1/rules", nil), http.StatusForbidden)

	// Admins create; clinicians may not.
	rule := `{"id": "temp-high-fever", "title": "High fever", "kind": "body_temperature",
		"when": "value >= params.max", "params": {"max": 39.5}, "urgency": "high"}`
	wantProblem(t, s.clinician.do("POST", "/v1/rules", rule), http.StatusForbidden)
	r = s.admin.do("POST", "/v1/rules", rule)
	r.decode(t, &one)
	if r.status != http.StatusCreated || one.Version != 1 || r.header.Get("Location") != "/v1/rules/temp-high-fever" {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	wantProblem(t, s.admin.do("POST", "/v1/rules", rule), http.StatusConflict)

	// Every problem of an invalid rule, with field, reason and line.
	bad := "{\n  \"id\": \"Bad Id\",\n  \"title\": \"x\",\n  \"kind\": \"spo2\",\n  \"when\": \"value < params.min\",\n  \"urgency\": \"soon\",\n  \"colour\": \"red\"\n}"
	r = s.admin.do("POST", "/v1/rules", bad)
	if r.status != http.StatusUnprocessableEntity || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("invalid rule: %d %s", r.status, r.body)
	}
	var p ruleProblemJSON
	r.decode(t, &p)
	lines := map[string]int{}
	for _, e := range p.Errors {
		lines[e.Field] = e.Line
		if e.Reason == "" {
			t.Errorf("problem without reason: %+v", e)
		}
	}
	for field, line := range map[string]int{"id": 2, "when": 5, "urgency": 6, "colour": 7} {
		if lines[field] != line {
			t.Errorf("problem on %s at line %d, want line %d: %s", field, lines[field], line, r.body)
		}
	}
	wantProblem(t, s.admin.do("POST", "/v1/rules", `{"id": "x",`), http.StatusBadRequest)

	// Every change is a new version: a threshold, then disabling.
	def := strings.Replace(rule, "39.5", "39", 1)
	r = s.admin.do("PUT", "/v1/rules/temp-high-fever", def)
	r.decode(t, &one)
	if r.status != http.StatusOK || one.Version != 2 || len(one.Versions) != 2 {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	r = s.admin.do("PUT", "/v1/rules/temp-high-fever", `{"enabled": false}`)
	r.decode(t, &one)
	if r.status != http.StatusOK || one.Version != 3 || one.Enabled {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	wantProblem(t, s.admin.do("PUT", "/v1/rules/temp-high-fever", `{"enabled": true, "version": 2}`), http.StatusConflict)
	wantProblem(t, s.admin.do("PUT", "/v1/rules/temp-high-fever", `{"enabled": "yes"}`), http.StatusUnprocessableEntity, "enabled")
	wantProblem(t, s.admin.do("PUT", "/v1/rules/no-such-rule", `{"enabled": true}`), http.StatusNotFound)
	wantProblem(t, s.clinician.do("PUT", "/v1/rules/temp-high-fever", `{"enabled": true}`), http.StatusForbidden)
	// The definition read back is accepted as is (nothing changed: no version).
	r = s.admin.do("GET", "/v1/rules/temp-high-fever", nil)
	r.decode(t, &one)
	r = s.admin.do("PUT", "/v1/rules/temp-high-fever", []byte(one.Definition))
	r.decode(t, &one)
	if r.status != http.StatusOK || one.Version != 3 {
		t.Errorf("round trip: %d %s", r.status, r.body)
	}

	// The changes are audited.
	r = s.admin.do("GET", "/v1/audit?limit=500", nil)
	for _, action := range []string{"rule.create", "rule.update", "rule.disable"} {
		if !strings.Contains(string(r.body), `"action":"`+action+`"`) {
			t.Errorf("no %s audit entry", action)
		}
	}
}

func TestRuleChangeAppliesToIngestAndAlertsRecordTheVersion(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	r := s.admin.do("PUT", "/v1/rules/bp-crisis", `{"title": "Blood pressure in crisis range", "kind": "blood_pressure",
		"when": "systolic >= params.systolic_max || diastolic >= params.diastolic_max",
		"params": {"systolic_max": 170, "diastolic_max": 110}, "urgency": "critical"}`)
	if r.status != http.StatusOK {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	// 172 crosses the new threshold; the retake a minute later confirms it.
	at := time.Now().UTC().Add(-2 * time.Minute).Format(time.RFC3339)
	s.device.do("POST", "/v1/patients/"+s.patientID+"/readings",
		fmt.Sprintf(`{"kind": "blood_pressure", "systolic": 172, "diastolic": 90, "unit": "mm[Hg]", "observed_at": %q}`, at))
	at = time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	r = s.device.do("POST", "/v1/patients/"+s.patientID+"/readings",
		fmt.Sprintf(`{"kind": "blood_pressure", "systolic": 173, "diastolic": 90, "unit": "mm[Hg]", "observed_at": %q}`, at))
	var res struct{ Alerts []struct{ ID, RuleID string } }
	r.decode(t, &res)
	if r.status != http.StatusCreated || len(res.Alerts) != 1 {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	r = s.clinician.do("GET", "/v1/alerts/"+res.Alerts[0].ID, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"rule_version":2`) {
		t.Errorf("alert does not record version 2: %s", r.body)
	}
}

func TestRuleErrorsAndBacktestAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	r := s.admin.do("POST", "/v1/rules", `{"id": "hr-above-usual", "title": "Heart rate above usual", "kind": "heart_rate",
		"when": "value > avg(\"7d\") + 20.0", "urgency": "medium"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	now := time.Now().UTC()
	var items []map[string]any
	for i := range 5 {
		items = append(items, map[string]any{"kind": "heart_rate", "value": 70 + 20*i, "unit": "/min",
			"observed_at": now.Add(time.Duration(i-5) * time.Hour).Format(time.RFC3339)})
	}
	if r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", map[string]any{"readings": items}); r.status != http.StatusCreated {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	// The first reading had no history: one evaluation error, for admins.
	r = s.admin.do("GET", "/v1/rules/errors?rule_id=hr-above-usual", nil)
	var errs struct {
		Items []struct {
			RuleID    string `json:"rule_id"`
			PatientID string `json:"patient_id"`
			Error     string `json:"error"`
		} `json:"items"`
	}
	r.decode(t, &errs)
	if r.status != http.StatusOK || len(errs.Items) != 1 || errs.Items[0].PatientID != s.patientID || errs.Items[0].Error == "" {
		t.Fatalf("rule errors: %d %s", r.status, r.body)
	}
	wantProblem(t, s.clinician.do("GET", "/v1/rules/errors", nil), http.StatusForbidden)

	// Backtest a stored rule and a draft; nothing is created.
	var before struct{ Items []any }
	s.clinician.do("GET", "/v1/alerts?status=open,acknowledged,snoozed,resolved", nil).decode(t, &before)
	body := map[string]any{"rule_id": "hr-high", "since": now.Add(-24 * time.Hour).Format(time.RFC3339), "until": now.Format(time.RFC3339)}
	r = s.admin.do("POST", "/v1/rules/backtest", body)
	var bt struct {
		RuleID          string `json:"rule_id"`
		RuleVersion     int    `json:"rule_version"`
		PatientsScanned int    `json:"patients_scanned"`
		Findings        int    `json:"findings"`
		Alerts          int    `json:"alerts"`
		Patients        []struct {
			PatientID string `json:"patient_id"`
			Findings  int    `json:"findings"`
			Examples  []struct {
				At     time.Time `json:"at"`
				Opened bool      `json:"opened"`
			} `json:"examples"`
		} `json:"patients"`
	}
	r.decode(t, &bt)
	// Default pack v2: 130 is above 115 and pages; 150 an hour later is the
	// same episode, a finding held back by hysteresis.
	if r.status != http.StatusOK || bt.RuleID != "hr-high" || bt.RuleVersion != 1 || bt.Findings != 2 || bt.Alerts != 1 ||
		len(bt.Patients) != 1 || len(bt.Patients[0].Examples) != 2 || !bt.Patients[0].Examples[0].Opened || bt.Patients[0].Examples[1].Opened {
		t.Fatalf("backtest hr-high: %d %s", r.status, r.body)
	}
	draft := "{\"since\": \"" + now.Add(-24*time.Hour).Format(time.RFC3339) + "\",\n\"rule\": {\"id\": \"hr-100\", \"title\": \"HR over 100\",\n  \"kind\": \"heart_rate\", \"when\": \"value > 100\", \"urgency\": \"low\"}}"
	r = s.admin.do("POST", "/v1/rules/backtest", draft)
	r.decode(t, &bt)
	// 110 fires; 130 and 150 are the same episode (hysteresis holds them
	// back): three findings, one alert.
	if r.status != http.StatusOK || bt.RuleVersion != 0 || bt.Findings != 3 || bt.Alerts != 1 || bt.Patients[0].Examples[0].At.Sub(now) > -2*time.Hour {
		t.Fatalf("backtest draft: %d %s", r.status, r.body)
	}
	var after struct{ Items []any }
	s.clinician.do("GET", "/v1/alerts?status=open,acknowledged,snoozed,resolved", nil).decode(t, &after)
	if len(after.Items) != len(before.Items) {
		t.Errorf("alerts %d → %d: a backtest created alerts", len(before.Items), len(after.Items))
	}
	if r := s.clinician.do("GET", "/v1/rules/hr-100", nil); r.status != http.StatusNotFound {
		t.Errorf("backtested draft was stored: %d", r.status)
	}

	// Problems: a draft's fields are named rule.<field>, on the body's lines.
	r = s.admin.do("POST", "/v1/rules/backtest", "{\n\"rule\": {\"id\": \"x\", \"title\": \"x\",\n \"kind\": \"heart_rate\",\n \"when\": \"value >\", \"urgency\": \"low\"}}")
	var p ruleProblemJSON
	r.decode(t, &p)
	if r.status != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Field != "rule.when" || p.Errors[0].Line != 4 {
		t.Errorf("invalid draft: %d %s", r.status, r.body)
	}
	wantProblem(t, s.admin.do("POST", "/v1/rules/backtest", map[string]any{"rule_id": "hr-high", "since": "last week"}), http.StatusUnprocessableEntity, "since")
	wantProblem(t, s.admin.do("POST", "/v1/rules/backtest", map[string]any{"rule_id": "hr-high", "patient_ids": []string{"x"}}), http.StatusUnprocessableEntity, "patient_ids[0]")
	wantProblem(t, s.admin.do("POST", "/v1/rules/backtest", map[string]any{}), http.StatusUnprocessableEntity, "rule")
	wantProblem(t, s.admin.do("POST", "/v1/rules/backtest", map[string]any{"rule_id": "hr-high", "extra": 1}), http.StatusBadRequest)
	wantProblem(t, s.clinician.do("POST", "/v1/rules/backtest", map[string]any{"rule_id": "hr-high"}), http.StatusForbidden)
}
