package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// The matrices' rows of broadcasts and attachments. An attachment upload's
// body is the file's raw bytes, not JSON: its bad input (types, sizes) is
// tested by TestAttachmentSniffing, so its row has no JSON body.
func init() {
	endpoints["POST /v1/care-teams/{id}/broadcasts"] = endpoint{actor: "admin", id: teamA, scoped: true, otherID: teamB,
		body: func(*world) any { return map[string]any{"body": "The clinic is closed on Monday.", "urgent": true} }}
	endpoints["GET /v1/broadcasts/{id}"] = endpoint{actor: "admin", scoped: true,
		id:      func(w *world) string { return w.broadcastOf("A") },
		otherID: func(w *world) string { return w.broadcastOf("B") }}
	endpoints["POST /v1/threads/{id}/attachments"] = endpoint{actor: "patient", scoped: true,
		id:      func(w *world) string { return w.threadOf("A", "patient") },
		otherID: func(w *world) string { return w.threadOf("B", "patient") }}
	endpoints["GET /v1/attachments/{id}"] = endpoint{actor: "patient", scoped: true,
		id:      func(w *world) string { return w.attachmentOf("A") },
		otherID: func(w *world) string { return w.attachmentOf("B") }}
}

// made caches the objects the matrix rows create on first use, per world.
var made sync.Map // madeKey → id

type madeKey struct {
	w   *world
	key string
}

func (w *world) once(key string, create func() string) string {
	if v, ok := made.Load(madeKey{w, key}); ok {
		return v.(string)
	}
	id := create()
	made.Store(madeKey{w, key}, id)
	return id
}

// teamOrg returns the organisation of team's patient.
func (w *world) teamOrg(team string) string {
	w.t.Helper()
	var org string
	if err := w.pool.QueryRow(context.Background(), `SELECT org_id FROM patients WHERE id = $1`, w.patient[team]).Scan(&org); err != nil {
		w.t.Fatal(err)
	}
	return org
}

// threadOf returns team's patient's thread of the given kind.
func (w *world) threadOf(team, kind string) string {
	w.t.Helper()
	var id string
	if err := w.pool.QueryRow(context.Background(), `SELECT id FROM threads WHERE patient_id = $1 AND kind = $2`,
		w.patient[team], kind).Scan(&id); err != nil {
		w.t.Fatal(err)
	}
	return id
}

// broadcastOf returns a broadcast of team's care team, made by the admin of
// its organisation.
func (w *world) broadcastOf(team string) string {
	return w.once("broadcast "+team, func() string {
		admin := w.admin
		if team == "B" && w.teamOrg("B") != w.org["A"] {
			admin = w.adminB
		}
		r := admin.do("POST", "/v1/care-teams/"+w.teamOf(w.patient[team])+"/broadcasts", map[string]any{"body": "Closed Monday"})
		if r.status != http.StatusAccepted {
			w.t.Fatalf("broadcast: %d %s", r.status, r.body)
		}
		var b struct{ ID string }
		r.decode(w.t, &b)
		return b.ID
	})
}

// attachmentOf returns a PNG that team's clinician uploaded to the patient
// thread.
func (w *world) attachmentOf(team string) string {
	return w.once("attachment "+team, func() string {
		c := w.actors["clinician"]
		if team == "B" {
			c = w.actors["clinicianB"]
		}
		r := w.send(c, "POST", "/v1/threads/"+w.threadOf(team, "patient")+"/attachments", "image/png", pngFile)
		if r.status != http.StatusCreated {
			w.t.Fatalf("attachment: %d %s", r.status, r.body)
		}
		var a struct{ ID string }
		r.decode(w.t, &a)
		return a.ID
	})
}

// lead makes a new clinician a lead of team and returns their client.
func (w *world) lead(team string) client {
	w.t.Helper()
	id, tok := w.user(map[string]any{"name": "Lead " + team, "role": "clinician"})
	if _, err := w.pool.Exec(context.Background(), `INSERT INTO care_team_members (care_team_id, user_id, role, org_id) VALUES ($1, $2, 'lead', '00000000-0000-0000-0000-000000000001')`,
		w.teamOf(w.patient[team]), id); err != nil {
		w.t.Fatal(err)
	}
	return w.admin.as(tok)
}

