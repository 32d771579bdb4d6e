package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
)

// Regression tests for the integrity defects: each of these answered wrongly
// (or stored something) before the fix.

func rowCount(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRejectedReadingStoresNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	dev := w.actors["device"]
	path := "/v1/patients/" + w.patient["A"] + "/readings"
	alerts := rowCount(t, w.pool, `SELECT count(*) FROM alerts`)
	jobs := rowCount(t, w.pool, `SELECT count(*) FROM river_job`)

	// A crisis BP with a malformed time: 422, and nothing stored or queued.
	r := dev.do("POST", path, `{"kind":"blood_pressure","systolic":190,"diastolic":125,"unit":"mm[Hg]",
		"observed_at":"2026-12-01 08:00:00","source_id":"cuff:42"}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "observed_at")
	if n := rowCount(t, w.pool, `SELECT count(*) FROM readings WHERE source_id = 'cuff:42'`); n != 0 {
		t.Fatalf("a rejected reading was stored (%d rows)", n)
	}
	if a, j := rowCount(t, w.pool, `SELECT count(*) FROM alerts`), rowCount(t, w.pool, `SELECT count(*) FROM river_job`); a != alerts || j != jobs {
		t.Fatalf("a rejected reading raised alerts (%d → %d) or queued jobs (%d → %d)", alerts, a, jobs, j)
	}
	// The corrected retry with the same source_id is created, with its date.
	at := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Second)
	r = dev.do("POST", path, fmt.Sprintf(`{"kind":"blood_pressure","systolic":190,"diastolic":125,"unit":"mm[Hg]",
		"observed_at":%q,"source_id":"cuff:42"}`, at.Format(time.RFC3339)))
	if r.status != http.StatusCreated {
		t.Fatalf("corrected retry: %d %s", r.status, r.body)
	}
	var stored time.Time
	if err := w.pool.QueryRow(context.Background(), `SELECT observed_at FROM readings WHERE source_id = 'cuff:42'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !stored.Equal(at) {
		t.Fatalf("stored observed_at = %s, want %s", stored, at)
	}

	// In a batch, one bad item stores none of the batch.
	before := rowCount(t, w.pool, `SELECT count(*) FROM readings`)
	r = dev.do("POST", path, fmt.Sprintf(`{"readings":[
		{"kind":"heart_rate","value":70,"unit":"/min","observed_at":%q,"source_id":"b:1"},
		{"kind":"heart_rate","value":71,"unit":"/min","observed_at":"yesterday","source_id":"b:2"}]}`, at.Format(time.RFC3339)))
	wantProblem(t, r, http.StatusUnprocessableEntity, "readings[1].observed_at")
	if after := rowCount(t, w.pool, `SELECT count(*) FROM readings`); after != before {
		t.Fatalf("a rejected batch stored %d readings", after-before)
	}
}

func TestObservedAtHorizonAndPartitions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	parts := func() int {
		return rowCount(t, w.pool, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass`)
	}
	p0 := parts()
	dev := w.actors["device"]
	for _, d := range []string{"0000-06-01T00:00:00Z", "0001-06-01T00:00:00Z", "1666-09-02T00:00:00Z", "1999-12-31T23:59:59Z"} {
		r := dev.do("POST", "/v1/patients/"+w.patient["A"]+"/readings",
			fmt.Sprintf(`{"kind":"heart_rate","value":70,"unit":"/min","observed_at":%q}`, d))
		wantProblem(t, r, http.StatusUnprocessableEntity, "observed_at")
	}
	// A device posting for a patient it does not belong to gets 404 and
	// creates no partition, even for a month that has none.
	r := dev.do("POST", "/v1/patients/"+uuid.NewString()+"/readings", `{"kind":"heart_rate","value":70,"unit":"/min","observed_at":"2003-04-05T06:07:08Z"}`)
	wantProblem(t, r, http.StatusNotFound)
	r = dev.do("POST", "/v1/patients/"+w.patient["B"]+"/readings", `{"kind":"heart_rate","value":70,"unit":"/min","observed_at":"2003-04-05T06:07:08Z"}`)
	wantProblem(t, r, http.StatusNotFound)
	if p := parts(); p != p0 {
		t.Fatalf("rejected readings created %d partitions", p-p0)
	}
	// Backfill: only clinicians, and not before 1970.
	r = dev.do("POST", "/v1/patients/"+w.patient["A"]+"/readings?backfill=true", `{"kind":"heart_rate","value":70,"unit":"/min","observed_at":"1995-04-05T06:07:08Z"}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "backfill")
	doc := w.actors["clinician"]
	r = doc.do("POST", "/v1/patients/"+w.patient["A"]+"/readings?backfill=true", `{"kind":"heart_rate","value":70,"unit":"/min","observed_at":"1995-04-05T06:07:08Z"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("clinician backfill: %d %s", r.status, r.body)
	}
	r = doc.do("POST", "/v1/patients/"+w.patient["A"]+"/readings?backfill=true", `{"kind":"heart_rate","value":70,"unit":"/min","observed_at":"1969-04-05T06:07:08Z"}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "observed_at")
	// Not more than 5 minutes ahead.
	r = dev.do("POST", "/v1/patients/"+w.patient["A"]+"/readings",
		fmt.Sprintf(`{"kind":"heart_rate","value":70,"unit":"/min","observed_at":%q}`, time.Now().Add(10*time.Minute).UTC().Format(time.RFC3339)))
	wantProblem(t, r, http.StatusUnprocessableEntity, "observed_at")
}

func TestDuplicateReadingWritesNoAuditEntry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	body := fmt.Sprintf(`{"kind":"heart_rate","value":70,"unit":"/min","observed_at":%q,"source_id":"dup:1"}`, nowRFC3339())
	path := "/v1/patients/" + w.patient["A"] + "/readings"
	if r := w.actors["device"].do("POST", path, body); r.status != http.StatusCreated {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	audits := rowCount(t, w.pool, `SELECT count(*) FROM audit_entries WHERE action = 'reading.create'`)
	r := w.actors["device"].do("POST", path, body)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"duplicate"`) {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	if n := rowCount(t, w.pool, `SELECT count(*) FROM audit_entries WHERE action = 'reading.create'`); n != audits {
		t.Fatalf("a duplicate wrote %d reading.create audit entries", n-audits)
	}
	// A batch of one new and one duplicate reading audits one creation.
	r = w.actors["device"].do("POST", path, fmt.Sprintf(`{"readings":[
		{"kind":"heart_rate","value":70,"unit":"/min","observed_at":%[1]q,"source_id":"dup:1"},
		{"kind":"heart_rate","value":72,"unit":"/min","observed_at":%[1]q,"source_id":"dup:2"}]}`, nowRFC3339()))
	if r.status != http.StatusCreated {
		t.Fatalf("mixed batch: %d %s", r.status, r.body)
	}
	var count int
	if err := w.pool.QueryRow(context.Background(), `SELECT (detail->>'count')::int FROM audit_entries
		WHERE action = 'reading.create' ORDER BY id DESC LIMIT 1`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 1 {
		t.Fatalf("mixed batch audited %d creations, want 1", count)
	}
}

func TestPathsQueriesAndCursors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	adm := w.admin
	for _, p := range []string{"/v1/rules/a%00b", "/v1/rules/%ff%fe", "/v1/patients/%00"} {
		wantProblem(t, adm.do("GET", p, nil), http.StatusNotFound)
	}
	wantProblem(t, adm.do("GET", "/v1/alerts?status=%00", nil), http.StatusUnprocessableEntity, "status")
	wantProblem(t, adm.do("GET", "/v1/alerts?status=%ff", nil), http.StatusUnprocessableEntity, "status")
	wantProblem(t, adm.do("GET", "/v1/alerts?cursor=eyJyIjo5OTk5OTk5OTk5OTl9", nil), http.StatusUnprocessableEntity, "cursor")
	wantProblem(t, adm.do("GET", "/v1/patients/"+w.patient["A"]+"/readings?cursor=eyJ0IjoiMDAwMC0wMS0wMVQwMDowMDowMFoifQ", nil),
		http.StatusUnprocessableEntity, "cursor")
	wantProblem(t, adm.do("GET", "/v1/alerts?cursor="+strings.Repeat("A", 2000), nil), http.StatusUnprocessableEntity, "cursor")
}

func TestFieldsAreNamed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	adm := w.admin
	r := adm.do("POST", "/v1/care-teams", fmt.Sprintf(`{"name":"T","member_ids":[%q,"nope"]}`, w.clinician["A"]))
	wantProblem(t, r, http.StatusUnprocessableEntity, "member_ids[1]")
	r = adm.do("POST", "/v1/patients", `{"display_name":"X","timezone":"Europe/Paris","care_team_id":"12"}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "care_team_id")
	var team string
	_ = w.pool.QueryRow(context.Background(), `SELECT care_team_id FROM patients WHERE id = $1`, w.patient["A"]).Scan(&team)
	r = adm.do("POST", "/v1/patients", fmt.Sprintf(`{"display_name":"X","timezone":"Local","care_team_id":%q}`, team))
	wantProblem(t, r, http.StatusUnprocessableEntity, "timezone")
	r = w.actors["patient"].do("POST", "/v1/patients/"+w.patient["A"]+"/symptom-reports",
		`{"symptoms":[{"code":"dizziness","severity":2},{"code":7,"severity":2}]}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "symptoms[1].code")
	r = w.actors["clinician"].do("POST", "/v1/me/devices", fmt.Sprintf(`{"platform":"fcm","token":"t1","topic":%q}`, strings.Repeat("x", 1<<20-100)))
	wantProblem(t, r, http.StatusUnprocessableEntity, "topic")
	r = w.actors["clinician"].do("POST", "/v1/me/devices", `{"platform":"fcm","token":"t1","environment":"sandbox"}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "environment")
	r = adm.do("POST", "/v1/rules", `{"id":"x-rule","title":"X","kind":"heart_rate","urgency":"high","when":true}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "when")
	r = adm.do("POST", "/v1/rules", `{"id":"x-rule","title":12,"kind":"heart_rate","urgency":"high","when":"value > 1"}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "title")
	// Params: null is not "delete everything".
	r = w.actors["clinician"].do("PUT", "/v1/patients/"+w.patient["A"]+"/params", `null`)
	wantProblem(t, r, http.StatusBadRequest)
	r = w.actors["clinician"].do("PUT", "/v1/patients/"+w.patient["A"]+"/params", `{"bp-crisis": null}`)
	wantProblem(t, r, http.StatusUnprocessableEntity, "bp-crisis")
	// Thresholds outside their plausible range are refused.
	for _, v := range []string{"-500", "1e300", "119", "261"} {
		r = w.actors["clinician"].do("PUT", "/v1/patients/"+w.patient["A"]+"/params", `{"bp-crisis": {"systolic_max": `+v+`}}`)
		wantProblem(t, r, http.StatusUnprocessableEntity, "bp-crisis.systolic_max")
	}
	if n := rowCount(t, w.pool, `SELECT count(*) FROM patient_params`); n != 0 {
		t.Fatalf("refused params were stored (%d rows)", n)
	}
	// Content types are matched exactly.
	req, _ := http.NewRequest("POST", w.base+"/v1/users", strings.NewReader(`{"name":"N","role":"clinician"}`))
	req.Header.Set("Authorization", "Bearer "+adm.token)
	req.Header.Set("Content-Type", "application/jsonx")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("application/jsonx: %d, want 415", resp.StatusCode)
	}
}

