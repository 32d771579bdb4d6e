package api_test

import (
	"net/http"
	"slices"
	"testing"
)

// TestMe: GET /v1/me answers each caller's own user, role, teams with the
// caller's role in each, and capabilities; a lead may broadcast, a
// clinician may not; a patient has no teams and no triage.
func TestMe(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	type me struct {
		User struct {
			ID, Name, Role string
			PatientID      string `json:"patient_id"`
		}
		Role  string
		Teams []struct {
			CareTeamID string `json:"care_team_id"`
			Name       string
			Role       string
			Timezone   string
		}
		Capabilities []string
	}
	get := func(c client) me {
		t.Helper()
		var m me
		r := c.do("GET", "/v1/me", nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/me: %d %s", r.status, r.body)
		}
		r.decode(t, &m)
		return m
	}
	doc := get(w.actors["clinician"])
	if doc.User.ID != w.clinician["A"] || doc.User.Name != "Dr A" || doc.Role != "clinician" || doc.User.Role != "clinician" {
		t.Errorf("clinician's /v1/me: %+v", doc)
	}
	if len(doc.Teams) != 1 || doc.Teams[0].CareTeamID != teamA(w) || doc.Teams[0].Role != "clinician" ||
		doc.Teams[0].Name != "Team A" || doc.Teams[0].Timezone != "UTC" {
		t.Errorf("clinician's teams: %+v", doc.Teams)
	}
	if !slices.Contains(doc.Capabilities, "triage") || slices.Contains(doc.Capabilities, "broadcast") ||
		slices.Contains(doc.Capabilities, "users.manage") || slices.Contains(doc.Capabilities, "rules.simulate") {
		t.Errorf("clinician's capabilities: %v", doc.Capabilities)
	}
	// Made a lead, the clinician may broadcast and simulate rule changes.
	r := w.admin.do("PUT", "/v1/care-teams/"+teamA(w), map[string]any{"members": []map[string]any{
		{"user_id": w.clinician["A"], "role": "lead"}, {"user_id": w.scheduler["A"], "role": "scheduler"}}})
	if r.status != http.StatusOK {
		t.Fatalf("make a lead: %d %s", r.status, r.body)
	}
	lead := get(w.actors["clinician"])
	if len(lead.Teams) != 1 || lead.Teams[0].Role != "lead" || !slices.Contains(lead.Capabilities, "broadcast") ||
		!slices.Contains(lead.Capabilities, "rules.simulate") || slices.Contains(lead.Capabilities, "rules.manage") {
		t.Errorf("lead's /v1/me: %+v", lead)
	}
	adm := get(w.admin)
	for _, c := range []string{"users.manage", "audit", "broadcast", "teams.manage", "triage", "jobs", "rules.manage", "rules.simulate"} {
		if !slices.Contains(adm.Capabilities, c) {
			t.Errorf("admin's capabilities lack %q: %v", c, adm.Capabilities)
		}
	}
	if adm.Role != "admin" || len(adm.Teams) != 0 {
		t.Errorf("admin's /v1/me: %+v", adm)
	}
	pat := get(w.actors["patient"])
	if pat.Role != "patient" || pat.User.PatientID != w.patient["A"] || len(pat.Teams) != 0 ||
		slices.Contains(pat.Capabilities, "triage") || !slices.Contains(pat.Capabilities, "messages") {
		t.Errorf("patient's /v1/me: %+v", pat)
	}
	sched := get(w.actors["scheduler"])
	if len(sched.Teams) != 1 || sched.Teams[0].Role != "scheduler" || !slices.Contains(sched.Capabilities, "schedules") {
		t.Errorf("scheduler's /v1/me: %+v", sched)
	}
	if r := (client{t: t, base: w.base}).do("GET", "/v1/me", nil); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous /v1/me: %d", r.status)
	}
}