// TestBroadcastAuthorization: who may broadcast to a team and follow a
// broadcast, as each role, on the caller's own team, another team and a
// team that does not exist. Leads of the team and admins may; other members
// are forbidden; anyone else finds nothing.
func TestBroadcastAuthorization(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.actors["lead"] = w.lead("A")
	w.actors["leadB"] = w.lead("B")
	teams := map[string]string{"own team": teamA(w), "other team": teamB(w), "no such team": uuid.NewString()}
	// want[role][object] for POST and GET alike.
	want := map[string]map[string]int{
		"admin":      {"own team": 202, "other team": 202, "no such team": 404},
		"lead":       {"own team": 202, "other team": 404, "no such team": 404},
		"leadB":      {"own team": 404, "other team": 202, "no such team": 404},
		"clinician":  {"own team": 403, "other team": 404, "no such team": 404},
		"scheduler":  {"own team": 403, "other team": 404, "no such team": 404},
		"patient":    {"own team": 404, "other team": 404, "no such team": 404},
		"device":     {"own team": 404, "other team": 404, "no such team": 404},
		"clinicianB": {"own team": 404, "other team": 403, "no such team": 404},
		"patientB":   {"own team": 404, "other team": 404, "no such team": 404},
	}
	broadcasts := map[string]string{"own team": w.broadcastOf("A"), "other team": w.broadcastOf("B"), "no such team": uuid.NewString()}
	for role, objects := range want {
		c := w.actors[role]
		for object, status := range objects {
			r := c.do("POST", "/v1/care-teams/"+teams[object]+"/broadcasts", map[string]any{"body": "Clinic closed Monday"})
			if r.status != status {
				t.Errorf("POST broadcast as %s on %s: %d, want %d: %s", role, object, r.status, status, r.body)
			}
			getWant := status
			if getWant == http.StatusAccepted {
				getWant = http.StatusOK
			}
			r = c.do("GET", "/v1/broadcasts/"+broadcasts[object], nil)
			if r.status != getWant {
				t.Errorf("GET broadcast as %s on %s: %d, want %d: %s", role, object, r.status, getWant, r.body)
			}
		}
	}
	// A patient's own team exists and the patient is in it, yet it answers
	// exactly like a team that does not exist.
	own := w.actors["patient"].do("POST", "/v1/care-teams/"+teamA(w)+"/broadcasts", map[string]any{"body": "x"})
	none := w.actors["patient"].do("POST", "/v1/care-teams/"+uuid.NewString()+"/broadcasts", map[string]any{"body": "x"})
	if own.status != none.status || problemTitle(own) != problemTitle(none) {
		t.Errorf("patient: own team %d %q, no team %d %q", own.status, problemTitle(own), none.status, problemTitle(none))
	}
}

// TestBroadcastProgress: the answer and the progress of a broadcast before
// its fan-out ran: every patient thread of the team counted, none done.
func TestBroadcastProgress(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	lead := w.lead("A")
	r := lead.do("POST", "/v1/care-teams/"+teamA(w)+"/broadcasts", map[string]any{"body": "Flu shots this week", "urgent": true})
	if r.status != http.StatusAccepted {
		t.Fatalf("broadcast: %d %s", r.status, r.body)
	}
	var b struct {
		ID                   string
		Status               string
		Urgent               bool
		Total, Done, Failed  int
		CareTeamID, SenderID string `json:"-"`
	}
	r.decode(t, &b)
	if r.header.Get("Location") != "/v1/broadcasts/"+b.ID || b.Total != 1 || b.Done != 0 || b.Failed != 0 || b.Status != "running" || !b.Urgent {
		t.Fatalf("broadcast = %+v (Location %q)", b, r.header.Get("Location"))
	}
	var jobs int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'message.broadcast' AND args->>'broadcast_id' = $1`,
		b.ID).Scan(&jobs); err != nil || jobs != 1 {
		t.Fatalf("fan-out jobs = %d, %v; want 1", jobs, err)
	}
	// Bad input stores nothing.
	for _, body := range []map[string]any{{"body": ""}, {"urgent": true}, {"body": strings.Repeat("a", 4001)}} {
		r := lead.do("POST", "/v1/care-teams/"+teamA(w)+"/broadcasts", body)
		if r.status != http.StatusUnprocessableEntity || !namesField(decodeProblem(t, r), "body") {
			t.Errorf("broadcast %v: %d %s", body, r.status, r.body)
		}
	}
	var n int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM broadcasts`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("broadcasts stored = %d, %v; want 1", n, err)
	}
}

func decodeProblem(t *testing.T, r response) problem {
	t.Helper()
	var p problem
	r.decode(t, &p)
	return p
}
