package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// displayResult is what the console showed of an alert: its queue row, the
// value that fired, the plot's caption and legend, the history, the queue's
// loading state under a slow API, and who a #token= link signed in.
type displayResult struct {
	Row, Fired, Caption, Legend, History, Loading, TokenLink string
}

type pageChecks = struct {
	AxeRuns        int      `json:"axe_runs"`
	AxeViolations  []string `json:"axe_violations"`
	LayoutChecks   int      `json:"layout_checks"`
	LayoutProblems []string `json:"layout_problems"`
	Targets        int      `json:"targets_checked"`
}

// checkConsoleDisplay checks the console's clinical display and the checks
// the browser ran on every page: axe found nothing at WCAG 2.2 AA, nothing
// scrolled sideways or lay off-screen at 390×844, 768×1024 and 1360×1180,
// and every control on a phone was at least 44 px.
func checkConsoleDisplay(t *testing.T, mode string, c *pageChecks, d displayResult) {
	t.Helper()
	if !strings.Contains(d.Row, "Sam Lee") || !strings.Contains(d.Row, "SpO₂ 72 %") {
		t.Errorf("the queue row does not name the patient and the value that fired: %q", d.Row)
	}
	if !strings.HasPrefix(d.Fired, "Fired on SpO₂ 72 % at ") {
		t.Errorf("the alert does not state the value that fired: %q", d.Fired)
	}
	if !strings.Contains(d.Caption, "Fired on SpO₂ 72 %") || !strings.Contains(d.Caption, "Thresholds: below") {
		t.Errorf("plot caption: %q", d.Caption)
	}
	if !strings.Contains(d.Legend, "Threshold: below") || strings.Contains(d.Legend, "--") {
		t.Errorf("plot legend: %q", d.Legend)
	}
	if !strings.Contains(d.History, "Acknowledged by you") || strings.Contains(d.History, "-4") {
		t.Errorf("history: %q", d.History)
	}
	if !strings.Contains(d.TokenLink, "Dr Ada Osei") {
		t.Errorf("a #token= link in an open tab signed in %q", d.TokenLink)
	}
	if mode == "polling" && !strings.HasPrefix(d.Loading, "Loading") {
		t.Errorf("loading state under a slow API: %q", d.Loading)
	}
	t.Logf("the browser ran %d axe checks and %d layout checks (%d tap targets)", c.AxeRuns, c.LayoutChecks, c.Targets)
	minRuns := 12
	if mode == "polling" {
		minRuns = 30 // the administration pages too
	}
	if c.AxeRuns < minRuns || c.LayoutChecks < minRuns || c.Targets == 0 {
		t.Errorf("the browser ran %d axe checks and %d layout checks (%d tap targets), want at least %d", c.AxeRuns, c.LayoutChecks, c.Targets, minRuns)
	}
	if len(c.AxeViolations) > 0 {
		t.Errorf("axe-core found %d WCAG 2.2 AA violations:\n%s", len(c.AxeViolations), strings.Join(c.AxeViolations, "\n"))
	}
	if len(c.LayoutProblems) > 0 {
		t.Errorf("layout problems:\n%s", strings.Join(c.LayoutProblems, "\n"))
	}
}

// checkBacktestAndAudit: the backtest ran from midnight of the chosen day
// in team A's zone (Chicago) and showed the API's result; the audit view
// showed the API's entries newest first and filtered them.
func checkBacktestAndAudit(t *testing.T, admin client, got *adminResult) {
	t.Helper()
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	day, err := time.ParseInLocation(time.DateOnly, got.BacktestDay, chicago)
	if err != nil {
		t.Fatalf("backtest day %q: %v", got.BacktestDay, err)
	}
	since, err := time.Parse(time.RFC3339, got.BacktestSince)
	if err != nil || !since.Equal(day) {
		t.Errorf("backtest since %q, want midnight of %s in Chicago (%s)", got.BacktestSince, got.BacktestDay, day.UTC().Format(time.RFC3339))
	}
	var bt struct{ Alerts int }
	admin.do("POST", "/v1/rules/backtest", map[string]any{"rule_id": got.BacktestRule, "since": got.BacktestSince}).decode(t, &bt)
	if bt.Alerts == 0 || bt.Alerts != got.BacktestAlerts {
		t.Errorf("backtest of %s since %s: console shows %d alerts, the API %d", got.BacktestRule, got.BacktestSince, got.BacktestAlerts, bt.Alerts)
	}
	// The API's entries newest first, from the console's first one on.
	var audit struct{ Items []struct{ ID int64 } }
	admin.do("GET", "/v1/audit?order=newest&limit=500", nil).decode(t, &audit)
	ids := make([]string, 0, len(audit.Items))
	for _, e := range audit.Items {
		ids = append(ids, fmt.Sprint(e.ID))
	}
	at := slices.Index(ids, firstOr(got.AuditIDs))
	if len(got.AuditIDs) == 0 || at < 0 || len(ids)-at < len(got.AuditIDs) || !slices.Equal(ids[at:at+len(got.AuditIDs)], got.AuditIDs) {
		t.Errorf("audit view: %d rows from %s; not the API's newest-first entries", len(got.AuditIDs), firstOr(got.AuditIDs))
	}
	if got.AuditFiltered == 0 {
		t.Error("the audit filtered by person and patient showed nothing")
	}
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// checkPatientPage: the patient enrolled and edited in the console is so in
// the API, and the device linked to them acts for them.
func checkPatientPage(t *testing.T, admin client, got *adminResult) {
	t.Helper()
	var p struct {
		DisplayName string `json:"display_name"`
		Timezone    string
		Programs    []string
	}
	if r := admin.do("GET", "/v1/patients/"+got.Patient.ID, nil); r.status != http.StatusOK {
		t.Fatalf("the patient enrolled in the console: %d %s", r.status, r.body)
	} else {
		r.decode(t, &p)
	}
	if p.DisplayName != "Noor Haddad" || p.Timezone != "America/Chicago" || !slices.Contains(p.Programs, "diabetes") ||
		!slices.Contains(p.Programs, "hypertension") {
		t.Errorf("the patient after the console's edit: %+v", p)
	}
	var me struct {
		Role string
		User struct {
			PatientID string `json:"patient_id"`
		}
	}
	admin.as(got.Patient.DeviceToken).do("GET", "/v1/me", nil).decode(t, &me)
	if me.Role != "device" || me.User.PatientID != got.Patient.ID {
		t.Errorf("the device linked in the console: %+v", me)
	}
}
