package api_test

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
)

// Resolve, snooze and assign through the API: a bad disposition or a
// non-member assignee is a 422 naming the field; a second resolve, or an
// ack or snooze of a resolved alert, is a 409 whose body carries the
// alert's current state.
func TestAlertLifecycleAPI(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	doc := w.actors["clinician"]
	path := "/v1/alerts/" + w.alert["A"]

	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	r := doc.do("POST", path+"/snooze", map[string]any{"until": until})
	var al struct {
		Status       string
		SnoozedUntil *string `json:"snoozed_until"`
		AssignedTo   *string `json:"assigned_to"`
		Disposition  *string
	}
	r.decode(t, &al)
	if r.status != http.StatusOK || al.Status != "snoozed" || al.SnoozedUntil == nil {
		t.Fatalf("snooze: %d %s", r.status, r.body)
	}
	for _, bad := range []map[string]any{{"until": "tomorrow"}, {"until": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, {}} {
		if r := doc.do("POST", path+"/snooze", bad); r.status != http.StatusUnprocessableEntity || !r.names(t, "until") {
			t.Errorf("snooze %v: %d %s", bad, r.status, r.body)
		}
	}

	if r := doc.do("POST", path+"/assign", map[string]any{"user_id": w.clinician["B"]}); r.status != http.StatusUnprocessableEntity || !r.names(t, "user_id") {
		t.Errorf("assign to another team's clinician: %d %s", r.status, r.body)
	}
	r = doc.do("POST", path+"/assign", map[string]any{"user_id": w.clinician["A"]})
	r.decode(t, &al)
	if r.status != http.StatusOK || al.AssignedTo == nil || *al.AssignedTo != w.clinician["A"] {
		t.Fatalf("assign: %d %s", r.status, r.body)
	}

	if r := doc.do("POST", path+"/resolve", map[string]any{"disposition": "fixed it"}); r.status != http.StatusUnprocessableEntity || !r.names(t, "disposition") {
		t.Errorf("resolve with a bad disposition: %d %s", r.status, r.body)
	}
	r = doc.do("POST", path+"/resolve", map[string]any{"disposition": "called_patient", "note": "advised rest"})
	r.decode(t, &al)
	if r.status != http.StatusOK || al.Status != "resolved" || al.Disposition == nil || *al.Disposition != "called_patient" {
		t.Fatalf("resolve: %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		op   string
		body map[string]any
	}{
		{"resolve", map[string]any{"disposition": "other"}},
		{"ack", map[string]any{}},
		{"snooze", map[string]any{"until": until}},
		{"assign", map[string]any{"user_id": w.clinician["A"]}},
	} {
		r := doc.do("POST", path+"/"+c.op, c.body)
		var p struct {
			Status  int
			Current struct{ ID, Status string }
		}
		r.decode(t, &p)
		if r.status != http.StatusConflict || p.Status != http.StatusConflict || p.Current.Status != "resolved" || p.Current.ID != w.alert["A"] {
			t.Errorf("%s of a resolved alert: %d %s", c.op, r.status, r.body)
		}
	}

	var d struct {
		Events []struct{ Action, Note string }
	}
	doc.do("GET", path, nil).decode(t, &d)
	var actions []string
	for _, e := range d.Events {
		actions = append(actions, e.Action)
	}
	want := []string{"opened", "snoozed", "assigned", "resolved"}
	if !containsInOrder(actions, want) {
		t.Errorf("events %v, want %v in order", actions, want)
	}
}

func containsInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// names reports whether r is a problem naming field.
func (r response) names(t testing.TB, field string) bool {
	t.Helper()
	var p problem
	r.decode(t, &p)
	return namesField(p, field)
}

// The queue filters by assignee and care team and carries the counts of
// the caller's unresolved alerts; the detail carries the patient's recent
// readings of the alert's kind.
func TestTriageQueueFiltersAndCounts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	doc := w.actors["clinician"]
	var teamA, teamB string
	ctx := t.Context()
	_ = w.pool.QueryRow(ctx, `SELECT care_team_id FROM patients WHERE id = $1`, w.patient["A"]).Scan(&teamA)
	_ = w.pool.QueryRow(ctx, `SELECT care_team_id FROM patients WHERE id = $1`, w.patient["B"]).Scan(&teamB)
	type queue struct {
		Items  []struct{ ID string }
		Counts struct {
			Urgency map[string]int
			Status  map[string]int
		}
	}
	var q queue
	doc.do("GET", "/v1/alerts", nil).decode(t, &q)
	if len(q.Items) != 1 || q.Counts.Urgency["critical"] != 1 || q.Counts.Status["open"] != 1 || q.Counts.Urgency["low"] != 0 {
		t.Fatalf("queue = %+v", q)
	}
	if r := doc.do("GET", "/v1/alerts?assignee=me", nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	} else if r.decode(t, &q); len(q.Items) != 0 {
		t.Errorf("assigned to me before assigning: %+v", q.Items)
	}
	doc.do("POST", "/v1/alerts/"+w.alert["A"]+"/assign", map[string]any{"user_id": w.clinician["A"]})
	doc.do("POST", "/v1/alerts/"+w.alert["A"]+"/ack", nil)
	for _, path := range []string{"/v1/alerts?assignee=me", "/v1/alerts?assignee=" + w.clinician["A"], "/v1/alerts?care_team_id=" + teamA} {
		q = queue{}
		doc.do("GET", path, nil).decode(t, &q)
		if len(q.Items) != 1 || q.Items[0].ID != w.alert["A"] || q.Counts.Status["acknowledged"] != 1 || q.Counts.Status["open"] != 0 {
			t.Errorf("%s: %+v", path, q)
		}
	}
	q = queue{}
	doc.do("GET", "/v1/alerts?care_team_id="+teamB, nil).decode(t, &q)
	if len(q.Items) != 0 || q.Counts.Urgency["critical"] != 0 {
		t.Errorf("another team's queue: %+v", q)
	}
	q = queue{}
	w.admin.do("GET", "/v1/alerts", nil).decode(t, &q)
	if len(q.Items) != 2 || q.Counts.Urgency["critical"] != 2 {
		t.Errorf("admin queue: %+v", q)
	}
	for _, bad := range []string{"assignee=someone", "care_team_id=x"} {
		if r := doc.do("GET", "/v1/alerts?"+bad, nil); r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d", bad, r.status)
		}
	}

	// A second blood pressure and a heart rate: the plot series holds the
	// two blood pressures only.
	dev := w.actors["device"]
	at := time.Now().Add(-30 * time.Second).UTC().Format(time.RFC3339)
	dev.do("POST", "/v1/patients/"+w.patient["A"]+"/readings", map[string]any{"readings": []map[string]any{
		{"kind": "blood_pressure", "systolic": 150, "diastolic": 95, "unit": "mm[Hg]", "observed_at": at},
		{"kind": "heart_rate", "value": 70, "unit": "/min", "observed_at": at}}})
	var d struct {
		LastObservedAt time.Time `json:"last_observed_at"`
		Recent         []struct{ Kind string }
	}
	doc.do("GET", "/v1/alerts/"+w.alert["A"], nil).decode(t, &d)
	if len(d.Recent) != 2 || d.Recent[0].Kind != "blood_pressure" || d.Recent[1].Kind != "blood_pressure" {
		t.Errorf("recent = %+v (last observed %s)", d.Recent, d.LastObservedAt)
	}
}

