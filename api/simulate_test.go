package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

type simulateJSON struct {
	Changed []string `json:"changed"`
	Current []struct {
		Profile  string `json:"profile"`
		Needless struct {
			PerPatientWeek float64        `json:"per_patient_week"`
			Causes         map[string]int `json:"causes"`
		} `json:"needless"`
		Events []struct {
			Type        string   `json:"type"`
			Routine     string   `json:"routine"`
			Measurable  int      `json:"measurable"`
			Sensitivity float64  `json:"sensitivity"`
			MedianHours *float64 `json:"median_hours"`
		} `json:"events"`
	} `json:"current"`
	Proposed []struct {
		Profile string `json:"profile"`
	} `json:"proposed"`
}

// TestSimulateAPI: admins and care-team leads see the simulator's figures
// for a proposed change next to the active pack's; others are refused; bad
// input is a 422 naming the field; the size is bounded; one simulation runs
// at a time.
func TestSimulateAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	leadTok := s.userToken(t, map[string]any{"name": "Dr Lead", "role": "clinician"})
	lead := s.lastUserID
	patient := s.admin.as(s.userToken(t, map[string]any{"name": "Sam", "role": "patient", "patient_id": s.patientID}))
	if r := s.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Lead's team",
		"members": []map[string]any{{"user_id": lead, "role": "lead"}}}); r.status != http.StatusCreated {
		t.Fatalf("team: %d %s", r.status, r.body)
	}
	small := map[string]any{"params": map[string]any{"spo2-copd-below-usual": map[string]any{"drop": 4}},
		"patients": 60, "weeks": 2, "profiles": []string{"normal", "device"}}
	var res simulateJSON
	r := s.admin.do("POST", "/v1/rules/simulate", small)
	r.decode(t, &res)
	if r.status != http.StatusOK || !slices.Equal(res.Changed, []string{"spo2-copd-below-usual"}) || len(res.Current) != 2 || len(res.Proposed) != 2 {
		t.Fatalf("simulate: %d %s", r.status, r.body)
	}
	if c := res.Current[0]; c.Profile != "normal" || len(c.Events) == 0 || c.Needless.Causes == nil || c.Events[0].Routine != "all" {
		t.Errorf("current cell: %+v", c)
	}
	rule := map[string]any{"id": "spo2-copd-below-usual", "title": "Below usual", "kind": "spo2", "urgency": "high", "programs": []string{"copd"},
		"when": "has_baseline && value <= baseline - params.drop", "params": map[string]any{"drop": 5}}
	if r := s.admin.as(leadTok).do("POST", "/v1/rules/simulate", map[string]any{"rules": []any{rule}, "patients": 40, "weeks": 1,
		"profiles": []string{"normal"}}); r.status != http.StatusOK {
		t.Errorf("a lead: %d %s", r.status, r.body)
	}
	wantProblem(t, s.clinician.do("POST", "/v1/rules/simulate", small), http.StatusForbidden)
	wantProblem(t, patient.do("POST", "/v1/rules/simulate", small), http.StatusForbidden)

	bad := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"nothing proposed", map[string]any{"patients": 10}, "rules"},
		{"too many patients", map[string]any{"params": small["params"], "patients": 5000}, "patients"},
		{"too many weeks", map[string]any{"params": small["params"], "weeks": 9}, "weeks"},
		{"unknown profile", map[string]any{"params": small["params"], "profiles": []string{"dusty"}}, "profiles[0]"},
		{"answer rate", map[string]any{"params": small["params"], "answer_rates": []float64{1.5}}, "answer_rates[0]"},
		{"grid too large", map[string]any{"params": small["params"], "patients": 1000, "seeds": []int{1, 2}}, "patients"},
		{"unknown rule", map[string]any{"params": map[string]any{"no-such-rule": map[string]any{"x": 1}}}, "params.no-such-rule"},
		{"unknown param", map[string]any{"params": map[string]any{"bp-crisis": map[string]any{"nope": 1}}}, "params.bp-crisis.nope"},
		{"out of bounds", map[string]any{"params": map[string]any{"bp-crisis": map[string]any{"systolic_max": 900}}}, "params.systolic_max"},
		{"bad rule", map[string]any{"rules": []any{map[string]any{"id": "x", "title": "X", "kind": "spo2", "urgency": "high", "when": "value <"}}}, "rules[0].when"},
		{"not a rule", map[string]any{"rules": []any{"spo2 < 80"}}, "rules[0]"},
	}
	for _, b := range bad {
		r := s.admin.do("POST", "/v1/rules/simulate", b.body)
		if r.status != http.StatusUnprocessableEntity || !namesField(decodeProblem(t, r), b.field) {
			t.Errorf("%s: %d %s, want 422 naming %s", b.name, r.status, r.body, b.field)
		}
	}

	// One simulation at a time: a second one while a long one runs is
	// refused with 503 and Retry-After.
	long := map[string]any{"params": small["params"], "patients": 1000, "weeks": 8, "profiles": []string{"normal"}}
	longDone := make(chan response, 1)
	start := func() { go func() { longDone <- s.admin.do("POST", "/v1/rules/simulate", long) }() }
	start()
	for refused := false; !refused; {
		select {
		case r := <-longDone:
			if !strings.Contains(string(r.body), "another simulation") {
				t.Fatalf("the long simulation ended (%d) before a second one was refused", r.status)
			}
			start() // a short one below held the slot: try again
		default:
		}
		r := s.admin.do("POST", "/v1/rules/simulate", map[string]any{"params": small["params"], "patients": 5, "weeks": 1, "profiles": []string{"normal"}})
		refused = r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "" && strings.Contains(string(r.body), "another simulation")
	}
	// The long one either finishes or, on a very busy machine, runs out of
	// time: a 503 that says so, never a 500.
	if r := <-longDone; r.status != http.StatusOK && !(r.status == http.StatusServiceUnavailable && strings.Contains(string(r.body), "took longer")) {
		t.Errorf("the long simulation: %d %s", r.status, r.body)
	}
}
