package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// world is a server with two care teams (A and B), each with a clinician, a
// scheduler, a patient, the patient's user and device, and an open critical
// alert; an admin; an operator ("super_admin"), who created a second
// organisation with an admin of its own ("adminB"). In newWorld both teams
// are in the default organisation, under one admin; in newOrgsWorld team B
// is in the second organisation and adminB created it, so that team A's
// actors, their admin included, must find nothing of team B. The matrices
// run every route against the second.
type world struct {
	t    *testing.T
	pool *pgxpool.Pool
	srv  *api.Server
	base string

	admin     client
	adminB    client
	org       map[string]string // "A"/"B" → organisation id
	actors    map[string]client // role name → client (team A unless suffixed B)
	patient   map[string]string // "A"/"B" → patient id
	alert     map[string]string
	clinician map[string]string       // user ids
	device    map[string]string       // registered device id of clinician A / B
	schedule  map[string]string       // a medication schedule of patient A / B
	dose      map[string]string       // a dose due within minutes, of another schedule
	thread    map[string]string       // the patient thread of patient A / B
	staff     map[string]string       // the staff-only thread about patient A / B
	message   map[string]string       // a message of the patient in thread A / B
	scheduler map[string]string       // user ids
	e2ee      map[string]*e2eeClient  // clinician A's / B's device with keys
	spare     map[string]string       // another e2ee device of clinician A / B (revoked by a matrix row)
	encFile   map[string]e2ee.FileRef // an encrypted attachment clinician A / B uploaded to the staff thread
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return buildWorld(t, false)
}

// newOrgsWorld is the world with team B in a second organisation.
func newOrgsWorld(t *testing.T) *world {
	t.Helper()
	return buildWorld(t, true)
}

