package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/fhir"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/sealed"
)

type client struct {
	t     testing.TB
	base  string
	token string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// requestBody is a request's body: nil for none, a string or []byte as it
// is, anything else as JSON.
func requestBody(t testing.TB, body any) io.Reader {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return nil
	case string:
		return strings.NewReader(b)
	case []byte:
		return bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(data)
	}
}

func (c client) do(method, path string, body any) response {
	c.t.Helper()
	rd := requestBody(c.t, body)
	if t, ok := c.t.(*testing.T); ok && method == "POST" && strings.HasPrefix(path, "/fhir/") {
		checkFastPath(t, body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// checkFastPath checks that the FHIR decoder's fast path and its full
// decoder agree on a body posted in a test: every FHIR document of these
// tests runs through both.
func checkFastPath(t *testing.T, body any) {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		data, _ = json.Marshal(b)
	}
	if _, err := fhir.CheckFastPath(data, time.Now()); err != nil {
		t.Errorf("FHIR decoding paths disagree: %v", err)
	}
}

func (c client) as(token string) client { c.token = token; return c }

// testKeys is a keyring of one new key, for message bodies and notes.
func testKeys(t testing.TB) *sealed.Keyring { return enginetest.Keys(t) }

// adminToken creates an admin user, named Admin, and returns a token of
// theirs.
func adminToken(t testing.TB, eng *engine.Engine) string {
	t.Helper()
	ctx := context.Background()
	adm, err := eng.CreateUser(ctx, engine.System("test"), engine.NewUser{Name: "Admin", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := eng.CreateToken(ctx, engine.System("test"), adm.ID)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// setup is a server on a fresh database with an admin, a clinician, a care
// team and a patient with a device token.
type setup struct {
	admin, clinician, device client
	patientID, teamID        string
	lastUserID               string
	eng                      *engine.Engine
	pool                     *pgxpool.Pool
}

func newSetup(t testing.TB) *setup { t.Helper(); return newSetupWith(t, engine.Config{}) }

// newSetupWith is newSetup with more engine settings (started, and stopped
// at the end of the test, when cfg.RunWorkers is set).
func newSetupWith(t testing.TB, cfg engine.Config) *setup {
	t.Helper()
	return newSetupServer(t, cfg, api.Config{})
}

// newSetupServer is newSetupWith with API settings too (apiCfg.Engine is
// set here).
func newSetupServer(t testing.TB, cfg engine.Config, apiCfg api.Config) *setup {
	t.Helper()
	return newSetupAPI(t, cfg, apiCfg, func(h http.Handler) http.Handler { return api.CheckContract(t, h) })
}

// newSetupOn is newSetupWith on cfg.Pool when set (a fresh database when
// not), with the server's handler wrapped by wrap.
func newSetupOn(t testing.TB, cfg engine.Config, wrap func(http.Handler) http.Handler) *setup {
	t.Helper()
	return newSetupAPI(t, cfg, api.Config{}, wrap)
}

// newSetupAPI is newSetupOn with API settings.
func newSetupAPI(t testing.TB, cfg engine.Config, apiCfg api.Config, wrap func(http.Handler) http.Handler) *setup {
	t.Helper()
	if cfg.Pool == nil {
		cfg.Pool = enginetest.NewPool(t)
	}
	cfg.WebPushAllowedHosts = []string{"127.0.0.1"}
	if cfg.Keys == nil {
		cfg.Keys = testKeys(t)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RunWorkers {
		if err := eng.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = eng.Stop(ctx)
		})
	}
	apiCfg.Engine = eng
	srv, err := api.New(apiCfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(wrap(srv)) // newSetupWith: every /v1 exchange is checked against the OpenAPI document
	t.Cleanup(hs.Close)
	s := &setup{admin: client{t: t, base: hs.URL, token: adminToken(t, eng)}, eng: eng, pool: cfg.Pool}
	s.clinician = s.admin.as(s.userToken(t, map[string]any{"name": "Dr Ada Osei", "role": "clinician"}))
	var team struct{ ID string }
	r := s.admin.do("POST", "/v1/care-teams", map[string]any{"name": "Cardiology RPM", "member_ids": []string{s.lastUserID}})
	if r.status != http.StatusCreated {
		t.Fatalf("create team: %d %s", r.status, r.body)
	}
	r.decode(t, &team)
	s.teamID = team.ID
	var p struct{ ID string }
	r = s.clinician.do("POST", "/v1/patients", map[string]any{"display_name": "Sam Lee", "timezone": "America/Chicago",
		"care_team_id": team.ID, "programs": []string{"hypertension"}})
	if r.status != http.StatusCreated {
		t.Fatalf("create patient: %d %s", r.status, r.body)
	}
	r.decode(t, &p)
	s.patientID = p.ID
	s.device = s.admin.as(s.userToken(t, map[string]any{"name": "cuff", "role": "device", "patient_id": p.ID}))
	return s
}

func (s *setup) userToken(t testing.TB, user map[string]any) string {
	t.Helper()
	r := s.admin.do("POST", "/v1/users", user)
	if r.status != http.StatusCreated {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	var u struct{ ID string }
	r.decode(t, &u)
	s.lastUserID = u.ID
	r = s.admin.do("POST", "/v1/users/"+u.ID+"/tokens", map[string]any{})
	if r.status != http.StatusCreated {
		t.Fatalf("create token: %d %s", r.status, r.body)
	}
	var tok struct{ Token string }
	r.decode(t, &tok)
	return tok.Token
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func wantProblem(t *testing.T, r response, status int, fields ...string) problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem
	r.decode(t, &p)
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Errorf("problem = %+v", p)
	}
	got := map[string]bool{}
	for _, e := range p.Errors {
		got[e.Field] = true
		if e.Reason == "" {
			t.Errorf("field %s has no reason", e.Field)
		}
	}
	for _, f := range fields {
		if !got[f] {
			t.Errorf("no error for field %q in %s", f, r.body)
		}
	}
	return p
}

func TestReadingsHappyPath(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings",
		fmt.Sprintf(`{"kind": "blood_pressure", "systolic": 246, "diastolic": 142, "unit": "mm[Hg]", "observed_at": %q, "source_id": "cuff-77:1234"}`, at))
	if r.status != http.StatusCreated {
		t.Fatalf("post reading: %d %s", r.status, r.body)
	}
	var res struct {
		Readings []struct{ ID, Status string }
		Alerts   []struct{ ID, Urgency, Title string }
	}
	r.decode(t, &res)
	if len(res.Readings) != 1 || res.Readings[0].Status != "created" || len(res.Alerts) != 1 || res.Alerts[0].Urgency != "critical" || res.Alerts[0].Title == "" {
		t.Fatalf("ingest response = %s", r.body)
	}
	// The same source_id again is a duplicate.
	r = s.device.do("POST", "/v1/patients/"+s.patientID+"/readings",
		fmt.Sprintf(`{"kind": "blood_pressure", "systolic": 246, "diastolic": 142, "unit": "mm[Hg]", "observed_at": %q, "source_id": "cuff-77:1234"}`, at))
	var dup struct{ Readings []struct{ ID, Status string } }
	r.decode(t, &dup)
	if r.status != http.StatusOK || dup.Readings[0].Status != "duplicate" || dup.Readings[0].ID != res.Readings[0].ID {
		t.Errorf("duplicate: %d %s", r.status, r.body)
	}

	var alerts struct {
		Items []struct {
			ID, PatientID, RuleID, Urgency, Status, Title string
			Occurrences                                   int
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	r = s.clinician.do("GET", "/v1/alerts", nil)
	r.decode(t, &alerts)
	if r.status != 200 || len(alerts.Items) != 1 || alerts.Items[0].ID != res.Alerts[0].ID || alerts.Items[0].Occurrences != 1 {
		t.Fatalf("alerts: %d %s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), `"next_cursor":null`) {
		t.Errorf("want next_cursor null: %s", r.body)
	}
	r = s.clinician.do("GET", "/v1/alerts/"+res.Alerts[0].ID, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"readings"`) {
		t.Errorf("get alert: %d %s", r.status, r.body)
	}
	r = s.clinician.do("POST", "/v1/alerts/"+res.Alerts[0].ID+"/ack", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"acknowledged"`) {
		t.Errorf("ack: %d %s", r.status, r.body)
	}
	r = s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings?kind=blood_pressure", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"systolic":246`) {
		t.Errorf("list readings: %d %s", r.status, r.body)
	}
	r = s.clinician.do("GET", "/v1/patients/"+s.patientID, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"display_name":"Sam Lee"`) {
		t.Errorf("get patient: %d %s", r.status, r.body)
	}
}

func TestBadInputAnswersProblems(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	path := "/v1/patients/" + s.patientID + "/readings"
	now := time.Now().UTC().Format(time.RFC3339)

	wantProblem(t, s.device.do("POST", path, `{"kind": "spo2", "value": 97,`), http.StatusBadRequest)
	wantProblem(t, s.device.do("POST", path, `{"kind": "spo2", "value": 97, "unit": "%", "observed_at": "`+now+`", "colour": "red"}`), http.StatusBadRequest, "colour")
	wantProblem(t, s.device.do("POST", path, `{"kind": "spo2", "value": "ninety", "unit": "%"}`), http.StatusUnprocessableEntity, "value")
	big := `{"readings": [` + strings.Repeat(`{"kind": "spo2", "value": 97, "unit": "%", "observed_at": "`+now+`"},`, 20000) + `{}]}`
	wantProblem(t, s.device.do("POST", path, big), http.StatusRequestEntityTooLarge)

	p := wantProblem(t, s.device.do("POST", path, `{"kind": "heart_rate", "value": 500, "unit": "/min", "observed_at": "yesterday"}`),
		http.StatusUnprocessableEntity, "value", "observed_at")
	for _, e := range p.Errors {
		if e.Field == "value" && !strings.Contains(e.Reason, "plausible") {
			t.Errorf("value reason = %q", e.Reason)
		}
	}
	wantProblem(t, s.device.do("POST", path, `{"kind": "blood_pressure", "systolic": 80, "diastolic": 90, "unit": "mmHg", "observed_at": "`+now+`"}`),
		http.StatusUnprocessableEntity, "systolic")
	wantProblem(t, s.device.do("POST", path, `{"kind": "weight", "value": 80, "unit": "kg", "observed_at": "`+now+`"}`),
		http.StatusUnprocessableEntity, "kind")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	wantProblem(t, s.device.do("POST", path, `{"kind": "spo2", "value": 97, "unit": "%", "observed_at": "`+future+`"}`),
		http.StatusUnprocessableEntity, "observed_at")

	// An invalid item rejects the whole batch, naming it by index.
	batch := fmt.Sprintf(`{"readings": [{"kind": "spo2", "value": 97, "unit": "%%", "observed_at": %q},
		{"kind": "body_weight", "value": 80, "unit": "stone", "observed_at": %q}]}`, now, now)
	wantProblem(t, s.device.do("POST", path, batch), http.StatusUnprocessableEntity, "readings[1].unit")
	r := s.clinician.do("GET", path, nil)
	if !strings.Contains(string(r.body), `"items":[]`) {
		t.Errorf("readings stored after rejected input: %s", r.body)
	}

	// Missing or bad credentials.
	wantProblem(t, s.device.as("").do("POST", path, `{}`), http.StatusUnauthorized)
	wantProblem(t, s.device.as("tend_nope").do("GET", "/v1/alerts", nil), http.StatusUnauthorized)
}

func TestOutOfScopeIsNotFound(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	stranger := s.admin.as(s.userToken(t, map[string]any{"name": "Dr Stranger", "role": "clinician"}))
	path := "/v1/patients/" + s.patientID
	wantProblem(t, stranger.do("GET", path, nil), http.StatusNotFound)
	wantProblem(t, stranger.do("GET", path+"/readings", nil), http.StatusNotFound)
	wantProblem(t, stranger.do("POST", path+"/readings", `{"kind": "spo2", "value": 97, "unit": "%", "observed_at": "2026-01-01T00:00:00Z"}`), http.StatusNotFound)
	wantProblem(t, s.device.do("GET", "/v1/patients/00000000-0000-0000-0000-000000000000", nil), http.StatusNotFound)
	// Role checks: a device cannot create users.
	wantProblem(t, s.device.do("POST", "/v1/users", map[string]any{"name": "x", "role": "admin"}), http.StatusForbidden)
}

func TestReadingsPagination(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	base := time.Now().UTC().Add(-time.Hour)
	var items []map[string]any
	for i := range 7 {
		items = append(items, map[string]any{"kind": "heart_rate", "value": 60 + i, "unit": "bpm", "observed_at": base.Add(time.Duration(i) * time.Minute)})
	}
	if r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", map[string]any{"readings": items}); r.status != http.StatusCreated {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 4 {
			t.Fatal("too many pages")
		}
		r := s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings?limit=3&cursor="+cursor, nil)
		var page struct {
			Items      []struct{ ID string }
			NextCursor *string `json:"next_cursor"`
		}
		r.decode(t, &page)
		for _, it := range page.Items {
			if seen[it.ID] {
				t.Fatalf("reading %s on two pages", it.ID)
			}
			seen[it.ID] = true
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(seen) != 7 {
		t.Errorf("paged through %d readings, want 7", len(seen))
	}
	wantProblem(t, s.clinician.do("GET", "/v1/patients/"+s.patientID+"/readings?cursor=garbage", nil), http.StatusUnprocessableEntity, "cursor")
}

func TestDeviceRegistration(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	push := notifytest.NewWebPush()
	defer push.Close()
	sub := push.NewSubscription()
	body := map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": sub.Endpoint,
		"keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}}
	r := s.clinician.do("POST", "/v1/me/devices", body)
	if r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	var d struct{ ID string }
	r.decode(t, &d)
	r = s.clinician.do("POST", "/v1/me/devices", body)
	var again struct{ ID string }
	r.decode(t, &again)
	if r.status != http.StatusOK || again.ID != d.ID {
		t.Errorf("re-register: %d %s, want 200 with id %s", r.status, r.body, d.ID)
	}
	bad := map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": sub.Endpoint,
		"keys": map[string]string{"p256dh": "AAAA", "auth": sub.Auth}}}
	wantProblem(t, s.clinician.do("POST", "/v1/me/devices", bad), http.StatusUnprocessableEntity, "subscription.keys.p256dh")
	evil := map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": "https://169.254.169.254/latest",
		"keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}}
	wantProblem(t, s.clinician.do("POST", "/v1/me/devices", evil), http.StatusUnprocessableEntity, "subscription.endpoint")
	wantProblem(t, s.clinician.do("POST", "/v1/me/devices", map[string]any{"platform": "apns", "token": "xyz"}), http.StatusUnprocessableEntity, "token")

	r = s.clinician.do("GET", "/v1/me/devices", nil)
	if r.status != 200 || !strings.Contains(string(r.body), d.ID) || strings.Contains(string(r.body), sub.Endpoint) {
		t.Errorf("list devices: %d %s", r.status, r.body)
	}
	if r := s.clinician.do("DELETE", "/v1/me/devices/"+d.ID, nil); r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	wantProblem(t, s.device.do("DELETE", "/v1/me/devices/"+d.ID, nil), http.StatusNotFound)
}

func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	anon := s.admin.as("")
	if r := anon.do("GET", "/healthz", nil); r.status != 200 {
		t.Errorf("healthz: %d", r.status)
	}
	if r := anon.do("GET", "/readyz", nil); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	if r := anon.do("GET", "/metrics", nil); r.status != 200 {
		t.Errorf("metrics: %d", r.status)
	}
	wantProblem(t, anon.do("GET", "/v2/nothing", nil), http.StatusNotFound)
	r := s.admin.do("GET", "/v1/audit?patient_id="+s.patientID, nil)
	if r.status != 200 || !strings.Contains(string(r.body), "patient.create") {
		t.Errorf("audit: %d %s", r.status, r.body)
	}
	wantProblem(t, s.clinician.do("GET", "/v1/audit", nil), http.StatusForbidden)
}
