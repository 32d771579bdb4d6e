package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// msgWorld is a server with two care teams. Team A has a clinician, a lead
// and a scheduler, and two patients (A1, A2) with patient users, A1 also a
// device; team B a clinician and a patient (B) with a patient user. The
// admin belongs to no team.
type msgWorld struct {
	t    *testing.T
	pool *pgxpool.Pool
	eng  *engine.Engine
	base string
	// streamBase serves the same API without the contract check, for
	// GET /v1/stream.
	streamBase string
	tokens     map[string]string    // actor name → token
	ids        map[string]uuid.UUID // actor name → user id
	thread     map[string]string    // thread name → id
}

func newMsgWorld(t *testing.T) *msgWorld {
	t.Helper()
	pool := enginetest.NewPool(t)
	eng, err := engine.New(engine.Config{Pool: pool, Keys: testKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.CheckContract(t, srv)) // every exchange is checked against the OpenAPI document
	t.Cleanup(hs.Close)
	raw := httptest.NewServer(srv) // for streams, which the contract check would buffer
	t.Cleanup(raw.Close)
	t.Cleanup(eng.CloseStreams)
	w := &msgWorld{t: t, pool: pool, eng: eng, base: hs.URL, streamBase: raw.URL, tokens: map[string]string{}, ids: map[string]uuid.UUID{},
		thread: map[string]string{}}
	ctx := context.Background()
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
		w.tokens[name], w.ids[name] = tok, u.ID
		return u.ID
	}
	user("admin", engine.RoleAdmin, uuid.Nil)
	patient := func(name string, team uuid.UUID) uuid.UUID {
		p, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: name, Timezone: "UTC", CareTeamID: team})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	threadOf := func(name string, q string, args ...any) {
		var id string
		if err := pool.QueryRow(ctx, q, args...).Scan(&id); err != nil {
			t.Fatal(err)
		}
		w.thread[name] = id
	}
	teamA, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Team A", Members: []engine.TeamMember{
		{UserID: user("clinicianA", engine.RoleClinician, uuid.Nil), Role: "clinician"},
		{UserID: user("leadA", engine.RoleClinician, uuid.Nil), Role: "lead"},
		{UserID: user("schedulerA", engine.RoleScheduler, uuid.Nil), Role: "scheduler"}}})
	if err != nil {
		t.Fatal(err)
	}
	teamB, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Team B", Members: []engine.TeamMember{
		{UserID: user("clinicianB", engine.RoleClinician, uuid.Nil), Role: "clinician"}}})
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, b := patient("A1", teamA.ID), patient("A2", teamA.ID), patient("B", teamB.ID)
	user("patientA1", engine.RolePatient, a1)
	user("patientA2", engine.RolePatient, a2)
	user("patientB", engine.RolePatient, b)
	user("deviceA1", engine.RoleDevice, a1)
	const byPatient = `SELECT id FROM threads WHERE patient_id = $1 AND kind = $2`
	threadOf("own", byPatient, a1, "patient")
	threadOf("same team", byPatient, a2, "patient")
	threadOf("staff only", byPatient, a1, "staff_patient")
	threadOf("team channel", `SELECT id FROM threads WHERE care_team_id = $1 AND kind = 'team'`, teamA.ID)
	threadOf("other team", byPatient, b, "patient")
	threadOf("other team's staff", byPatient, b, "staff_patient")
	return w
}

func (w *msgWorld) as(name string) client { return client{t: w.t, base: w.base, token: w.tokens[name]} }

// post posts body to a thread as name and returns the message.
func (w *msgWorld) post(name, thread, body string) map[string]any {
	w.t.Helper()
	r := w.as(name).do("POST", "/v1/threads/"+w.thread[thread]+"/messages", map[string]any{"body": body})
	if r.status != http.StatusCreated {
		w.t.Fatalf("post to %s as %s: %d %s", thread, name, r.status, r.body)
	}
	var m map[string]any
	r.decode(w.t, &m)
	return m
}

