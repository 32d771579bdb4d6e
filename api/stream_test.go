package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// streamWorld is two "processes" on one database — each its own pool,
// engine and API server — with two care teams. Team A has a clinician and a
// scheduler, team B a clinician; each team has a patient with a device, and
// patient A a patient user.
type streamWorld struct {
	t      *testing.T
	url    string
	pools  [2]*pgxpool.Pool
	engs   [2]*engine.Engine
	srvs   [2]*api.Server
	bases  [2]string
	tokens map[string]string       // actor name → token
	actors map[string]engine.Actor // actor name → actor
	team   map[string]uuid.UUID
	pat    map[string]uuid.UUID
	source int
}

func newStreamWorld(t *testing.T, heartbeat time.Duration) *streamWorld {
	t.Helper()
	w := &streamWorld{t: t, url: enginetest.NewDatabase(t), tokens: map[string]string{}, actors: map[string]engine.Actor{},
		team: map[string]uuid.UUID{}, pat: map[string]uuid.UUID{}}
	ctx := context.Background()
	for i := range 2 {
		cfg, err := pgxpool.ParseConfig(w.url)
		if err != nil {
			t.Fatal(err)
		}
		engine.ConfigurePool(cfg)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		eng, err := engine.New(engine.Config{Pool: pool, Keys: testKeys(t)})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := api.New(api.Config{Engine: eng, RateLimit: -1, StreamHeartbeat: heartbeat})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		t.Cleanup(eng.CloseStreams) // before hs.Close: streams end, so the server can close
		w.pools[i], w.engs[i], w.srvs[i], w.bases[i] = pool, eng, srv, hs.URL
	}
	eng := w.engs[0]
	sys := engine.System("test")
	user := func(name string, role engine.Role, patient uuid.UUID) uuid.UUID {
		u, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: name, Role: role, PatientID: patient})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := eng.CreateToken(ctx, sys, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		a, err := eng.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[name], w.actors[name] = tok, a
		return u.ID
	}
	user("admin", engine.RoleAdmin, uuid.Nil)
	for _, tm := range []string{"A", "B"} {
		members := []engine.TeamMember{{UserID: user("clinician"+tm, engine.RoleClinician, uuid.Nil), Role: "clinician"}}
		if tm == "A" {
			members = append(members, engine.TeamMember{UserID: user("schedulerA", engine.RoleScheduler, uuid.Nil), Role: "scheduler"})
		}
		team, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Team " + tm, Members: members})
		if err != nil {
			t.Fatal(err)
		}
		p, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: "Patient " + tm, Timezone: "Europe/London",
			CareTeamID: team.ID, Programs: []string{"hypertension"}})
		if err != nil {
			t.Fatal(err)
		}
		w.team[tm], w.pat[tm] = team.ID, p.ID
		user("device"+tm, engine.RoleDevice, p.ID)
	}
	user("patientA", engine.RolePatient, w.pat["A"])
	return w
}

// raise posts a critical SpO2 reading of team's patient through process
// proc's API and returns the alert it raised or updated.
func (w *streamWorld) raise(proc int, team string) string {
	w.t.Helper()
	w.source++
	c := client{t: w.t, base: w.bases[proc], token: w.tokens["device"+team]}
	r := c.do("POST", "/v1/patients/"+w.pat[team].String()+"/readings", map[string]any{"readings": []map[string]any{{
		"kind": "spo2", "value": 72, "unit": "%", "observed_at": time.Now().Add(-time.Duration(100-w.source) * time.Second).UTC().Format(time.RFC3339),
		"source_id": fmt.Sprintf("oximeter:%d", w.source),
	}}})
	if r.status != http.StatusCreated {
		w.t.Fatalf("post reading: %d %s", r.status, r.body)
	}
	var out struct{ Alerts []struct{ ID string } }
	r.decode(w.t, &out)
	if len(out.Alerts) == 0 {
		w.t.Fatalf("the critical reading raised no alert: %s", r.body)
	}
	return out.Alerts[0].ID
}

// sseEvent is one event (or, with comment set, one comment line) as a
// client parsed it.
type sseEvent struct {
	id, typ, data, comment string
}

// alertID is the alert_id of the event's data.
func (e sseEvent) alertID(t *testing.T) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.data), &m); err != nil {
		t.Fatalf("event data %q: %v", e.data, err)
	}
	id, _ := m["alert_id"].(string)
	return id
}

type sseClient struct {
	t      *testing.T
	status int
	events chan sseEvent // closed when the stream ends
	cancel context.CancelFunc
}

