package api_test

import (
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// simulationShown is a simulation as the console's rule page ran and showed
// it: the request it sent, the server's answer, and the result tables.
type simulationShown struct {
	Status   int             `json:"status"`
	Request  json.RawMessage `json:"request"`
	Response simulateAnswer  `json:"response"`
	Needless []shownRow      `json:"needless"`
	Events   []shownRow      `json:"events"`
	Headers  []string        `json:"headers"`
	Text     string          `json:"status_text"`
}

// shownRow is a row of a result table: its header, the current and
// proposed figures the cells hold, and what they say.
type shownRow struct {
	Label          string   `json:"label"`
	Event          string   `json:"event"`
	Current        float64  `json:"current"`
	Proposed       float64  `json:"proposed"`
	CurrentMedian  string   `json:"current_median"`
	ProposedMedian string   `json:"proposed_median"`
	Text           []string `json:"text"`
}

type simulateAnswer struct {
	Changed  []string  `json:"changed"`
	Current  []simCell `json:"current"`
	Proposed []simCell `json:"proposed"`
}

type simCell struct {
	Profile  string `json:"profile"`
	Needless struct {
		PerPatientWeek float64 `json:"per_patient_week"`
	} `json:"needless"`
	Programs []struct {
		Program        string  `json:"program"`
		PerPatientWeek float64 `json:"per_patient_week"`
	} `json:"programs"`
	Events []simEvent `json:"events"`
}

type simEvent struct {
	Type        string   `json:"type"`
	Routine     string   `json:"routine"`
	Measurable  int      `json:"measurable"`
	Caught      int      `json:"caught"`
	Sensitivity float64  `json:"sensitivity"`
	MedianHours *float64 `json:"median_hours"`
}

// simulationSteps is what the admin's simulation steps reported: the
// refused proposal, the busy server and the long simulation that kept it
// busy.
type simulationSteps struct {
	Refused struct {
		FieldError string `json:"field_error"`
		Invalid    string `json:"invalid"`
		Focused    string `json:"focused"`
	} `json:"simulation_refused"`
	Busy *struct {
		Text    string `json:"text"`
		Attempt int    `json:"attempt"`
	} `json:"simulation_busy"`
	Long int `json:"simulation_long"`
}

var busyText = regexp.MustCompile(`^The server is busy \(.*another simulation is running.*\)\. Try again in [0-9]+ seconds?\.$`)

// checkSimulations checks the simulations run from the rule page: the
// admin's (a value out of bounds refused next to its field, then
// bp-crisis's systolic_max at 185 with both packs' figures shown, then a
// busy server said plainly) and the lead's (diastolic_max at 125). The
// figures shown are the server's answer's, and the API, asked again for
// the same change now that the admin has saved it, answers the same.
func checkSimulations(t *testing.T, admin client, steps simulationSteps, got, lead *simulationShown) {
	t.Helper()
	if r := steps.Refused; !strings.Contains(r.FieldError, "params.systolic_max") || r.Invalid != "true" || r.Focused != "param-systolic_max" {
		t.Errorf("a simulation refused for systolic_max 900: %+v", r)
	}
	if steps.Busy == nil || !busyText.MatchString(steps.Busy.Text) {
		t.Errorf("the page while another simulation ran: %+v", steps.Busy)
	}
	if steps.Long != http.StatusOK && steps.Long != http.StatusServiceUnavailable {
		t.Errorf("the long simulation that kept the server busy: %d", steps.Long)
	}
	checkShown(t, "admin's", got, `{"patients":200,"weeks":8,"profiles":["normal"],"params":{"bp-crisis":{"systolic_max":185}}}`)
	checkShown(t, "lead's", lead, `{"patients":200,"weeks":8,"profiles":["normal"],"params":{"bp-crisis":{"diastolic_max":125}}}`)
	if t.Failed() {
		return
	}
	var again simulateAnswer
	r := admin.do("POST", "/v1/rules/simulate", json.RawMessage(got.Request))
	r.decode(t, &again)
	if r.status != http.StatusOK || len(again.Current) != 1 {
		t.Fatalf("the admin's simulation through the API: %d %s", r.status, r.body)
	}
	if !reflect.DeepEqual(again.Current[0], got.Response.Proposed[0]) {
		t.Errorf("bp-crisis at 185, saved: the API's figures %+v, the console showed %+v for the proposal", again.Current[0], got.Response.Proposed[0])
	}
}

// checkShown checks one simulation: the request the page sent, and that
// every figure the tables show is the server's, current and proposed side
// by side.
func checkShown(t *testing.T, who string, got *simulationShown, wantRequest string) {
	t.Helper()
	if got == nil {
		t.Errorf("the %s simulation was not reported", who)
		return
	}
	if got.Status != http.StatusOK || string(got.Request) != wantRequest {
		t.Errorf("the %s simulation: %d for %s, want 200 for %s", who, got.Status, got.Request, wantRequest)
	}
	res := got.Response
	if !slices.Equal(res.Changed, []string{"bp-crisis"}) || len(res.Current) != 1 || len(res.Proposed) != 1 {
		t.Errorf("the %s simulation's answer: %+v", who, res)
		return
	}
	if !strings.HasPrefix(got.Text, "Simulated 1,600 patient-weeks with each pack in ") {
		t.Errorf("the %s simulation's status line: %q", who, got.Text)
	}
	copd := func(c simCell) float64 {
		for _, p := range c.Programs {
			if p.Program == "copd" {
				return p.PerPatientWeek
			}
		}
		return math.NaN()
	}
	cur, pro := res.Current[0], res.Proposed[0]
	want := [][2]float64{{cur.Needless.PerPatientWeek, pro.Needless.PerPatientWeek}, {copd(cur), copd(pro)}}
	if len(got.Needless) != 2 || cur.Needless.PerPatientWeek <= 0 {
		t.Fatalf("the %s needless pages: shown %+v, answered %+v", who, got.Needless, want)
	}
	for i, row := range got.Needless {
		said, err := strconv.ParseFloat(row.Text[0], 64)
		if row.Current != want[i][0] || row.Proposed != want[i][1] || err != nil || math.Abs(said-want[i][0]) > 0.00051 {
			t.Errorf("the %s needless pages, row %q: shown %v / %v (%q), answered %v", who, row.Label, row.Current, row.Proposed, row.Text, want[i])
		}
	}
	if !slices.Equal(got.Headers, []string{"Deterioration", "Caught, current pack", "Caught, proposed", "Median delay, current pack", "Median delay, proposed"}) {
		t.Errorf("the %s events table's headers: %q", who, got.Headers)
	}
	measurable := 0
	for _, e := range cur.Events {
		if e.Routine != "all" {
			continue
		}
		measurable += e.Measurable
		k := slices.IndexFunc(pro.Events, func(p simEvent) bool { return p.Type == e.Type && p.Routine == "all" })
		if k < 0 {
			t.Errorf("the %s answer's proposal lacks %s", who, e.Type)
			continue
		}
		p := pro.Events[k]
		j := slices.IndexFunc(got.Events, func(r shownRow) bool { return r.Event == e.Type })
		if j < 0 {
			t.Errorf("the %s events table lacks %s", who, e.Type)
			continue
		}
		row := got.Events[j]
		if row.Current != e.Sensitivity || row.Proposed != p.Sensitivity || row.CurrentMedian != median(e.MedianHours) ||
			row.ProposedMedian != median(p.MedianHours) {
			t.Errorf("the %s events table, %s: shown %+v, answered %+v and %+v", who, e.Type, row, e, p)
		}
	}
	if measurable == 0 {
		t.Errorf("the %s simulation's cohort had no deterioration to catch", who)
	}
}

// median is a median delay as the page keeps it: JavaScript's String of
// the number, or empty when none was caught.
func median(h *float64) string {
	if h == nil {
		return ""
	}
	return strconv.FormatFloat(*h, 'f', -1, 64)
}