// TestThreadAuthorizationTable calls every messaging endpoint as every role
// on the caller's own thread, another patient's thread of the same team, the
// team's staff-only thread and staff channel, and another team's threads:
// participants get their answer, everyone else a 404 that is the same as for
// a thread that does not exist. GET /v1/threads lists exactly the threads
// each may open.
func TestThreadAuthorizationTable(t *testing.T) {
	w := newMsgWorld(t)
	// A message in each thread, by a participant, for the read marks.
	seed := map[string]string{}
	for th, by := range map[string]string{"own": "clinicianA", "same team": "clinicianA", "staff only": "clinicianA",
		"team channel": "clinicianA", "other team": "clinicianB", "other team's staff": "clinicianB"} {
		seed[th] = w.post(by, th, "seed message")["id"].(string)
	}
	threads := []string{"own", "same team", "staff only", "team channel", "other team", "other team's staff"}
	staffA := map[string]bool{"own": true, "same team": true, "staff only": true, "team channel": true}
	may := map[string]map[string]bool{
		"patientA1":  {"own": true},
		"clinicianA": staffA,
		"leadA":      staffA,
		"schedulerA": staffA,
		"admin":      {},
		"deviceA1":   {},
	}
	type call struct {
		name, method, suffix string
		body                 func(thread string) any
		ok                   int
	}
	calls := []call{
		{"get thread", "GET", "", nil, http.StatusOK},
		{"list messages", "GET", "/messages", nil, http.StatusOK},
		{"post message", "POST", "/messages", func(string) any { return map[string]any{"body": "hello"} }, http.StatusCreated},
		{"mark read", "POST", "/read", func(th string) any { return map[string]any{"up_to": seed[th]} }, http.StatusOK},
		{"typing", "POST", "/typing", func(string) any { return map[string]any{} }, http.StatusAccepted},
	}
	roles := slices.Sorted(func(yield func(string) bool) {
		for r := range may {
			if !yield(r) {
				return
			}
		}
	})
	for _, role := range roles {
		c := w.as(role)
		for _, th := range threads {
			for _, cl := range calls {
				var body any
				if cl.body != nil {
					body = cl.body(th)
				}
				r := c.do(cl.method, "/v1/threads/"+w.thread[th]+cl.suffix, body)
				want := http.StatusNotFound
				if may[role][th] {
					want = cl.ok
				}
				if r.status != want {
					t.Errorf("%s %s on %s: %d, want %d: %.200s", role, cl.name, th, r.status, want, r.body)
				}
				if want == http.StatusNotFound {
					// Exactly as for a thread that does not exist.
					var b any
					if cl.body != nil {
						b = cl.body(th)
					}
					none := c.do(cl.method, "/v1/threads/"+uuid.NewString()+cl.suffix, b)
					if none.status != r.status || problemTitle(none) != problemTitle(r) {
						t.Errorf("%s %s on %s: %d %q, a nonexistent thread %d %q", role, cl.name, th, r.status, problemTitle(r),
							none.status, problemTitle(none))
					}
				}
			}
		}
		// The list shows exactly the threads the role may open.
		r := c.do("GET", "/v1/threads", nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s list threads: %d %s", role, r.status, r.body)
		}
		var list struct{ Items []struct{ ID string } }
		r.decode(t, &list)
		var got, want []string
		for _, it := range list.Items {
			got = append(got, it.ID)
		}
		for _, th := range threads {
			if may[role][th] {
				want = append(want, w.thread[th])
			}
		}
		if role == "clinicianA" || role == "leadA" || role == "schedulerA" {
			// Also the staff-only thread about A2.
			var id string
			if err := w.pool.QueryRow(context.Background(), `SELECT t.id FROM threads t JOIN threads o ON o.patient_id = t.patient_id
				WHERE o.id = $1 AND t.kind = 'staff_patient'`, w.thread["same team"]).Scan(&id); err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %d threads %v, want %d %v", role, len(got), got, len(want), want)
		}
	}

	// Direct threads: between two staff members of a common team only.
	direct := func(from, to string) response {
		return w.as(from).do("POST", "/v1/threads", map[string]any{"kind": "direct", "user_id": w.ids[to].String()})
	}
	first := direct("clinicianA", "schedulerA")
	again := direct("schedulerA", "clinicianA")
	var d1, d2 struct{ ID, Kind string }
	first.decode(t, &d1)
	again.decode(t, &d2)
	if first.status != http.StatusCreated || again.status != http.StatusOK || d1.ID != d2.ID || d1.Kind != "direct" {
		t.Errorf("direct thread: %d %s then %d %s; want 201 then 200 for the same thread", first.status, d1.ID, again.status, d2.ID)
	}
	for _, c := range []struct {
		from, to string
		want     int
	}{{"leadA", "clinicianB", 422}, {"admin", "clinicianA", 422}, {"clinicianA", "patientA1", 422},
		{"patientA1", "clinicianA", 404}, {"deviceA1", "clinicianA", 404}} {
		if r := direct(c.from, c.to); r.status != c.want {
			t.Errorf("direct %s → %s: %d, want %d: %s", c.from, c.to, r.status, c.want, r.body)
		}
	}
	if r := w.as("clinicianB").do("GET", "/v1/threads/"+d1.ID+"/messages", nil); r.status != http.StatusNotFound {
		t.Errorf("a third staff member reads a direct thread: %d", r.status)
	}
}

