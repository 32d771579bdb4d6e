package api_test

import (
	"net/http"
	"testing"
	"time"
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
