package api_test

import (
	"net/http"
	"testing"
)

// Care teams are listed and read by their members (admins: all); a team's
// leads and admins change them; the rota and zone are validated field by
// field.
func TestCareTeamsReadAndUpdate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	doc := w.actors["clinician"]
	a, b := teamA(w), teamB(w)
	type team struct {
		ID       string
		Name     string
		Timezone string
		Members  []struct{ UserID, Role string }                `json:"members"`
		OnCall   []struct{ UserID, Weekday, Start, End string } `json:"on_call"`
	}
	var l struct{ Items []team }
	doc.do("GET", "/v1/care-teams", nil).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != a || l.Items[0].Timezone != "UTC" {
		t.Fatalf("clinician's teams = %+v", l.Items)
	}
	l.Items = nil
	w.admin.do("GET", "/v1/care-teams", nil).decode(t, &l)
	if len(l.Items) != 2 {
		t.Fatalf("admin's teams = %+v", l.Items)
	}
	if r := doc.do("GET", "/v1/care-teams/"+b, nil); r.status != http.StatusNotFound {
		t.Errorf("another team: %d", r.status)
	}

	put := map[string]any{"name": "Team A nights", "timezone": "America/Chicago", "on_call": []map[string]any{
		{"user_id": w.clinician["A"], "weekday": "friday", "start": "22:00", "end": "06:00"}}}
	if r := doc.do("PUT", "/v1/care-teams/"+a, put); r.status != http.StatusForbidden {
		t.Errorf("a clinician (not a lead) changing the team: %d %s", r.status, r.body)
	}
	// Make the clinician a lead; then they may change the team.
	r := w.admin.do("PUT", "/v1/care-teams/"+a, map[string]any{"members": []map[string]any{{"user_id": w.clinician["A"], "role": "lead"}}})
	if r.status != http.StatusOK {
		t.Fatalf("admin sets members: %d %s", r.status, r.body)
	}
	r = doc.do("PUT", "/v1/care-teams/"+a, put)
	var got team
	r.decode(t, &got)
	if r.status != http.StatusOK || got.Name != "Team A nights" || got.Timezone != "America/Chicago" || len(got.OnCall) != 1 ||
		len(got.Members) != 1 || got.Members[0].Role != "lead" {
		t.Fatalf("lead updates the team: %d %s", r.status, r.body)
	}
	got = team{}
	doc.do("GET", "/v1/care-teams/"+a, nil).decode(t, &got)
	if got.OnCall[0].Weekday != "friday" || got.OnCall[0].End != "06:00" {
		t.Errorf("stored team = %+v", got)
	}

	wantProblem(t, doc.do("PUT", "/v1/care-teams/"+a, map[string]any{"timezone": "Mars/Olympus"}), http.StatusUnprocessableEntity, "timezone")
	wantProblem(t, doc.do("PUT", "/v1/care-teams/"+a, map[string]any{"on_call": []map[string]any{
		{"user_id": w.clinician["A"], "weekday": "friday", "start": "09:00", "end": "17:00"},
		{"user_id": w.clinician["B"], "weekday": "caturday", "start": "25:00", "end": "9"}}}),
		http.StatusUnprocessableEntity, "on_call[1].user_id", "on_call[1].weekday", "on_call[1].start", "on_call[1].end")
	// Removing the on-call clinician without a new rota is refused.
	wantProblem(t, w.admin.do("PUT", "/v1/care-teams/"+a, map[string]any{"member_ids": []string{}}), http.StatusUnprocessableEntity, "on_call")
	got = team{}
	doc.do("GET", "/v1/care-teams/"+a, nil).decode(t, &got)
	if got.Timezone != "America/Chicago" || len(got.OnCall) != 1 || len(got.Members) != 1 {
		t.Errorf("a refused update changed the team: %+v", got)
	}
}