// openStream connects to GET /v1/stream of base as token; lastID, when set,
// is sent as Last-Event-ID (or, with query, as ?last_event_id).
func openStream(t *testing.T, base, token, lastID string, query bool) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	url := base + "/v1/stream"
	if lastID != "" && query {
		url += "?last_event_id=" + lastID
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" && !query {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	c := &sseClient{t: t, status: resp.StatusCode, events: make(chan sseEvent, 256), cancel: cancel}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(c.events)
		return c
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	go func() {
		defer close(c.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch {
			case line == "":
				if ev.typ != "" || ev.data != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case field == "":
				c.events <- sseEvent{comment: value}
			case field == "id":
				ev.id = value
			case field == "event":
				ev.typ = value
			case field == "data":
				ev.data = value
			}
		}
	}()
	return c
}

// threadEvents passes on sub's events other than presence (which
// api/presence_test.go tests), one at a time.
func threadEvents(sub *engine.StreamSubscription) <-chan *engine.StreamMessage {
	out := make(chan *engine.StreamMessage, 1)
	go func() {
		for m := range sub.Events() {
			if m.Type != "presence" {
				out <- m
				return
			}
		}
	}()
	return out
}

// next returns the next event, skipping comments. A stream that stays
// silent for a minute fails the test (a hang guard, not a timing check).
// Presence events are skipped too (api/presence_test.go reads them with
// nextOf).
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	return c.nextOf(func(ev sseEvent) bool { return ev.typ != "presence" })
}

// nextOf returns the next event that want accepts, skipping comments and
// the others; a minute without one fails the test.
func (c *sseClient) nextOf(want func(sseEvent) bool) sseEvent {
	c.t.Helper()
	guard := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatal("the stream ended")
			}
			if ev.comment == "" && want(ev) {
				return ev
			}
		case <-guard:
			c.t.Fatal("no event within a minute")
		}
	}
}

// TestStreamAcrossProcesses: an alert raised through one process reaches an
// SSE client of the other, as alert.created with the alert's id, status and
// urgency; a later change to it is alert.updated. A clinician of team B
// receives nothing of team A's: the first event B's stream delivers is B's
// own alert, raised after A's.
func TestStreamAcrossProcesses(t *testing.T) {
	w := newStreamWorld(t, 0)
	a := openStream(t, w.bases[1], w.tokens["clinicianA"], "", false)
	b := openStream(t, w.bases[1], w.tokens["clinicianB"], "", false)
	adm := openStream(t, w.bases[0], w.tokens["admin"], "", false)

	alertA := w.raise(0, "A")
	ev := a.next()
	if ev.typ != "alert.created" || ev.alertID(t) != alertA || ev.id == "" {
		t.Fatalf("clinician A got %+v, want alert.created of %s", ev, alertA)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(ev.data), &data); err != nil {
		t.Fatal(err)
	}
	if data["status"] != "open" || data["urgency"] != "critical" {
		t.Errorf("event data %s: want status open, urgency critical", ev.data)
	}
	if _, ok := data["id"]; ok {
		t.Errorf("event data %s has an id: the console would take it for the alert's", ev.data)
	}

	alertB := w.raise(0, "B")
	if ev := b.next(); ev.alertID(t) != alertB {
		t.Fatalf("clinician B's first event is %+v, want B's alert %s (A's must never arrive)", ev, alertB)
	}
	// Acknowledged through process 1: an update, to A's stream only.
	r := client{t: t, base: w.bases[1], token: w.tokens["clinicianA"]}.do("POST", "/v1/alerts/"+alertA+"/ack", map[string]any{})
	if r.status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	if ev := a.next(); ev.typ != "alert.updated" || ev.alertID(t) != alertA || !strings.Contains(ev.data, `"acknowledged"`) {
		t.Errorf("clinician A got %+v, want alert.updated acknowledged", ev)
	}
	// The admin sees everything, in commit order.
	for _, want := range []string{alertA, alertB, alertA} {
		if ev := adm.next(); ev.alertID(t) != want {
			t.Errorf("admin got %+v, want %s", ev, want)
		}
	}
}