func buildWorld(t *testing.T, twoOrgs bool) *world {
	t.Helper()
	pool := enginetest.NewPool(t)
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Pool: pool, WebPushAllowedHosts: []string{"127.0.0.1"}, Keys: testKeys(t),
		RecordPublicKey: record.HPKEPublic})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	ctx := context.Background()
	w := &world{t: t, pool: pool, srv: srv, base: hs.URL, admin: client{t: t, base: hs.URL, token: adminToken(t, eng)},
		actors: map[string]client{}, patient: map[string]string{}, alert: map[string]string{},
		clinician: map[string]string{}, device: map[string]string{}, schedule: map[string]string{}, dose: map[string]string{},
		thread: map[string]string{}, staff: map[string]string{}, message: map[string]string{}, scheduler: map[string]string{},
		e2ee: map[string]*e2eeClient{}, spare: map[string]string{}, encFile: map[string]e2ee.FileRef{}}
	w.actors["admin"] = w.admin
	w.org = map[string]string{"A": engine.DefaultOrgID().String()}
	op, err := eng.CreateUser(ctx, engine.System("test"), engine.NewUser{Name: "Operator", Role: engine.RoleSuperAdmin})
	if err != nil {
		t.Fatal(err)
	}
	opTok, err := eng.CreateToken(ctx, engine.System("test"), op.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.actors["super_admin"] = w.admin.as(opTok)
	r := w.actors["super_admin"].do("POST", "/v1/organisations", map[string]any{"name": "Other clinic", "slug": "other", "timezone": "Europe/Paris"})
	var org struct{ ID string }
	r.decode(t, &org)
	if r.status != http.StatusCreated || org.ID == "" {
		t.Fatalf("organisation: %d %s", r.status, r.body)
	}
	w.org["B"] = org.ID
	r = w.actors["super_admin"].do("POST", "/v1/users", map[string]any{"name": "Admin B", "role": "admin", "org_id": org.ID})
	var adm struct{ ID string }
	r.decode(t, &adm)
	if r.status != http.StatusCreated {
		t.Fatalf("admin B: %d %s", r.status, r.body)
	}
	r = w.actors["super_admin"].do("POST", "/v1/users/"+adm.ID+"/tokens", map[string]any{})
	var admTok struct{ Token string }
	r.decode(t, &admTok)
	if admTok.Token == "" {
		t.Fatalf("admin B's token: %d %s", r.status, r.body)
	}
	w.adminB = w.admin.as(admTok.Token)
	w.actors["adminB"] = w.adminB
	// The second organisation's own record key, for its encrypted threads.
	recordB, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	if r := w.adminB.do("PATCH", "/v1/organisations/"+org.ID, map[string]any{"record_public_key": b64url(recordB.HPKEPublic)}); r.status != http.StatusOK {
		t.Fatalf("organisation B's record key: %d %s", r.status, r.body)
	}
	// Seed the stored rules now, so that the first request that needs them
	// does not count as a change in the matrices.
	if r := w.admin.do("GET", "/v1/rules", nil); r.status != http.StatusOK {
		t.Fatalf("rules: %d %s", r.status, r.body)
	}
	var id string
	for _, team := range []string{"A", "B"} {
		admin := w.admin
		if team == "B" && twoOrgs {
			admin = w.adminB
		}
		doc, docTok := w.userBy(admin, map[string]any{"name": "Dr " + team, "role": "clinician"})
		sched, schedTok := w.userBy(admin, map[string]any{"name": "Scheduler " + team, "role": "scheduler"})
		r := admin.do("POST", "/v1/care-teams", map[string]any{"name": "Team " + team,
			"members": []map[string]any{{"user_id": doc, "role": "clinician"}, {"user_id": sched, "role": "scheduler"}}})
		if r.status != http.StatusCreated {
			t.Fatalf("team: %d %s", r.status, r.body)
		}
		var tm struct{ ID string }
		r.decode(t, &tm)
		r = admin.do("POST", "/v1/patients", map[string]any{"display_name": "Patient " + team, "timezone": "Europe/Paris",
			"care_team_id": tm.ID, "programs": []string{"hypertension"}})
		if r.status != http.StatusCreated {
			t.Fatalf("patient: %d %s", r.status, r.body)
		}
		var p struct{ ID string }
		r.decode(t, &p)
		_, patTok := w.userBy(admin, map[string]any{"name": "Patient user " + team, "role": "patient", "patient_id": p.ID})
		_, devTok := w.userBy(admin, map[string]any{"name": "Cuff " + team, "role": "device", "patient_id": p.ID})
		suffix := ""
		if team == "B" {
			suffix = "B"
		}
		w.actors["clinician"+suffix] = w.admin.as(docTok)
		w.actors["scheduler"+suffix] = w.admin.as(schedTok)
		w.actors["patient"+suffix] = w.admin.as(patTok)
		w.actors["device"+suffix] = w.admin.as(devTok)
		w.patient[team], w.clinician[team], w.scheduler[team] = p.ID, doc, sched
		for kind, m := range map[string]map[string]string{"patient": w.thread, "staff_patient": w.staff} {
			if err := pool.QueryRow(ctx, `SELECT id FROM threads WHERE patient_id = $1 AND kind = $2`, p.ID, kind).Scan(&id); err != nil {
				t.Fatal(err)
			}
			m[team] = id
		}
		r = w.admin.as(patTok).do("POST", "/v1/threads/"+w.thread[team]+"/messages", map[string]any{"body": "Feeling dizzy"})
		var msg struct{ ID string }
		r.decode(t, &msg)
		if msg.ID == "" {
			t.Fatalf("message: %d %s", r.status, r.body)
		}
		w.message[team] = msg.ID
		r = w.admin.as(devTok).do("POST", "/v1/patients/"+p.ID+"/readings", map[string]any{"kind": "blood_pressure",
			"systolic": 244, "diastolic": 142, "unit": "mm[Hg]", "observed_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
		var res struct{ Alerts []struct{ ID string } }
		r.decode(t, &res)
		if len(res.Alerts) == 0 {
			t.Fatalf("no alert raised for team %s: %s", team, r.body)
		}
		w.alert[team] = res.Alerts[0].ID
		r = w.admin.as(docTok).do("POST", "/v1/me/devices", map[string]any{"platform": "fcm", "token": "fcm-token-of-" + team})
		var d struct{ ID string }
		r.decode(t, &d)
		w.device[team] = d.ID
		w.schedule[team], _ = w.schedules(schedTok, p.ID)
		// The staff-only thread is end-to-end encrypted: both members
		// have a device with keys.
		w.e2ee[team] = newE2EEClient(t, w.admin.as(docTok))
		w.spare[team] = newE2EEClient(t, w.admin.as(docTok)).id
		newE2EEClient(t, w.admin.as(schedTok))
		if r := w.admin.as(docTok).do("POST", "/v1/threads/"+w.staff[team]+"/encrypt", nil); r.status != http.StatusOK {
			t.Fatalf("encrypt: %d %s", r.status, r.body)
		}
		w.encFile[team], _ = w.e2ee[team].upload(t, w.admin.as(docTok), w.staff[team], "ward round.pdf", "application/pdf",
			[]byte("%PDF-1.7\nward round notes"))
	}
	return w
}

// schedules creates two medication schedules for a patient as the team's
// scheduler: one to read and change, and one whose first dose is due in ten
// minutes (Europe/Paris), to confirm. It returns the first schedule and the
// dose.
func (w *world) schedules(schedTok, patient string) (schedule, dose string) {
	w.t.Helper()
	c := w.admin.as(schedTok)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		w.t.Fatal(err)
	}
	soon := time.Now().In(paris).Add(10 * time.Minute)
	var ids [2]string
	for i, times := range [][]string{{"08:00", "20:00"}, {soon.Format("15:04")}} {
		r := c.do("POST", "/v1/patients/"+patient+"/schedules", map[string]any{"type": "medication", "medication": "Amlodipine",
			"times": times, "start_date": time.Now().In(paris).Format(time.DateOnly)})
		if r.status != http.StatusCreated {
			w.t.Fatalf("schedule: %d %s", r.status, r.body)
		}
		var sc struct{ ID string }
		r.decode(w.t, &sc)
		ids[i] = sc.ID
	}
	if err := w.pool.QueryRow(context.Background(), `SELECT id FROM doses WHERE schedule_id = $1 ORDER BY due_at LIMIT 1`, ids[1]).Scan(&dose); err != nil {
		w.t.Fatal(err)
	}
	w.dose[map[bool]string{true: "A", false: "B"}[len(w.dose) == 0]] = dose
	return ids[0], dose
}

func (w *world) user(body map[string]any) (id, token string) {
	w.t.Helper()
	return w.userBy(w.admin, body)
}

// userBy creates a user and a token of theirs as admin.
func (w *world) userBy(admin client, body map[string]any) (id, token string) {
	w.t.Helper()
	r := admin.do("POST", "/v1/users", body)
	if r.status != http.StatusCreated {
		w.t.Fatalf("user: %d %s", r.status, r.body)
	}
	var u struct{ ID string }
	r.decode(w.t, &u)
	r = admin.do("POST", "/v1/users/"+u.ID+"/tokens", map[string]any{})
	var tok struct{ Token string }
	r.decode(w.t, &tok)
	return u.ID, tok.Token
}

// counts returns the number of rows of every table Tend and River own.
func (w *world) counts() map[string]int64 {
	w.t.Helper()
	ctx := context.Background()
	rows, err := w.pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`)
	if err != nil {
		w.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			w.t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	out := map[string]int64{}
	for _, tb := range tables {
		if tb == "worker_heartbeats" || tb == "river_leader" || tb == "goose_db_version" {
			continue
		}
		var n int64
		if err := w.pool.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %q`, tb)).Scan(&n); err != nil {
			w.t.Fatal(err)
		}
		out[tb] = n
	}
	// Partitions are tables too: a rejected reading must not create one.
	var parts int64
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass`).Scan(&parts); err != nil {
		w.t.Fatal(err)
	}
	out["readings partitions"] = parts
	return out
}

// endpoint describes how the matrices call one route: who may call it, the
// id to put in its path, and a valid body.
type endpoint struct {
	actor string
	id    func(w *world) string
	body  func(w *world) any
	// scoped: the {id} names an object inside a care team's scope, so an
	// out-of-scope id must be answered exactly like a nonexistent one.
	scoped bool
	// otherID is an out-of-scope id for the scoped check (defaults to team
	// B's version of id).
	otherID func(w *world) string
	// optionalBody: an empty body is valid.
	optionalBody bool
}

func orgA(w *world) string     { return w.org["A"] }
func orgB(w *world) string     { return w.org["B"] }
func patientA(w *world) string { return w.patient["A"] }
func patientB(w *world) string { return w.patient["B"] }

// erasable is a patient of team A that no other row uses, made on first
// need, for the erasure row.
func erasable(w *world) string {
	if id := w.spare["erasable"]; id != "" {
		return id
	}
	r := w.admin.do("POST", "/v1/patients", map[string]any{"display_name": "Erasable", "timezone": "UTC", "care_team_id": teamA(w)})
	var p struct{ ID string }
	r.decode(w.t, &p)
	if p.ID == "" {
		w.t.Fatalf("erasable patient: %d %s", r.status, r.body)
	}
	w.spare["erasable"] = p.ID
	return p.ID
}

func teamA(w *world) string { return w.teamOf(w.patient["A"]) }
func teamB(w *world) string { return w.teamOf(w.patient["B"]) }

// teamOf returns the care team of a patient.
func (w *world) teamOf(patient string) string {
	var team string
	if err := w.pool.QueryRow(context.Background(), `SELECT care_team_id FROM patients WHERE id = $1`, patient).Scan(&team); err != nil {
		w.t.Fatal(err)
	}
	return team
}

func threadA(w *world) string { return w.thread["A"] }
func staffA(w *world) string  { return w.staff["A"] }
func staffB(w *world) string  { return w.staff["B"] }
func threadB(w *world) string { return w.thread["B"] }

func nowRFC3339() string { return time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) }

// endpoints has a row for every route of routes(): a route without one fails
// TestEveryRouteHasMatrixRows.
var endpoints = map[string]endpoint{
	"GET /healthz": {},
	"GET /readyz":  {},
	"GET /metrics": {},
	"POST /v1/users": {actor: "admin", body: func(*world) any {
		return map[string]any{"name": "New Nurse", "role": "clinician"}
	}},
	"GET /v1/users": {actor: "admin"},
	"POST /v1/organisations": {actor: "super_admin", body: func(*world) any {
		return map[string]any{"name": "Third clinic", "slug": "third", "timezone": "Europe/London"}
	}},
	"GET /v1/organisations":      {actor: "clinician"},
	"GET /v1/organisations/{id}": {actor: "clinician", id: orgA, scoped: true, otherID: orgB},
	"PATCH /v1/organisations/{id}": {actor: "admin", id: orgA, scoped: true, otherID: orgB, body: func(*world) any {
		return map[string]any{"name": "Default clinic", "timezone": "Europe/London",
			"branding":    map[string]any{"name": "Heart team", "primary_color": "#0b5394", "accent_color": "#38761d"},
			"quiet_hours": map[string]any{"start": "21:00", "end": "07:00"},
			"retention":   map[string]any{"readings_days": 3650, "messages_days": 3650, "attachments_days": 3650, "deliveries_days": 90}}
	}},
	"GET /v1/organisations/{id}/logo":    {actor: "clinician", id: orgA, scoped: true, otherID: orgB},
	"PUT /v1/organisations/{id}/logo":    {actor: "admin", id: orgA, scoped: true, otherID: orgB},
	"DELETE /v1/organisations/{id}/logo": {actor: "admin", id: orgA, scoped: true, otherID: orgB},
	"PATCH /v1/users/{id}": {actor: "admin", id: func(w *world) string { return w.clinician["A"] },
		body: func(*world) any { return map[string]any{"disabled": false} }},
	"GET /v1/users/{id}/tokens": {actor: "admin", id: func(w *world) string { return w.clinician["A"] }},
	"DELETE /v1/tokens/{id}":    {actor: "admin", id: func(*world) string { return uuid.NewString() }},
	"GET /v1/patients":          {actor: "clinician"},
	"GET /v1/directory":         {actor: "clinician"},
	"POST /v1/users/{id}/tokens": {actor: "admin", id: func(w *world) string { return w.clinician["A"] }, optionalBody: true,
		body: func(*world) any { return map[string]any{} }},
	"POST /v1/care-teams": {actor: "admin", body: func(w *world) any {
		return map[string]any{"name": "Night team", "member_ids": []string{w.clinician["A"]}}
	}},
	"GET /v1/care-teams":      {actor: "clinician"},
	"GET /v1/care-teams/{id}": {actor: "clinician", id: teamA, scoped: true, otherID: teamB},
	"PUT /v1/care-teams/{id}": {actor: "admin", id: teamA, scoped: true, otherID: teamB, body: func(w *world) any {
		return map[string]any{"name": "Team A (days)", "timezone": "Europe/Paris", "on_call": []map[string]any{
			{"user_id": w.clinician["A"], "weekday": "monday", "start": "08:00", "end": "20:00"}},
			"escalation": map[string]any{"ack_deadlines": map[string]any{"critical": "5m"}, "levels": []string{"on_call", "all"},
				"skip_offline_first_step": true}}
	}},
	"POST /v1/patients": {actor: "admin", body: func(w *world) any {
		var team string
		_ = w.pool.QueryRow(context.Background(), `SELECT care_team_id FROM patients WHERE id = $1`, w.patient["A"]).Scan(&team)
		return map[string]any{"display_name": "Jo Doe", "timezone": "America/Chicago", "care_team_id": team,
			"programs": []string{"hypertension"}, "external_id": "mrn-1"}
	}},
	"GET /v1/patients/{id}": {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"PATCH /v1/patients/{id}": {actor: "clinician", id: patientA, scoped: true, otherID: patientB, body: func(*world) any {
		return map[string]any{"timezone": "Europe/Berlin", "programs": []string{"hypertension", "heart_failure"}}
	}},
	"GET /v1/me":       {actor: "clinician"},
	"GET /favicon.ico": {},
	"POST /v1/patients/{id}/readings": {actor: "device", id: patientA, scoped: true, otherID: patientB, body: func(*world) any {
		return map[string]any{"readings": []map[string]any{{"kind": "heart_rate", "value": 72, "unit": "/min",
			"observed_at": nowRFC3339(), "source_id": "cuff:1"}}}
	}},
	"GET /v1/patients/{id}/export": {actor: "patient", id: patientA, scoped: true, otherID: patientB},
	// Erasure is for good: its valid call erases a patient of team A made for it.
	"POST /v1/patients/{id}/erase": {actor: "admin", id: erasable, scoped: true, otherID: patientB, body: func(*world) any {
		return map[string]any{"reason": "written request"}
	}},
	"POST /v1/patients/{id}/restriction": {actor: "admin", id: patientA, scoped: true, otherID: patientB, body: func(*world) any {
		return map[string]any{"reason": "contests accuracy"}
	}},
	"DELETE /v1/patients/{id}/restriction": {actor: "admin", id: patientA, scoped: true, otherID: patientB},
	"GET /v1/patients/{id}/readings":       {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"GET /v1/patients/{id}/retakes":        {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"GET /v1/patients/{id}/params":         {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"DELETE /v1/patients/{id}/params":      {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"PUT /v1/patients/{id}/params": {actor: "clinician", id: patientA, scoped: true, otherID: patientB, body: func(*world) any {
		return map[string]any{"bp-crisis": map[string]any{"systolic_max": 175}}
	}},
	"POST /v1/patients/{id}/symptom-reports": {actor: "patient", id: patientA, scoped: true, otherID: patientB, body: func(*world) any {
		return map[string]any{"symptoms": []map[string]any{{"code": "dizziness", "severity": 3, "text": "after standing"}},
			"note": "since this morning"}
	}},
	"GET /v1/patients/{id}/symptom-reports": {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"POST /v1/patients/{id}/schedules": {actor: "scheduler", id: patientA, scoped: true, otherID: patientB, body: func(*world) any {
		// Short, so that each field's 1 MB variant still fits the body limit.
		return map[string]any{"type": "medication", "medication": "Lasix", "dose": "40 mg", "times": []string{"08:00"},
			"days_of_week": []string{"mon"}, "start_date": "2026-03-01", "grace_minutes": 90}
	}},
	"GET /v1/patients/{id}/schedules": {actor: "patient", id: patientA, scoped: true, otherID: patientB},
	"GET /v1/patients/{id}/doses":     {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"GET /v1/patients/{id}/adherence": {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"GET /v1/schedules/{id}": {actor: "clinician", id: func(w *world) string { return w.schedule["A"] }, scoped: true,
		otherID: func(w *world) string { return w.schedule["B"] }},
	"PATCH /v1/schedules/{id}": {actor: "scheduler", id: func(w *world) string { return w.schedule["A"] }, scoped: true,
		otherID: func(w *world) string { return w.schedule["B"] }, body: func(*world) any {
			return map[string]any{"times": []string{"09:00"}, "grace_minutes": 45, "dose": "10 mg", "paused": false}
		}},
	"DELETE /v1/schedules/{id}": {actor: "scheduler", id: func(w *world) string { return w.schedule["A"] }, scoped: true,
		otherID: func(w *world) string { return w.schedule["B"] }},
	"POST /v1/doses/{id}/confirm": {actor: "patient", id: func(w *world) string { return w.dose["A"] }, scoped: true,
		otherID: func(w *world) string { return w.dose["B"] }, body: func(*world) any { return map[string]any{"status": "taken"} }},
	"GET /v1/rules":        {actor: "admin"},
	"GET /v1/rules/errors": {actor: "admin"},
	"POST /v1/rules": {actor: "admin", body: func(*world) any {
		return map[string]any{"id": "hr-very-low", "title": "Very low heart rate", "kind": "heart_rate",
			"urgency": "high", "when": "value < params.min", "params": map[string]any{"min": 35}}
	}},
	"POST /v1/rules/backtest": {actor: "admin", body: func(w *world) any {
		return map[string]any{"rule_id": "bp-crisis", "since": time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339),
			"patient_ids": []string{w.patient["A"]}}
	}},
	"POST /v1/rules/simulate": {actor: "admin", body: func(*world) any {
		return map[string]any{"params": map[string]any{"bp-crisis": map[string]any{"systolic_max": 185}}, "patients": 20, "weeks": 1,
			"profiles": []string{"normal"}, "answer_rates": []float64{0.8}}
	}},
	"GET /v1/rules/{id}": {actor: "admin", id: func(*world) string { return "bp-crisis" }},
	"PUT /v1/rules/{id}": {actor: "admin", id: func(*world) string { return "hr-high" }, body: func(*world) any {
		return map[string]any{"id": "hr-high", "title": "High heart rate", "kind": "heart_rate",
			"urgency": "high", "when": "value > params.max", "params": map[string]any{"max": 135}}
	}},
	"GET /v1/alerts":      {actor: "clinician"},
	"GET /v1/alerts/{id}": {actor: "clinician", id: func(w *world) string { return w.alert["A"] }, scoped: true},
	"POST /v1/alerts/{id}/ack": {actor: "clinician", id: func(w *world) string { return w.alert["A"] }, scoped: true, optionalBody: true,
		body: func(*world) any { return map[string]any{"note": "calling the patient"} }},
	"POST /v1/alerts/{id}/snooze": {actor: "clinician", id: func(w *world) string { return w.alert["A"] }, scoped: true,
		body: func(*world) any {
			return map[string]any{"until": time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339), "note": "rechecking later"}
		}},
	"POST /v1/alerts/{id}/assign": {actor: "clinician", id: func(w *world) string { return w.alert["A"] }, scoped: true,
		body: func(w *world) any { return map[string]any{"user_id": w.clinician["A"]} }},
	"POST /v1/alerts/{id}/resolve": {actor: "clinician", id: func(w *world) string { return w.alert["A"] }, scoped: true,
		body: func(*world) any { return map[string]any{"disposition": "called_patient", "note": "advised rest"} }},
	"POST /v1/me/devices": {actor: "clinician", body: func(*world) any {
		return map[string]any{"platform": "fcm", "token": "fcm-new-token"}
	}},
	"GET /v1/me/devices": {actor: "clinician"},
	"DELETE /v1/me/devices/{id}": {actor: "clinician", id: func(w *world) string { return w.device["A"] }, scoped: true,
		otherID: func(w *world) string { return w.device["B"] }},
	"POST /v1/me/e2ee-devices": {actor: "clinician", body: func(*world) any {
		k, _ := e2ee.GenerateDeviceKeys()
		return map[string]any{"label": "ward laptop", "hpke_public_key": b64url(k.HPKEPublic),
			"signing_public_key": b64url(k.SigningPublic())}
	}},
	"GET /v1/me/e2ee-devices": {actor: "clinician"},
	"DELETE /v1/me/e2ee-devices/{id}": {actor: "clinician", id: func(w *world) string { return w.spare["A"] }, scoped: true,
		otherID: func(w *world) string { return w.spare["B"] }},
	"GET /v1/threads/{id}/keys": {actor: "clinician", id: staffA, scoped: true, otherID: staffB},
	"POST /v1/threads/{id}/encrypt": {actor: "clinician", id: staffA, scoped: true, otherID: staffB, optionalBody: true,
		body: func(*world) any { return map[string]any{} }},
	"POST /v1/threads/{id}/envelopes": {actor: "clinician", id: staffA, scoped: true, otherID: staffB, body: func(w *world) any {
		return w.e2ee["A"].seal(w.t, fetchKeys(w.t, w.actors["clinician"], w.staff["A"]), "Bed 4 needs a call back",
			w.encFile["A"])
	}},
	"GET /v1/me/presence": {actor: "clinician"},
	"POST /v1/me/presence": {actor: "clinician", body: func(*world) any {
		return map[string]any{"state": "away"}
	}},
	"GET /v1/me/preferences": {actor: "clinician"},
	"PUT /v1/me/preferences": {actor: "clinician", body: func(*world) any {
		return map[string]any{"timezone": "Europe/Paris", "quiet_hours": map[string]any{"start": "22:00", "end": "07:00"}}
	}},
	"GET /v1/audit":   {actor: "admin"},
	"GET /v1/threads": {actor: "patient"},
	"POST /v1/threads": {actor: "clinician", body: func(w *world) any {
		return map[string]any{"kind": "direct", "user_id": w.scheduler["A"]}
	}},
	"GET /v1/threads/{id}":          {actor: "patient", id: threadA, scoped: true, otherID: threadB},
	"GET /v1/threads/{id}/messages": {actor: "patient", id: threadA, scoped: true, otherID: threadB},
	"POST /v1/threads/{id}/messages": {actor: "patient", id: threadA, scoped: true, otherID: threadB, body: func(*world) any {
		return map[string]any{"body": "Swollen ankles since yesterday", "client_id": "phone-1:42"}
	}},
	"POST /v1/threads/{id}/read": {actor: "clinician", id: threadA, scoped: true, otherID: threadB, body: func(w *world) any {
		return map[string]any{"up_to": w.message["A"]}
	}},
	"POST /v1/threads/{id}/typing": {actor: "patient", id: threadA, scoped: true, otherID: threadB, optionalBody: true,
		body: func(*world) any { return map[string]any{} }},
	// A stream never ends: send reads only its status and headers and
	// closes it (see send).
	"GET /v1/stream":     {actor: "clinician"},
	"POST /v1/session":   {actor: "admin"},
	"DELETE /v1/session": {actor: "admin"},
	"GET /riverui/":      {actor: "admin"},
	"POST /riverui/":     {actor: "admin"},
	"PUT /riverui/":      {actor: "admin"},
	"PATCH /riverui/":    {actor: "admin"},
	"/":                  {},

	"GET /openapi.json": {},
	"GET /docs/":        {},
	"GET /{$}":          {},
	"GET /console/":     {},
	"GET /app/":         {},
	"POST /fhir/r4/Observation": {actor: "device", body: func(w *world) any {
		return fhirObservation(w.patient["A"], nowRFC3339())
	}},
	"POST /fhir/r4": {actor: "device", body: func(w *world) any {
		return map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{map[string]any{
			"request":  map[string]any{"method": "POST", "url": "Observation"},
			"resource": fhirObservation(w.patient["A"], nowRFC3339())}}}
	}},
	"GET /fhir/r4/Observation/{id}": {actor: "clinician", id: func(*world) string { return "unknown" }},
	"GET /fhir/r4/Observation":      {actor: "clinician"},
	"GET /fhir/r4/Patient/{id}":     {actor: "clinician", id: patientA, scoped: true, otherID: patientB},
	"GET /fhir/r4/Flag/{id}": {actor: "clinician", id: func(w *world) string { return w.alert["A"] }, scoped: true,
		otherID: func(w *world) string { return w.alert["B"] }},
	"GET /fhir/r4/Flag": {actor: "clinician"},
	"GET /fhir/r4/Communication/{id}": {actor: "patient", id: func(w *world) string { return w.message["A"] }, scoped: true,
		otherID: func(w *world) string { return w.message["B"] }},
	"GET /fhir/r4/Communication": {actor: "patient"},
	"GET /fhir/r4/metadata":      {},
	"/fhir/r4/":                  {},
	"/fhir/r4":                   {}, // the base: any method but POST answers 405
}

// fhirObservation is a valid vital-signs heart rate Observation.
func fhirObservation(patient, at string) map[string]any {
	return map[string]any{"resourceType": "Observation", "status": "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}}}},
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		"subject":           map[string]any{"reference": "Patient/" + patient},
		"effectiveDateTime": at,
		"identifier":        []any{map[string]any{"system": "urn:tend:test", "value": "obs-1"}},
		"valueQuantity":     map[string]any{"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
}

func TestEveryRouteHasMatrixRows(t *testing.T) {
	srv, err := api.New(api.Config{Engine: nil})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	seen := map[string]bool{}
	for _, r := range srv.Routes() {
		seen[r.Pattern] = true
		if _, ok := endpoints[r.Pattern]; !ok {
			missing = append(missing, r.Pattern)
		}
	}
	for p := range endpoints {
		if !seen[p] {
			t.Errorf("matrix row %q has no route", p)
		}
	}
	if len(missing) > 0 {
		t.Errorf("routes without rows in the bad-input and authorization matrices: %v", missing)
	}
}

func (w *world) path(pattern, id string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return "GET", "/nothing-here"
	}
	return method, strings.Replace(path, "{id}", id, 1)
}

// send makes one raw request with the given Content-Type.
func (w *world) send(c client, method, path, contentType string, body []byte) response {
	w.t.Helper()
	req, err := http.NewRequest(method, w.base+path, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// GET /v1/stream never ends: closing the body hangs up.
		return response{status: resp.StatusCode, header: resp.Header}
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
}

// mutation is one bad variant of a valid body.
type mutation struct {
	name  string
	body  []byte
	field string // the field the answer must name; "" when none can be
}

const rawInvalidUTF8 = "\xff\xfe"

// variant is one replacement of a leaf: val, or when raw is set, raw bytes
// written into the encoded body in its place.
type variant struct {
	name string
	val  any
	raw  string
}

// mutations derives the bad-input variants of a valid body: whole-body
// garbage, and for every leaf field NUL, invalid UTF-8, a 1 MB string, the
// wrong JSON type, an overflowing number, extreme dates and bad UUIDs.
func mutations(t *testing.T, valid any) []mutation {
	t.Helper()
	data, _ := json.Marshal(valid)
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		t.Fatal(err)
	}
	out := []mutation{
		{name: "malformed", body: []byte(`{"`)},
		{name: "empty", body: nil},
		{name: "array", body: []byte(`[]`)},
		{name: "null", body: []byte(`null`)},
		{name: "two values", body: append(append([]byte{}, data...), data...)},
		{name: "unknown field", body: mergeField(t, data, "zz_unknown", 1), field: "zz_unknown"},
		{name: "NUL key", body: mergeField(t, data, "a\u0000b", 1)},
		{name: "deep", body: []byte(strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40))},
	}
	const marker = "\u0001MARK\u0001"
	leaves(tree, "", func(path string, v any, set func(any)) {
		var variants []variant
		switch v := v.(type) {
		case string:
			variants = append(variants,
				variant{"NUL", v + "\u0000x", ""},
				variant{"invalid UTF-8", marker, rawInvalidUTF8},
				variant{"1 MB", strings.Repeat("a", 1<<20-200), ""},
				variant{"number for string", 12345, ""},
			)
			if _, err := uuid.Parse(v); err == nil {
				variants = append(variants, variant{"bad UUID", "not-a-uuid", ""})
			}
			if _, err := time.Parse(time.RFC3339, v); err == nil {
				for _, d := range []string{"0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-12-01 08:00:00"} {
					variants = append(variants, variant{"date " + d, d, ""})
				}
			}
		case float64:
			variants = append(variants,
				variant{"string for number", "12", ""},
				variant{"overflow", marker, "1e999"},
				variant{"NaN", marker, "NaN"},
			)
		}
		for _, vr := range variants {
			set(vr.val)
			b, _ := json.Marshal(tree)
			if vr.raw != "" {
				enc, _ := json.Marshal(marker)
				repl := vr.raw
				if vr.raw == rawInvalidUTF8 {
					repl = `"` + vr.raw + `"`
				}
				b = bytes.Replace(b, enc, []byte(repl), 1)
			}
			field := path
			if vr.name == "NaN" {
				field = "" // not JSON at all: a syntax error, at no field
			}
			out = append(out, mutation{name: path + ": " + vr.name, body: b, field: field})
			set(v)
		}
	})
	return out
}