// TestReceiptsAcrossTwoClients: one clinician with two clients (a phone
// and a laptop, two tokens) and a third on the live stream. The patient
// sees each message sent, then delivered once any client fetched it (or the
// stream sent it), then read; a client marking an older message read, or
// fetching later, never moves a receipt back.
func TestReceiptsAcrossTwoClients(t *testing.T) {
	w := newMsgWorld(t)
	ctx := context.Background()
	laptop, err := w.eng.CreateToken(ctx, engine.System("test"), w.ids["clinicianA"])
	if err != nil {
		t.Fatal(err)
	}
	phone := w.as("clinicianA")
	pc := client{t: t, base: w.base, token: laptop}
	// Only the patient and clinician A should count as recipients here.
	if _, err := w.pool.Exec(ctx, `DELETE FROM care_team_members WHERE user_id IN ($1, $2)`, w.ids["leadA"], w.ids["schedulerA"]); err != nil {
		t.Fatal(err)
	}
	states := func() map[string]string {
		t.Helper()
		r := w.as("patientA1").do("GET", "/v1/threads/"+w.thread["own"]+"/messages", nil)
		var page struct {
			Items []struct {
				Body     string
				Receipts []struct {
					UserID string `json:"user_id"`
					Status string `json:"status"`
				} `json:"receipts"`
			}
		}
		r.decode(t, &page)
		out := map[string]string{}
		for _, m := range page.Items {
			for _, rc := range m.Receipts {
				if rc.UserID == w.ids["clinicianA"].String() {
					out[m.Body] = rc.Status
				}
			}
		}
		return out
	}
	m1 := w.post("patientA1", "own", "one")["id"].(string)
	m2 := w.post("patientA1", "own", "two")["id"].(string)
	if s := states(); s["one"] != "sent" || s["two"] != "sent" {
		t.Fatalf("before any fetch: %v", s)
	}
	if r := phone.do("GET", "/v1/threads/"+w.thread["own"]+"/messages", nil); r.status != http.StatusOK {
		t.Fatal(r.status)
	}
	if s := states(); s["one"] != "delivered" || s["two"] != "delivered" {
		t.Fatalf("after the phone fetched: %v", s)
	}
	if r := pc.do("POST", "/v1/threads/"+w.thread["own"]+"/read", map[string]any{"up_to": m2}); r.status != http.StatusOK {
		t.Fatal(r.status, string(r.body))
	}
	// The phone, behind, marks only the first: nothing moves back.
	r := phone.do("POST", "/v1/threads/"+w.thread["own"]+"/read", map[string]any{"up_to": m1})
	var st struct {
		ReadUpTo    int64 `json:"read_up_to"`
		UnreadCount int64 `json:"unread_count"`
	}
	r.decode(t, &st)
	if st.ReadUpTo != 2 || st.UnreadCount != 0 {
		t.Errorf("the phone's late read mark = %+v, want read_up_to 2 kept", st)
	}
	_ = pc.do("GET", "/v1/threads/"+w.thread["own"]+"/messages", nil)
	if s := states(); s["one"] != "read" || s["two"] != "read" {
		t.Fatalf("after the laptop read: %v", s)
	}

	// A third client on the live stream: its message.created makes the
	// next message delivered without any fetch.
	third, err := w.eng.CreateToken(ctx, engine.System("test"), w.ids["clinicianA"])
	if err != nil {
		t.Fatal(err)
	}
	sc := openStream(t, w.streamBase, third, "", false)
	m3 := w.post("patientA1", "own", "three")["id"].(string)
	for {
		ev := sc.next()
		if ev.typ == "message.created" && strings.Contains(ev.data, m3) {
			break
		}
	}
	waitForCond(t, func() bool { return states()["three"] == "delivered" })
	if s := states(); s["two"] != "read" {
		t.Errorf("older receipts changed: %v", s)
	}
	// The thread list counts the unread message for the clinician.
	var list struct {
		Items []struct {
			ID          string
			UnreadCount int64 `json:"unread_count"`
		}
	}
	phone.do("GET", "/v1/threads", nil).decode(t, &list)
	for _, it := range list.Items {
		if it.ID == w.thread["own"] && it.UnreadCount != 1 {
			t.Errorf("unread count %d, want 1", it.UnreadCount)
		}
	}
}

// waitForCond polls cond until it holds (a hang guard of a minute, not a
// timing check).
func waitForCond(t *testing.T, cond func() bool) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		sleepBriefly()
	}
	t.Fatal("condition not met within a minute")
}