// TestStreamScopeOfEveryEvent checks every role against every event at the
// subscription level, where "received nothing" can be checked exactly: an
// event is handed to all subscriptions at once, so once the admin's has it,
// anyone else's has it too or never will.
func TestStreamScopeOfEveryEvent(t *testing.T) {
	w := newStreamWorld(t, 0)
	ctx := context.Background()
	subs := map[string]*engine.StreamSubscription{}
	for name, a := range w.actors {
		sub, err := w.engs[1].Subscribe(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Close)
		subs[name] = sub
	}
	sees := map[string][]string{ // actor → teams whose alert events it receives
		"admin": {"A", "B"}, "clinicianA": {"A"}, "clinicianB": {"B"},
		"schedulerA": nil, // schedulers never see alerts (403 on GET /v1/alerts), nor their events
		"deviceA":    nil, "deviceB": nil, "patientA": nil,
	}
	for _, team := range []string{"A", "B", "A"} {
		id := w.raise(0, team)
		// Everyone who may see the event receives it (fan-out to the
		// subscriptions is not instantaneous: wait for each).
		for name, teams := range sees {
			if !strings.Contains(strings.Join(teams, ""), team) {
				continue
			}
			select {
			case m := <-threadEvents(subs[name]):
				if !strings.Contains(string(m.Data), id) {
					t.Errorf("%s received %s %s, want team %s's alert %s", name, m.Type, m.Data, team, id)
				}
			case <-time.After(time.Minute):
				t.Fatalf("%s did not receive team %s's alert within a minute", name, team)
			}
		}
	}
	// Nobody received anything more: every event a subscription may see was
	// taken above, so anything left over is an event it must not see. The
	// last event reached its recipients; a leak to the others would have
	// been handed over in the same pass.
	time.Sleep(300 * time.Millisecond)
	for name := range sees {
		for more := true; more; {
			select {
			case m := <-subs[name].Events():
				if m.Type != "presence" { // who is online: api/presence_test.go
					t.Errorf("%s received %s %s, which it may not see", name, m.Type, m.Data)
				}
			default:
				more = false
			}
		}
	}
	// Replayed from the start (scope.EventSQL, not SeesEvent): the same
	// events per actor, counted exactly.
	var first int64
	if err := w.pools[0].QueryRow(ctx, `SELECT min(id) FROM events`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	for name, teams := range sees {
		after := first - 1
		sub, err := w.engs[1].Subscribe(ctx, w.actors[name], &after)
		if err != nil {
			t.Fatal(err)
		}
		want := 0 // events raised for team A, B, A: one each
		for _, team := range teams {
			want += strings.Count("ABA", team)
		}
		if got := len(sub.Backlog()); got != want {
			t.Errorf("%s replayed %d events, want %d", name, got, want)
		}
		sub.Close()
	}
}

// TestStreamReplay: a client that dropped reconnects with Last-Event-ID (or
// ?last_event_id) and first receives, in order, the events it missed that it
// may see, then live ones.
func TestStreamReplay(t *testing.T) {
	w := newStreamWorld(t, 0)
	for _, query := range []bool{false, true} {
		c := openStream(t, w.bases[1], w.tokens["clinicianA"], "", false)
		first := w.raise(0, "A")
		ev := c.next()
		if ev.alertID(t) != first {
			t.Fatalf("got %+v, want %s", ev, first)
		}
		c.cancel() // the connection drops
		for range c.events {
		}
		missed := []string{w.raise(0, "A"), w.raise(0, "B"), w.raise(1, "A")}
		c = openStream(t, w.bases[1], w.tokens["clinicianA"], ev.id, query)
		if c.status != http.StatusOK {
			t.Fatalf("reconnect: %d", c.status)
		}
		for _, want := range []string{missed[0], missed[2]} {
			if got := c.next(); got.alertID(t) != want {
				t.Fatalf("replay (query %v): got %+v, want %s", query, got, want)
			}
		}
		live := w.raise(0, "A")
		if got := c.next(); got.alertID(t) != live {
			t.Fatalf("after the replay: got %+v, want the live %s", got, live)
		}
		c.cancel()
	}
}

// TestStreamReset: an id older than the oldest retained event (they were
// pruned), or newer than any issued, answers one reset event.
func TestStreamReset(t *testing.T) {
	w := newStreamWorld(t, 0)
	w.raise(0, "A")
	w.raise(0, "A")
	w.raise(0, "A")
	var oldest, newest int64
	if err := w.pools[0].QueryRow(context.Background(), `SELECT min(id), max(id) FROM events`).Scan(&oldest, &newest); err != nil {
		t.Fatal(err)
	}
	// The latest event is still in the log: replaying from just before it
	// works.
	c := openStream(t, w.bases[0], w.tokens["clinicianA"], itoa(newest-1), false)
	if ev := c.next(); ev.typ != "alert.updated" || ev.id != itoa(newest) {
		t.Fatalf("replay from %d: %+v", newest-1, ev)
	}
	// Prune everything but the newest (as if the retention had passed).
	if _, err := w.pools[0].Exec(context.Background(), `UPDATE events SET at = at - interval '25 hours' WHERE id < $1`, newest); err != nil {
		t.Fatal(err)
	}
	n, err := w.engs[0].PruneEvents(context.Background())
	if err != nil || n != newest-oldest {
		t.Fatalf("pruned %d (%v), want %d", n, err, newest-oldest)
	}
	for _, last := range []int64{oldest, newest + 1000} {
		c := openStream(t, w.bases[1], w.tokens["clinicianA"], itoa(last), false)
		if ev := c.next(); ev.typ != "reset" {
			t.Errorf("Last-Event-ID %d: got %+v, want reset", last, ev)
		}
	}
	// An id that is not a number names the field.
	c = openStream(t, w.bases[0], w.tokens["clinicianA"], "x1", true)
	if c.status != http.StatusUnprocessableEntity {
		t.Errorf("last_event_id=x1: %d, want 422", c.status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestStreamHeartbeat: an idle stream gets a comment line every heartbeat
// interval (here shortened), and outlives the server's read and write
// timeouts (as tend serve sets them, here shortened too): twenty heartbeats
// take four times the timeouts at least.
func TestStreamHeartbeat(t *testing.T) {
	const beat = 20 * time.Millisecond
	w := newStreamWorld(t, beat)
	hs := httptest.NewUnstartedServer(w.srvs[0])
	hs.Config.ReadTimeout, hs.Config.WriteTimeout = 5*beat, 5*beat
	hs.Start()
	t.Cleanup(hs.Close)
	c := openStream(t, hs.URL, w.tokens["clinicianA"], "", false)
	var beats int
	for ev := range c.events {
		if ev.comment == "heartbeat" {
			beats++
		} else if ev.comment == "" && ev.typ != "presence" { // the clinician's own coming online
			t.Fatalf("unexpected event %+v", ev)
		}
		if beats == 20 {
			return
		}
	}
	t.Fatalf("the stream ended after %d heartbeats", beats)
}

// TestStreamEndsWhenTokenRevoked: the heartbeat re-checks the token, so a
// revoked token's stream ends (once the authentication cache forgets it).
func TestStreamEndsWhenTokenRevoked(t *testing.T) {
	w := newStreamWorld(t, 20*time.Millisecond)
	c := openStream(t, w.bases[0], w.tokens["clinicianA"], "", false)
	if ev := <-c.events; ev.comment != "connected" {
		t.Fatalf("first line %+v", ev)
	}
	if _, err := w.pools[0].Exec(context.Background(), `UPDATE tokens SET revoked_at = now() WHERE user_id = $1`,
		w.actors["clinicianA"].UserID); err != nil {
		t.Fatal(err)
	}
	guard := time.After(time.Minute) // a hang guard, not a timing check
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return // the stream ended
			}
			if ev.comment == "" && ev.typ != "presence" { // the clinician's own coming online
				t.Errorf("unexpected event %+v", ev)
			}
		case <-guard:
			t.Fatal("the stream of a revoked token still runs after a minute")
		}
	}
}

// TestStreamShutdown: closing the streams (what tend serve does as its HTTP
// shutdown starts) ends every open stream, and new ones are refused with 503.
func TestStreamShutdown(t *testing.T) {
	w := newStreamWorld(t, 0)
	c := openStream(t, w.bases[0], w.tokens["clinicianA"], "", false)
	c2 := openStream(t, w.bases[0], w.tokens["admin"], "", false)
	w.engs[0].CloseStreams()
	for _, s := range []*sseClient{c, c2} {
		for ev := range s.events {
			if ev.comment == "" {
				t.Errorf("unexpected event %+v", ev)
			}
		}
	}
	if s := openStream(t, w.bases[0], w.tokens["clinicianA"], "", false); s.status != http.StatusServiceUnavailable {
		t.Errorf("a stream opened after shutdown: %d, want 503", s.status)
	}
	// The other process streams on.
	c = openStream(t, w.bases[1], w.tokens["clinicianA"], "", false)
	id := w.raise(0, "A")
	if ev := c.next(); ev.alertID(t) != id {
		t.Errorf("process 1 after process 0 closed its streams: %+v", ev)
	}
}