func TestAuthorizationCorners(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// A patient registering a clinician's FCM token neither takes the device
	// over nor learns that it is registered (same status as a new token).
	pat := w.actors["patient"]
	r := pat.do("POST", "/v1/me/devices", `{"platform":"fcm","token":"fcm-token-of-A"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("patient registering a held token: %d, want 201 like any new token: %s", r.status, r.body)
	}
	if n := rowCount(t, w.pool, `SELECT count(*) FROM devices WHERE address = 'fcm-token-of-A' AND user_id = $1 AND enabled`, w.clinician["A"]); n != 1 {
		t.Fatal("the clinician lost their device to a patient's registration")
	}
	r = w.actors["clinician"].do("POST", "/v1/me/devices", `{"platform":"fcm","token":"fcm-token-of-A"}`)
	if r.status != http.StatusOK {
		t.Fatalf("re-registering one's own token: %d, want 200", r.status)
	}

	// A scheduler cannot be a team's clinician or lead, and a scheduler in
	// member_ids joins as the team's scheduler.
	schedID := w.schedulerA(t)
	r = w.admin.do("POST", "/v1/care-teams", fmt.Sprintf(`{"name":"T","members":[{"user_id":%q,"role":"clinician"}]}`, schedID))
	wantProblem(t, r, http.StatusUnprocessableEntity, "members[0].user_id")
	r = w.admin.do("POST", "/v1/care-teams", fmt.Sprintf(`{"name":"Sched only","member_ids":[%q]}`, schedID))
	if r.status != http.StatusCreated {
		t.Fatalf("team with a scheduler: %d %s", r.status, r.body)
	}
	var tm struct {
		ID      string
		Members []struct{ UserID, Role string } `json:"members"`
	}
	r.decode(t, &tm)
	if len(tm.Members) != 1 || tm.Members[0].Role != "scheduler" {
		t.Fatalf("members = %+v, want the scheduler as scheduler", tm.Members)
	}
	// A critical alert for a team whose only member is a scheduler reaches
	// no one who can open it: it is undelivered, and the scheduler gets no
	// notification.
	r = w.admin.do("POST", "/v1/patients", fmt.Sprintf(`{"display_name":"Q","timezone":"Europe/Paris","care_team_id":%q}`, tm.ID))
	var p struct{ ID string }
	r.decode(t, &p)
	_, devTok := w.user(map[string]any{"name": "cuff Q", "role": "device", "patient_id": p.ID})
	r = w.admin.as(devTok).do("POST", "/v1/patients/"+p.ID+"/readings",
		fmt.Sprintf(`{"kind":"spo2","value":72,"unit":"%%","observed_at":%q}`, nowRFC3339()))
	var res struct{ Alerts []struct{ ID string } }
	r.decode(t, &res)
	if len(res.Alerts) == 0 {
		t.Fatalf("no alert: %s", r.body)
	}
	if n := rowCount(t, w.pool, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, res.Alerts[0].ID); n != 1 {
		t.Fatal("the alert is not flagged undelivered")
	}
	if n := rowCount(t, w.pool, `SELECT count(*) FROM notifications WHERE user_id = $1`, schedID); n != 0 {
		t.Fatalf("the scheduler got %d notifications", n)
	}

	// The Bearer scheme is case-insensitive.
	req, _ := http.NewRequest("GET", w.base+"/v1/me/devices", nil)
	req.Header.Set("Authorization", "bearer "+w.actors["clinician"].token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("lowercase bearer: %d", resp.StatusCode)
	}

	// A disabled user's token answers 401 (within the auth cache's second).
	if _, err := w.pool.Exec(context.Background(), `UPDATE users SET disabled_at = now() WHERE id = $1`, w.clinician["A"]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	wantProblem(t, w.actors["clinician"].do("GET", "/v1/patients/"+w.patient["A"], nil), http.StatusUnauthorized)
}

// schedulerA is team A's scheduler's user id.
func (w *world) schedulerA(t *testing.T) string {
	t.Helper()
	var id string
	if err := w.pool.QueryRow(context.Background(), `SELECT id FROM users WHERE name = 'Scheduler A'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDatabaseOutageIs503(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// An engine whose pool points at a port where nothing listens.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/tend?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	eng, err := engine.New(engine.Config{Pool: pool, AuthCacheTTL: -1, Keys: testKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c := client{t: t, base: hs.URL, token: w.actors["device"].token}
	r := c.do("POST", "/v1/patients/"+w.patient["A"]+"/readings",
		fmt.Sprintf(`{"kind":"heart_rate","value":70,"unit":"/min","observed_at":%q,"source_id":"x:1"}`, nowRFC3339()))
	p := wantProblem(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if !strings.Contains(p.Detail, "source_id") {
		t.Errorf("detail does not say a retry is safe: %q", p.Detail)
	}
}
