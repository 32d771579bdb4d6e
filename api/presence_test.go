package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine/enginetest"
)

// presenceJSON is a user's presence as another sees it.
type presenceJSON struct {
	State    string  `json:"state"`
	LastSeen *string `json:"last_seen"`
}

// presenceOf returns the state of user in a thread as actor sees it through
// process proc ("" when the participant's presence is not shown), and the
// care_team_available flag (nil when absent).
func (w *streamWorld) presenceOf(proc int, actor, thread, user string) (state string, available *bool, body string) {
	w.t.Helper()
	c := client{t: w.t, base: w.bases[proc], token: w.tokens[actor]}
	r := c.do("GET", "/v1/threads/"+thread, nil)
	if r.status != http.StatusOK {
		w.t.Fatalf("GET thread as %s: %d %s", actor, r.status, r.body)
	}
	var out struct {
		Participants []struct {
			UserID   string        `json:"user_id"`
			Presence *presenceJSON `json:"presence"`
		} `json:"participants"`
		Available *bool `json:"care_team_available"`
	}
	r.decode(w.t, &out)
	for _, p := range out.Participants {
		if p.UserID == user && p.Presence != nil {
			state = p.Presence.State
		}
	}
	return state, out.Available, string(r.body)
}

// patientThread returns patient A's thread with their care team.
func (w *streamWorld) patientThread() string {
	w.t.Helper()
	c := client{t: w.t, base: w.bases[0], token: w.tokens["patientA"]}
	r := c.do("GET", "/v1/threads", nil)
	var out struct{ Items []struct{ ID, Kind string } }
	r.decode(w.t, &out)
	for _, th := range out.Items {
		if th.Kind == "patient" {
			return th.ID
		}
	}
	w.t.Fatalf("patient A has no thread: %s", r.body)
	return ""
}

// presenceAbout returns the data of the next presence event about user,
// skipping other events.
func (c *sseClient) presenceAbout(user string) map[string]any {
	c.t.Helper()
	for {
		if ev := c.nextPresence(); ev["user_id"] == user {
			return ev
		}
	}
}

// nextPresence returns the data of the next presence event, skipping others.
func (c *sseClient) nextPresence() map[string]any {
	c.t.Helper()
	ev := c.nextOf(func(ev sseEvent) bool { return ev.typ == "presence" })
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil || ev.id != "" {
		c.t.Fatalf("presence event %q (id %q): %v", ev.data, ev.id, err)
	}
	return m
}

// noPresence fails if a presence event arrives before the stream's next
// heartbeat comment (the stream's heartbeat is short in these tests).
func (c *sseClient) noPresence(who, self string) {
	c.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("%s: the stream ended", who)
			}
			if ev.typ == "presence" && !strings.Contains(ev.data, self) {
				c.t.Fatalf("%s received a presence event it may not see: %s", who, ev.data)
			}
			if ev.comment == "heartbeat" {
				return
			}
		case <-deadline:
			return
		}
	}
}