func mergeField(t *testing.T, data []byte, key string, val any) []byte {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return data
	}
	m[key] = val
	b, _ := json.Marshal(m)
	return b
}

// leaves calls fn for every scalar of tree with its path (a.b[2].c) and a
// setter that replaces it in place.
func leaves(tree any, path string, fn func(path string, v any, set func(any))) {
	switch n := tree.(type) {
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			switch n[k].(type) {
			case map[string]any, []any:
				leaves(n[k], p, fn)
			default:
				fn(p, n[k], func(v any) { n[k] = v })
			}
		}
	case []any:
		for i := range n {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch n[i].(type) {
			case map[string]any, []any:
				leaves(n[i], p, fn)
			default:
				fn(p, n[i], func(v any) { n[i] = v })
			}
		}
	}
}

// TestBadInputMatrix sends every malformed variant of every write endpoint's
// valid body, and wrong content types: each must be a 4xx problem+json that
// names the field when there is one, never a 5xx, and no table may change.
func TestBadInputMatrix(t *testing.T) {
	w := newOrgsWorld(t)
	for _, r := range w.srv.Routes() {
		idOf(w, endpoints[r.Pattern]) // ids made on first need are made before counting
	}
	before := w.counts()
	for _, r := range w.srv.Routes() {
		ep := endpoints[r.Pattern]
		if ep.body == nil {
			continue
		}
		method, path := w.path(r.Pattern, idOf(w, ep))
		c := w.actors[ep.actor]
		valid := ep.body(w)
		ms := mutations(t, valid)
		good, _ := json.Marshal(valid)
		okType, wantType := "application/json", "application/problem+json"
		if r.FHIR {
			okType, wantType = "application/fhir+json", "application/fhir+json"
		}
		for _, ct := range []string{"text/plain", "application/jsonx", "application/json; charset=latin1", "application/xml"} {
			ms = append(ms, mutation{name: "content type " + ct, body: good})
		}
		if strings.HasSuffix(r.Pattern, "/readings") {
			items := make([]map[string]any, 1001)
			for i := range items {
				items[i] = map[string]any{"kind": "heart_rate", "value": 70, "unit": "/min", "observed_at": nowRFC3339()}
			}
			big, _ := json.Marshal(map[string]any{"readings": items})
			ms = append(ms, mutation{name: "oversize batch", body: big, field: "readings"})
		}
		for _, m := range ms {
			if m.name == "empty" && ep.optionalBody {
				continue
			}
			ct := okType
			if name, ok := strings.CutPrefix(m.name, "content type "); ok {
				ct = name
			}
			resp := w.send(c, method, path, ct, m.body)
			label := r.Pattern + " " + m.name
			if resp.status < 400 || resp.status >= 500 {
				t.Errorf("%s: status %d, want 4xx: %.300s", label, resp.status, resp.body)
				continue
			}
			if got := resp.header.Get("Content-Type"); !strings.HasPrefix(got, wantType) {
				t.Errorf("%s: Content-Type %q", label, got)
			}
			if r.FHIR {
				var oo outcome
				if err := json.Unmarshal(resp.body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 ||
					oo.Issue[0].Diagnostics == "" {
					t.Errorf("%s: not an OperationOutcome: %.300s", label, resp.body)
				}
				continue
			}
			var p problem
			if err := json.Unmarshal(resp.body, &p); err != nil || p.Title == "" {
				t.Errorf("%s: not a problem: %.300s", label, resp.body)
				continue
			}
			if len(m.body) > 1<<20 {
				// Past the body limit (a long valid body with a 1 MB
				// field): nothing is parsed, so no field is named.
				if resp.status != http.StatusRequestEntityTooLarge {
					t.Errorf("%s: %d-byte body answered %d, want 413", label, len(m.body), resp.status)
				}
				continue
			}
			if m.field != "" && !namesField(p, m.field) {
				t.Errorf("%s: answer does not name %q: %.400s", label, m.field, resp.body)
			}
		}
	}
	after := w.counts()
	for tb, n := range before {
		if after[tb] != n {
			t.Errorf("table %s: %d rows before the bad requests, %d after", tb, n, after[tb])
		}
	}
	// The valid bodies themselves are accepted: the matrix tests the
	// mutations, not a broken baseline.
	for _, r := range w.srv.Routes() {
		ep := endpoints[r.Pattern]
		if ep.body == nil {
			continue
		}
		method, path := w.path(r.Pattern, idOf(w, ep))
		b, _ := json.Marshal(ep.body(w))
		ct := "application/json"
		if r.FHIR {
			ct = "application/fhir+json"
		}
		resp := w.send(w.actors[ep.actor], method, path, ct, b)
		if resp.status >= 300 {
			t.Errorf("%s with its valid body: %d %.300s", r.Pattern, resp.status, resp.body)
		}
	}
}

func idOf(w *world, ep endpoint) string {
	if ep.id == nil {
		return ""
	}
	return ep.id(w)
}

// namesField reports whether a problem names field (or, for a field inside an
// object the API decodes by hand, a field that ends with it).
func namesField(p problem, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field || strings.HasPrefix(field, e.Field+".") || strings.HasPrefix(field, e.Field+"[") ||
			strings.HasSuffix(e.Field, "."+field) {
			return true
		}
	}
	return strings.Contains(p.Detail, field)
}