// An unacknowledged critical alert escalates through the team's policy by
// the periodic sweep, each step an event of the alert's detail, until it is
// flagged escalation_exhausted. The engine's clock runs an hour behind and
// moves a minute ahead at each poll, so the deadlines pass within a second.
func TestEscalationIsVisibleInTheDetail(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64 // how far the clock has been moved on
	s := newSetupWith(t, engine.Config{RunWorkers: true, EscalationSweepInterval: 100 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(-time.Hour + time.Duration(ahead.Load())) }})
	var team struct {
		Members []struct {
			UserID string `json:"user_id"`
		}
	}
	s.admin.do("GET", "/v1/care-teams/"+s.teamID, nil).decode(t, &team)
	clinician := team.Members[0].UserID
	s.userToken(t, map[string]any{"name": "Dr Lead", "role": "clinician"})
	r := s.admin.do("PUT", "/v1/care-teams/"+s.teamID, map[string]any{
		"members":    []map[string]any{{"user_id": clinician, "role": "clinician"}, {"user_id": s.lastUserID, "role": "lead"}},
		"escalation": map[string]any{"ack_deadlines": map[string]any{"critical": "5m"}, "levels": []string{"on_call", "leads", "all"}}})
	if r.status != http.StatusOK {
		t.Fatalf("policy: %d %s", r.status, r.body)
	}
	r = s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", map[string]any{"kind": "blood_pressure", "systolic": 250,
		"diastolic": 145, "unit": "mm[Hg]", "observed_at": time.Now().Add(-time.Hour - time.Minute).UTC().Format(time.RFC3339)})
	var res struct{ Alerts []struct{ ID string } }
	r.decode(t, &res)
	if len(res.Alerts) != 1 {
		t.Fatalf("reading: %d %s", r.status, r.body)
	}
	var d struct {
		EscalationExhausted bool `json:"escalation_exhausted"`
		EscalationLevel     int  `json:"escalation_level"`
		Events              []struct{ Action string }
	}
	deadline := time.Now().Add(20 * time.Second)
	for !d.EscalationExhausted {
		if time.Now().After(deadline) {
			t.Fatalf("not exhausted within 20s: %+v", d)
		}
		time.Sleep(50 * time.Millisecond)
		ahead.Add(int64(time.Minute))
		s.clinician.do("GET", "/v1/alerts/"+res.Alerts[0].ID, nil).decode(t, &d)
	}
	var steps []string
	for _, e := range d.Events {
		if strings.HasPrefix(e.Action, "escalat") {
			steps = append(steps, e.Action)
		}
	}
	if want := []string{"escalated", "escalated", "escalation_exhausted"}; !slices.Equal(steps, want) || d.EscalationLevel != 3 {
		t.Errorf("escalation events %v (level %d), want %v", steps, d.EscalationLevel, want)
	}
}