// TestUpdatePatient: a clinician of the patient's team changes the
// patient's record; bad fields are refused field by field and store
// nothing; another team's clinician gets 404.
func TestUpdatePatient(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	doc := w.actors["clinician"]
	path := "/v1/patients/" + w.patient["A"]
	var p struct {
		DisplayName string `json:"display_name"`
		Timezone    string
		Programs    []string
		ExternalID  string `json:"external_id"`
	}
	r := doc.do("PATCH", path, map[string]any{"display_name": "Pat A. Renamed", "timezone": "America/Chicago",
		"programs": []string{"heart_failure"}, "external_id": "mrn-77"})
	if r.status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	doc.do("GET", path, nil).decode(t, &p)
	if p.DisplayName != "Pat A. Renamed" || p.Timezone != "America/Chicago" || !slices.Equal(p.Programs, []string{"heart_failure"}) ||
		p.ExternalID != "mrn-77" {
		t.Errorf("after PATCH: %+v", p)
	}
	wantProblem(t, doc.do("PATCH", path, map[string]any{"timezone": "Mars/Olympus", "programs": []string{"astrology"}, "display_name": ""}),
		http.StatusUnprocessableEntity, "timezone", "programs[0]", "display_name")
	wantProblem(t, doc.do("PATCH", path, map[string]any{"care_team_id": teamB(w)}), http.StatusUnprocessableEntity, "care_team_id")
	p.DisplayName = ""
	doc.do("GET", path, nil).decode(t, &p)
	if p.DisplayName != "Pat A. Renamed" || p.Timezone != "America/Chicago" {
		t.Errorf("a refused PATCH changed the patient: %+v", p)
	}
	if r := w.actors["clinicianB"].do("PATCH", path, map[string]any{"timezone": "UTC"}); r.status != http.StatusNotFound {
		t.Errorf("another team's clinician: %d", r.status)
	}
	// An admin moves the patient to team B: team B's clinician now sees them, with a thread.
	if r := w.admin.do("PATCH", path, map[string]any{"care_team_id": teamB(w)}); r.status != http.StatusOK {
		t.Fatalf("move: %d %s", r.status, r.body)
	}
	if r := w.actors["clinicianB"].do("GET", path, nil); r.status != http.StatusOK {
		t.Errorf("team B after the move: %d", r.status)
	}
	var threads struct{ Items []struct{ Kind string } }
	w.actors["clinicianB"].do("GET", "/v1/threads?patient_id="+w.patient["A"], nil).decode(t, &threads)
	if !slices.ContainsFunc(threads.Items, func(x struct{ Kind string }) bool { return x.Kind == "patient" }) {
		t.Errorf("team B has no thread with the moved patient: %+v", threads.Items)
	}
}

// TestQueueFacts: the queue's items and the alert's detail name the patient,
// the value that fired in its stored unit, the assignee and the unread
// messages of the patient's thread for the caller; the history names who
// acted; a team's members carry their names.
func TestQueueFacts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	doc := w.actors["clinician"]
	type facts struct {
		ID             string
		PatientName    string  `json:"patient_name"`
		AssignedToName *string `json:"assigned_to_name"`
		UnreadMessages *int    `json:"unread_messages"`
		LastReading    *struct {
			Kind                string
			Systolic, Diastolic float64
			Unit                string
		} `json:"last_reading"`
		Events []struct {
			Action    string
			ActorName string `json:"actor_name"`
		}
	}
	var list struct{ Items []facts }
	doc.do("GET", "/v1/alerts", nil).decode(t, &list)
	i := slices.IndexFunc(list.Items, func(f facts) bool { return f.ID == w.alert["A"] })
	if i < 0 {
		t.Fatalf("alert %s not in the queue: %+v", w.alert["A"], list.Items)
	}
	got := list.Items[i]
	if got.PatientName != "Patient A" || got.LastReading == nil || got.LastReading.Kind != "blood_pressure" ||
		got.LastReading.Systolic != 244 || got.LastReading.Diastolic != 142 || got.LastReading.Unit != "mm[Hg]" ||
		got.UnreadMessages == nil || *got.UnreadMessages != 1 || got.AssignedToName != nil {
		t.Errorf("queue item: %+v (reading %+v)", got, got.LastReading)
	}
	// Read the thread, assign and acknowledge: the detail follows.
	if r := doc.do("POST", "/v1/threads/"+w.thread["A"]+"/read", map[string]any{"up_to": w.message["A"]}); r.status != http.StatusOK {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	if r := doc.do("POST", "/v1/alerts/"+w.alert["A"]+"/assign", map[string]any{"user_id": w.clinician["A"]}); r.status != http.StatusOK {
		t.Fatalf("assign: %d %s", r.status, r.body)
	}
	if r := doc.do("POST", "/v1/alerts/"+w.alert["A"]+"/ack", map[string]any{"note": "on it"}); r.status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	var d facts
	doc.do("GET", "/v1/alerts/"+w.alert["A"], nil).decode(t, &d)
	if d.PatientName != "Patient A" || d.AssignedToName == nil || *d.AssignedToName != "Dr A" || d.UnreadMessages == nil || *d.UnreadMessages != 0 {
		t.Errorf("alert detail: %+v", d)
	}
	if !slices.ContainsFunc(d.Events, func(e struct {
		Action    string
		ActorName string `json:"actor_name"`
	}) bool {
		return e.ActorName == "Dr A"
	}) {
		t.Errorf("events name no actor: %+v", d.Events)
	}
	var team struct {
		Members []struct{ UserID, Role, Name string } `json:"members"`
	}
	doc.do("GET", "/v1/care-teams/"+teamA(w), nil).decode(t, &team)
	if !slices.ContainsFunc(team.Members, func(m struct{ UserID, Role, Name string }) bool { return m.Name == "Dr A" }) {
		t.Errorf("team members carry no names: %+v", team.Members)
	}
}