// TestAuthorizationMatrix calls every route as every role, on an object of
// the caller's own team, another team's, and one that does not exist. No
// answer is a 5xx, and for every scoped route the answer about another
// team's object equals the answer about a nonexistent one: nobody learns
// that an object they may not see exists.
func TestAuthorizationMatrix(t *testing.T) {
	w := newOrgsWorld(t)
	roles := slices.Sorted(func(yield func(string) bool) {
		for k := range w.actors {
			if !yield(k) {
				return
			}
		}
	})
	roles = append(roles, "anonymous", "bad token")
	// What must never reach anyone outside organisation B, and the health
	// information an operator must never see.
	orgB := []string{w.org["B"], w.patient["B"], w.alert["B"], w.thread["B"], w.staff["B"], w.message["B"], w.clinician["B"],
		w.scheduler["B"], w.schedule["B"], w.dose["B"], teamB(w), "Patient B", "Dr B", "Scheduler B", "Cuff B"}
	phi := []string{w.patient["A"], w.patient["B"], w.alert["A"], w.alert["B"], w.message["A"], w.message["B"], w.thread["A"],
		w.thread["B"], "Patient A", "Patient B", "Feeling dizzy"}
	for _, r := range w.srv.Routes() {
		ep := endpoints[r.Pattern]
		for _, role := range roles {
			c := w.actors[role]
			switch role {
			case "anonymous":
				c = client{t: t, base: w.base}
			case "bad token":
				c = client{t: t, base: w.base, token: "tend_" + strings.Repeat("x", 40)}
			}
			var body []byte
			if ep.body != nil {
				body, _ = json.Marshal(ep.body(w))
			}
			call := func(id string) response {
				method, path := w.path(r.Pattern, id)
				if path == "/nothing-here" {
					method, path = "GET", "/v1/no-such-endpoint"
				}
				if c.token == "" {
					req, _ := http.NewRequest(method, w.base+path, bytes.NewReader(body))
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					return response{status: resp.StatusCode, header: resp.Header}
				}
				return w.send(c, method, path, "application/json", body)
			}
			own := call(idOf(w, ep))
			if own.status >= 500 {
				t.Errorf("%s as %s: %d %.200s", r.Pattern, role, own.status, own.body)
			}
			var secrets []string
			switch {
			case role == "super_admin":
				secrets = phi
			case !strings.HasSuffix(role, "B"):
				secrets = orgB
			}
			_, sent := w.path(r.Pattern, idOf(w, ep))
			answer := own.body
			if r.Pattern == "GET /v1/audit" {
				answer = withoutOwnRefusals(t, answer)
			}
			for _, s := range secrets {
				// (A problem names the path it answers: an id the caller
				// sent is no leak.)
				if s != "" && !strings.Contains(sent, s) && bytes.Contains(answer, []byte(s)) {
					i := bytes.Index(answer, []byte(s))
					t.Errorf("%s as %s: the answer (%d) holds %q, of organisation B or health information: …%s…", r.Pattern, role, own.status, s,
						answer[max(0, i-300):min(len(answer), i+100)])
				}
			}
			if r.Authenticated && (role == "anonymous" || role == "bad token") && own.status != http.StatusUnauthorized {
				t.Errorf("%s as %s: %d, want 401", r.Pattern, role, own.status)
			}
			if !ep.scoped {
				continue
			}
			other := ""
			switch {
			case ep.otherID != nil:
				other = ep.otherID(w)
			case strings.Contains(r.Pattern, "/alerts/"):
				other = w.alert["B"]
			}
			if strings.HasSuffix(role, "B") || role == "super_admin" {
				// Team B's actors see team A's objects as "other": covered
				// by the A rows with B ids. An operator sees organisations
				// and no PHI: TestOrganisationLeaks.
				continue
			}
			nonexistent := call(uuid.NewString())
			outOfScope := call(other)
			if outOfScope.status != nonexistent.status || problemTitle(outOfScope) != problemTitle(nonexistent) {
				t.Errorf("%s as %s: another team's object answers %d %q, a nonexistent one %d %q",
					r.Pattern, role, outOfScope.status, problemTitle(outOfScope), nonexistent.status, problemTitle(nonexistent))
			}
			if outOfScope.status < 300 {
				t.Errorf("%s as %s: another team's object answered %d", r.Pattern, role, outOfScope.status)
			}
		}
	}
}

// withoutOwnRefusals is a page of the audit trail without its
// request.refused entries: the matrix's own calls on organisation B's ids,
// refused and recorded in the caller's organisation, name the ids the caller
// sent.
func withoutOwnRefusals(t *testing.T, body []byte) []byte {
	t.Helper()
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return body
	}
	kept := page.Items[:0]
	for _, e := range page.Items {
		if e["action"] != "request.refused" {
			kept = append(kept, e)
		}
	}
	out, _ := json.Marshal(kept)
	return out
}

func problemTitle(r response) string {
	var p problem
	_ = json.Unmarshal(r.body, &p)
	return p.Title
}