// TestStaffThreadInvisibleToPatient: the patient can never see or detect
// the staff-only thread about them: not listed, 404 on every endpoint (as
// a thread that does not exist), and none of its events on their stream,
// while the events of their own thread, posted later, arrive.
func TestStaffThreadInvisibleToPatient(t *testing.T) {
	w := newMsgWorld(t)
	pat := w.as("patientA1")
	sc := openStream(t, w.streamBase, w.tokens["patientA1"], "", false)
	staff := w.post("clinicianA", "staff only", "between us: check the dose")["id"].(string)
	own := w.post("clinicianA", "own", "How are you today?")["id"].(string)
	for {
		ev := sc.next()
		if strings.Contains(ev.data, staff) || strings.Contains(ev.data, w.thread["staff only"]) {
			t.Fatalf("the patient's stream carried a staff-only event: %s %s", ev.typ, ev.data)
		}
		if strings.Contains(ev.data, "dose") || strings.Contains(ev.data, "How are you") {
			t.Fatalf("an event carries text: %s", ev.data)
		}
		if ev.typ == "message.created" && strings.Contains(ev.data, own) {
			break
		}
	}
	var list struct{ Items []struct{ ID, Kind string } }
	pat.do("GET", "/v1/threads", nil).decode(t, &list)
	for _, it := range list.Items {
		if it.Kind != "patient" || it.ID != w.thread["own"] {
			t.Errorf("the patient's list holds %s (%s)", it.ID, it.Kind)
		}
	}
	for _, path := range []string{"", "/messages"} {
		got := pat.do("GET", "/v1/threads/"+w.thread["staff only"]+path, nil)
		none := pat.do("GET", "/v1/threads/"+uuid.NewString()+path, nil)
		if got.status != http.StatusNotFound || string(stripRequest(got.body)) != string(stripRequest(none.body)) {
			t.Errorf("GET staff thread%s: %d %s, a nonexistent one %s", path, got.status, got.body, none.body)
		}
	}
	if r := pat.do("POST", "/v1/threads/"+w.thread["staff only"]+"/messages", map[string]any{"body": "hi?"}); r.status != http.StatusNotFound {
		t.Errorf("post to the staff thread: %d", r.status)
	}
	if r := pat.do("POST", "/v1/threads/"+w.thread["staff only"]+"/read", map[string]any{"up_to": staff}); r.status != http.StatusNotFound {
		t.Errorf("read mark on the staff thread: %d", r.status)
	}
	// Nor through its own thread: a staff message id is not one of it.
	if r := pat.do("POST", "/v1/threads/"+w.thread["own"]+"/read", map[string]any{"up_to": staff}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("read mark naming a staff message: %d", r.status)
	}
}

// stripRequest drops the parts of a problem that differ per request.
func stripRequest(b []byte) []byte {
	var p map[string]any
	if json.Unmarshal(b, &p) != nil {
		return b
	}
	delete(p, "request_id")
	delete(p, "instance")
	out, _ := json.Marshal(p)
	return out
}