// TestPresenceAcrossProcesses: a user is online while a stream of theirs is
// open in any process, once however many; offline with last_seen when the
// last closes. Who sees it: staff of the user's teams and of a patient's
// threads; another team's staff nothing; a patient only whether their care
// team has someone available, never who; a hidden staff member is offline
// to everyone. The events carry no id (never stored), and no change is
// audited.
func TestPresenceAcrossProcesses(t *testing.T) {
	t.Parallel()
	w := newStreamWorld(t, time.Second)
	ctx := context.Background()
	var audits int
	count := func() int {
		var n int
		if err := w.pools[0].QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	thread := w.patientThread()
	patient, doc, sched := w.actors["patientA"].UserID.String(), w.actors["clinicianA"].UserID.String(), w.actors["schedulerA"].UserID.String()

	schedStream := openStream(t, w.bases[1], w.tokens["schedulerA"], "", false)
	otherTeam := openStream(t, w.bases[0], w.tokens["clinicianB"], "", false)
	if state, _, body := w.presenceOf(0, "schedulerA", thread, patient); state != "offline" || !strings.Contains(body, `"state":"online"`) {
		t.Fatalf("before the patient connects: %q (%s)", state, body)
	}
	// The patient connects to both processes: online once.
	p0 := openStream(t, w.bases[0], w.tokens["patientA"], "", false)
	if ev := schedStream.presenceAbout(patient); ev["state"] != "online" {
		t.Fatalf("scheduler's event: %v", ev)
	}
	p1 := openStream(t, w.bases[1], w.tokens["patientA"], "", false)
	if state, _, _ := w.presenceOf(1, "schedulerA", thread, patient); state != "online" {
		t.Fatalf("patient on two processes: %q", state)
	}
	// Closing one leaves the patient online; closing the other does not.
	p0.cancel()
	enginetest.WaitFor(t, func() bool {
		var n int
		_ = w.pools[0].QueryRow(ctx, `SELECT count(*) FROM presence WHERE user_id = $1`, patient).Scan(&n)
		return n == 1 // process 0's row is gone, process 1's stays
	})
	if state, _, _ := w.presenceOf(0, "schedulerA", thread, patient); state != "online" {
		t.Fatalf("after one of two streams closed: %q", state)
	}
	p1.cancel()
	if ev := schedStream.presenceAbout(patient); ev["state"] != "offline" || ev["last_seen"] == nil {
		t.Fatalf("scheduler's event after the last stream closed: %v", ev)
	}
	if state, _, _ := w.presenceOf(0, "schedulerA", thread, patient); state != "offline" {
		t.Fatalf("after both closed: %q", state)
	}
	otherTeam.noPresence("team B's clinician", w.actors["clinicianB"].UserID.String())

	// A patient learns only whether the team has someone available.
	pat := openStream(t, w.bases[0], w.tokens["patientA"], "", false)
	schedStream.presenceAbout(patient) // the patient came online
	if _, avail, body := w.presenceOf(0, "patientA", thread, doc); avail == nil || !*avail || strings.Contains(body, "participants") || strings.Contains(body, sched) {
		t.Fatalf("patient's view with the scheduler online: %s", body)
	}
	docStream := openStream(t, w.bases[1], w.tokens["clinicianA"], "", false)
	if ev := schedStream.presenceAbout(doc); ev["state"] != "online" {
		t.Fatalf("scheduler sees the clinician: %v", ev)
	}
	if ev := pat.nextPresence(); len(ev) != 1 || ev["care_team_available"] != true {
		t.Fatalf("the patient's event names more than availability: %v", ev)
	}
	// The clinician goes away (idle), then hides.
	c := client{t: t, base: w.bases[1], token: w.tokens["clinicianA"]}
	audits = count()
	if r := c.do("POST", "/v1/me/presence", map[string]any{"state": "away"}); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), `"state":"away"`) || !strings.Contains(string(r.body), `"idle_seconds":300`) {
		t.Fatalf("away: %d %s", r.status, r.body)
	}
	if ev := schedStream.presenceAbout(doc); ev["state"] != "away" {
		t.Fatalf("scheduler sees away: %v", ev)
	}
	if r := c.do("POST", "/v1/me/presence", map[string]any{"state": "online", "hidden": true}); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), `"hidden":true`) {
		t.Fatalf("hide: %d %s", r.status, r.body)
	}
	if ev := schedStream.presenceAbout(doc); ev["state"] != "offline" || ev["last_seen"] != nil {
		t.Fatalf("a hidden clinician as the scheduler sees them: %v", ev)
	}
	if n := count(); n != audits {
		t.Errorf("presence changes wrote %d audit entries", n-audits)
	}
	if state, _, _ := w.presenceOf(0, "schedulerA", thread, doc); state != "offline" {
		t.Fatalf("hidden clinician in the thread: %q", state)
	}
	if state, _, _ := w.presenceOf(0, "clinicianA", thread, doc); state != "online" {
		t.Fatalf("the hidden clinician's own view: %q", state)
	}
	otherTeam.noPresence("team B's clinician", w.actors["clinicianB"].UserID.String())
	_ = docStream
	// A patient may not hide; bad states name their field.
	pc := client{t: t, base: w.bases[0], token: w.tokens["patientA"]}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"hidden": true}, "hidden"},
		{map[string]any{"state": "busy"}, "state"},
		{map[string]any{}, "state"},
	} {
		wantProblem(t, pc.do("POST", "/v1/me/presence", tc.body), http.StatusUnprocessableEntity, tc.field)
	}
	wantProblem(t, client{t: t, base: w.bases[0], token: w.tokens["deviceA"]}.do("GET", "/v1/me/presence", nil), http.StatusNotFound)
}