// TestMessagePagesBothWays: before and after cursors page through a
// thread in both directions without gaps or repeats; a retried post (same
// client_id, or Idempotency-Key) returns the same message.
func TestMessagePagesBothWays(t *testing.T) {
	w := newMsgWorld(t)
	c := w.as("clinicianA")
	for i := range 7 {
		w.post("patientA1", "own", fmt.Sprintf("m%d", i+1))
	}
	type page struct {
		Items []struct {
			ID   string
			Seq  int64
			Body string
		}
		NextCursor   *string `json:"next_cursor"`
		BeforeCursor *string `json:"before_cursor"`
		AfterCursor  string  `json:"after_cursor"`
	}
	get := func(q string) page {
		t.Helper()
		var p page
		r := c.do("GET", "/v1/threads/"+w.thread["own"]+"/messages?limit=3"+q, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		r.decode(t, &p)
		return p
	}
	var seqs []int64
	p := get("")
	for {
		var s []int64
		for _, it := range p.Items {
			s = append(s, it.Seq)
		}
		seqs = append(s, seqs...)
		if p.NextCursor == nil {
			break
		}
		p = get("&before=" + *p.NextCursor)
	}
	if !slices.Equal(seqs, []int64{1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("paging back: %v", seqs)
	}
	// Forward from the oldest page, until a page comes back empty.
	oldest := get("&before=" + *get("&before=" + *get("").NextCursor).NextCursor)
	seqs = nil
	for p := oldest; len(p.Items) > 0; p = get("&after=" + p.AfterCursor) {
		for _, it := range p.Items {
			seqs = append(seqs, it.Seq)
		}
	}
	if !slices.Equal(seqs, []int64{1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("paging forward: %v", seqs)
	}
	if r := c.do("GET", "/v1/threads/"+w.thread["own"]+"/messages?after=bogus", nil); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a forged cursor: %d", r.status)
	}
	// Retries.
	post := func(body map[string]any, key string) response {
		return c.doHeader("POST", "/v1/threads/"+w.thread["own"]+"/messages", body, "Idempotency-Key", key)
	}
	a, b := post(map[string]any{"body": "once", "client_id": "x1"}, ""), post(map[string]any{"body": "once", "client_id": "x1"}, "")
	k1, k2 := post(map[string]any{"body": "keyed"}, "k-9"), post(map[string]any{"body": "keyed"}, "k-9")
	var ma, mb, mk1, mk2 struct{ ID string }
	a.decode(t, &ma)
	b.decode(t, &mb)
	k1.decode(t, &mk1)
	k2.decode(t, &mk2)
	if a.status != 201 || b.status != 200 || ma.ID != mb.ID || k1.status != 201 || k2.status != 200 || mk1.ID != mk2.ID {
		t.Errorf("retries: %d %d %v %v / %d %d %v %v", a.status, b.status, ma, mb, k1.status, k2.status, mk1, mk2)
	}
	if r := post(map[string]any{"body": "x", "client_id": "a"}, "b"); r.status != http.StatusUnprocessableEntity {
		t.Errorf("client_id and a different Idempotency-Key: %d", r.status)
	}
	if r := post(map[string]any{"body": "x", "attachment_ids": []string{uuid.NewString()}}, ""); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(string(r.body), "attachment_ids[0]") {
		t.Errorf("an unknown attachment: %d %s", r.status, r.body)
	}
	if r := post(map[string]any{"body": strings.Repeat("é", 4001)}, ""); r.status != http.StatusUnprocessableEntity {
		t.Errorf("4001 characters: %d", r.status)
	}
	if r := post(map[string]any{"body": strings.Repeat("é", 4000)}, ""); r.status != http.StatusCreated {
		t.Errorf("4000 characters: %d %s", r.status, r.body)
	}
}

// doHeader is do with one more request header (none when value is empty).
func (c client) doHeader(method, path string, body any, name, value string) response {
	c.t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(string(data)))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	if value != "" {
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// sleepBriefly waits 100 ms between polls.
func sleepBriefly() { time.Sleep(100 * time.Millisecond) }

// TestThreadsByPatient: ?patient_id keeps the caller's threads about one
// patient — their patient thread and, for staff, the staff-only one — and
// never widens what the caller may see.
func TestThreadsByPatient(t *testing.T) {
	w := newMsgWorld(t)
	patientOf := func(thread string) string {
		var id string
		if err := w.pool.QueryRow(context.Background(), `SELECT patient_id FROM threads WHERE id = $1`, w.thread[thread]).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1, a2 := patientOf("own"), patientOf("same team")
	var a2Staff string
	if err := w.pool.QueryRow(context.Background(), `SELECT id FROM threads WHERE patient_id = $1 AND kind = 'staff_patient'`, a2).Scan(&a2Staff); err != nil {
		t.Fatal(err)
	}
	w.thread["same team's staff"] = a2Staff
	list := func(who, patient string) []string {
		t.Helper()
		var got struct{ Items []struct{ ID string } }
		w.as(who).do("GET", "/v1/threads?patient_id="+patient, nil).decode(t, &got)
		var ids []string
		for _, it := range got.Items {
			ids = append(ids, it.ID)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(names ...string) []string {
		var ids []string
		for _, n := range names {
			ids = append(ids, w.thread[n])
		}
		slices.Sort(ids)
		return ids
	}
	for _, c := range []struct {
		who, patient string
		want         []string
	}{
		{"clinicianA", a1, sorted("own", "staff only")},
		{"clinicianA", a2, sorted("same team", "same team's staff")},
		{"patientA1", a1, sorted("own")},
		{"patientA1", a2, nil},
		{"clinicianB", a1, nil},
		{"admin", a1, nil},
	} {
		if got := list(c.who, c.patient); !slices.Equal(got, c.want) {
			t.Errorf("%s, patient_id of %s: %v, want %v", c.who, c.patient, got, c.want)
		}
	}
	r := w.as("clinicianA").do("GET", "/v1/threads?patient_id=nope", nil)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `"patient_id"`) {
		t.Errorf("bad patient_id: %d %s", r.status, r.body)
	}
}