// teamPresence returns, as actor sees GET /v1/care-teams/{team A} through
// process proc, each member's presence state ("" when not shown) and
// whether a last_seen time is given; and the answer's status.
func (w *streamWorld) teamPresence(proc int, actor string) (map[string]string, map[string]bool, int) {
	w.t.Helper()
	c := client{t: w.t, base: w.bases[proc], token: w.tokens[actor]}
	r := c.do("GET", "/v1/care-teams/"+w.team["A"].String(), nil)
	if r.status != http.StatusOK {
		return nil, nil, r.status
	}
	var out struct {
		Members []struct {
			UserID   string        `json:"user_id"`
			Presence *presenceJSON `json:"presence"`
		} `json:"members"`
	}
	r.decode(w.t, &out)
	states, seen := map[string]string{}, map[string]bool{}
	for _, m := range out.Members {
		if m.Presence != nil {
			states[m.UserID], seen[m.UserID] = m.Presence.State, m.Presence.LastSeen != nil
		}
	}
	return states, seen, r.status
}

// TestTeamPresence: GET /v1/care-teams/{id} shows each member's presence to
// the team's own members — online while a stream of theirs is open in any
// process, away once their client says so, offline with last_seen after;
// a hidden member is offline without last_seen to the others and as they
// are to themselves. An admin who is not a member sees the team without
// presence; another team's clinician does not find the team.
func TestTeamPresence(t *testing.T) {
	t.Parallel()
	w := newStreamWorld(t, time.Second)
	doc, sched := w.actors["clinicianA"].UserID.String(), w.actors["schedulerA"].UserID.String()
	want := func(actor, user, state string, lastSeen bool) {
		t.Helper()
		states, seen, status := w.teamPresence(0, actor)
		if status != http.StatusOK || states[user] != state || seen[user] != lastSeen {
			t.Errorf("%s sees %s as %q (last_seen %v, status %d), want %q (last_seen %v)", actor, user, states[user],
				seen[user], status, state, lastSeen)
		}
	}
	want("schedulerA", doc, "offline", false) // never seen
	docStream := openStream(t, w.bases[1], w.tokens["clinicianA"], "", false)
	schedStream := openStream(t, w.bases[0], w.tokens["schedulerA"], "", false)
	want("schedulerA", doc, "online", true)
	want("clinicianA", sched, "online", true)
	c := client{t: t, base: w.bases[1], token: w.tokens["clinicianA"]}
	if r := c.do("POST", "/v1/me/presence", map[string]any{"state": "away"}); r.status != http.StatusOK {
		t.Fatalf("away: %d %s", r.status, r.body)
	}
	want("schedulerA", doc, "away", true)
	if r := c.do("POST", "/v1/me/presence", map[string]any{"state": "online", "hidden": true}); r.status != http.StatusOK {
		t.Fatalf("hide: %d %s", r.status, r.body)
	}
	want("schedulerA", doc, "offline", false)
	want("clinicianA", doc, "online", true)
	if r := c.do("POST", "/v1/me/presence", map[string]any{"hidden": false}); r.status != http.StatusOK {
		t.Fatalf("show: %d %s", r.status, r.body)
	}
	docStream.cancel()
	enginetest.WaitFor(t, func() bool {
		states, _, _ := w.teamPresence(0, "schedulerA")
		return states[doc] == "offline"
	})
	want("schedulerA", doc, "offline", true)
	schedStream.cancel()
	if states, _, status := w.teamPresence(0, "admin"); status != http.StatusOK || len(states) != 0 {
		t.Errorf("an admin outside the team: %d, presence %v", status, states)
	}
	if _, _, status := w.teamPresence(0, "clinicianB"); status != http.StatusNotFound {
		t.Errorf("another team's clinician reads team A: %d", status)
	}
}
