package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/sealed"
)

// The secrets harness: a whole system (engine with workers, API, fake push
// providers) whose every outward channel is captured — each log line of the
// engine and the API at debug level, each error response body and every
// response's headers, each push as the provider received it (FCM JSON, APNs
// payload and headers, decrypted Web Push) — and scanned for every secret
// and every piece of health information a scenario registers. A scenario is
// one entry of leakScenarios: add one (messages, attachments) and it is
// checked the same way.

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leakWatch is the harness.
type leakWatch struct {
	t    *testing.T
	w    *pushWorld
	url  string
	logs syncBuffer

	mu       sync.Mutex
	captured []capture // error bodies and headers, as they arrived
	secrets  []secret
	pushes   int // pushes a scenario expects to have been sent
}

type capture struct{ where, text string }

// secret is what must never leave: a literal, or a pattern (numbers, so
// that 211 does not match inside 0.2113 or an id).
type secret struct {
	label string
	re    *regexp.Regexp
}

func newLeakWatch(t *testing.T) *leakWatch {
	t.Helper()
	lw := &leakWatch{t: t}
	logger := slog.New(slog.NewJSONHandler(&lw.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lw.w = newPushWorld(t, pushOpts{runWorkers: true, tune: func(c *engine.Config) { c.Logger = logger }})
	srv, err := api.New(api.Config{Engine: lw.w.eng, Logger: logger, Gatherer: lw.w.reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	lw.url = hs.URL
	return lw
}

// secretText registers a literal that must appear nowhere.
func (lw *leakWatch) secretText(label, v string) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.secrets = append(lw.secrets, secret{label, regexp.MustCompile(regexp.QuoteMeta(v))})
}

// secretNumber registers a number that must appear nowhere as a number of
// its own.
func (lw *leakWatch) secretNumber(label, v string) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.secrets = append(lw.secrets, secret{label, regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(v) + `([^0-9]|\.[^0-9]|$)`)})
}

// token makes a bearer token for user and registers it as a secret.
func (lw *leakWatch) token(label string, a engine.Actor) string {
	tok, err := lw.w.eng.CreateToken(context.Background(), engine.System("test"), a.UserID)
	if err != nil {
		lw.t.Fatal(err)
	}
	lw.secretText(label+" token", tok)
	return tok
}

// call sends a request; error bodies and every response's headers are
// captured.
func (lw *leakWatch) call(tok, method, path string, body any) (int, []byte) {
	lw.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, lw.url+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		lw.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	var h strings.Builder
	_ = resp.Header.Write(&h)
	lw.captured = append(lw.captured, capture{fmt.Sprintf("headers of %s %s", method, path), h.String()})
	if resp.StatusCode >= 400 {
		lw.captured = append(lw.captured, capture{fmt.Sprintf("error body of %s %s (%d)", method, path, resp.StatusCode), string(data)})
	}
	return resp.StatusCode, data
}

// expectPushes notes that the scenario should have caused n more pushes
// per native platform (FCM and APNs) by the time check runs.
func (lw *leakWatch) expectPushes(n int) { lw.pushes += n }

// check waits for the expected pushes, then scans every capture for every
// secret.
func (lw *leakWatch) check() {
	t := lw.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fcm, err := lw.w.fcm.Wait(ctx, lw.pushes)
	if err != nil {
		t.Fatalf("FCM pushes: %v", err)
	}
	apnsReqs, err := lw.w.apns.Wait(ctx, lw.pushes)
	if err != nil {
		t.Fatalf("APNs pushes: %v", err)
	}
	all := append([]capture{}, lw.captured...)
	for _, r := range fcm {
		all = append(all, capture{"FCM push", string(r.Raw)})
	}
	for _, r := range apnsReqs {
		var h strings.Builder
		_ = r.Header.Write(&h)
		all = append(all, capture{"APNs push", string(r.Payload) + "\n" + h.String()})
	}
	for _, r := range lw.w.push.Received() {
		all = append(all, capture{"Web Push", string(r.Payload)})
	}
	logs := lw.logs.String()
	for i, line := range strings.Split(logs, "\n") {
		all = append(all, capture{fmt.Sprintf("log line %d", i+1), line})
	}
	if len(fcm) == 0 || len(apnsReqs) == 0 || !strings.Contains(logs, `"level"`) {
		t.Fatalf("the harness captured too little to prove anything: %d FCM, %d APNs pushes, %d bytes of logs", len(fcm), len(apnsReqs), len(logs))
	}
	leaks := 0
	for _, c := range all {
		for _, s := range lw.secrets {
			if s.re.MatchString(c.text) {
				leaks++
				t.Errorf("%s leaks the %s: %.300s", c.where, s.label, c.text)
			}
		}
	}
	t.Logf("scanned %d captures (%d log lines, %d FCM, %d APNs, %d Web Push) for %d secrets: %d leaks",
		len(all), strings.Count(logs, "\n"), len(fcm), len(apnsReqs), len(lw.w.push.Received()), len(lw.secrets), leaks)
}

// leakScenarios are the journeys the harness checks; each registers what it
// must not leak and drives the system over HTTP.
var leakScenarios = []struct {
	name string
	run  func(t *testing.T, lw *leakWatch)
}{
	{"readings, alerts and pushes", func(t *testing.T, lw *leakWatch) {
		w := lw.w
		doc, cuff := lw.token("clinician", w.clinician), lw.token("device", w.device)
		admin := lw.token("admin", w.adminUser(t))
		// A patient whose name is easy to find anywhere.
		name := "Zephyrine Quillfeather"
		lw.secretText("patient name", name)
		lw.secretText("patient name (family)", "Quillfeather")
		status, body := lw.call(doc, "POST", "/v1/patients", map[string]any{"display_name": name, "timezone": "Europe/Paris",
			"care_team_id": w.patient.CareTeamID, "programs": []string{"hypertension", "heart_failure"}})
		if status != http.StatusCreated {
			t.Fatalf("create patient: %d %s", status, body)
		}
		var p struct{ ID string }
		_ = json.Unmarshal(body, &p)
		// A crisis blood pressure: an alert and a push per device.
		lw.secretNumber("systolic value", "211")
		lw.secretNumber("diastolic value", "133")
		status, body = lw.call(cuff, "POST", "/v1/patients/"+w.patient.ID.String()+"/readings", map[string]any{
			"kind": "blood_pressure", "systolic": 211, "diastolic": 133, "unit": "mm[Hg]",
			"observed_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
		if status != http.StatusCreated {
			t.Fatalf("post reading: %d %s", status, body)
		}
		lw.expectPushes(1)
		// The same reading as the wrong device, and malformed ones carrying
		// health data in odd places: refused, never echoed.
		lw.secretNumber("weight value", "97.43")
		lw.call(cuff, "POST", "/v1/patients/"+p.ID+"/readings", map[string]any{"kind": "weight", "value": 97.43, "unit": "kg",
			"observed_at": time.Now().UTC().Format(time.RFC3339)})
		lw.call(cuff, "POST", "/v1/patients/"+w.patient.ID.String()+"/readings", map[string]any{"kind": "weight", "value": name, "unit": "kg"})
		lw.call(cuff, "POST", "/v1/patients/"+w.patient.ID.String()+"/readings", map[string]any{"kind": "weight", "value": 97.43, "unit": name})
		lw.call(cuff, "POST", "/v1/patients/"+w.patient.ID.String()+"/readings", `{"kind": "weight", "value": 97.43, "`+name+`": 1}`)
		lw.call(doc, "POST", "/v1/patients", map[string]any{"display_name": name, "timezone": "Mars/" + name})
		lw.call(doc, "PUT", "/v1/patients/"+w.patient.ID.String()+"/params", map[string]any{"overrides": map[string]any{name: map[string]any{"x": 97.43}}})
		// Symptom notes are health information too.
		note := "dizzy on the lighthouse stairs"
		lw.secretText("symptom note", note)
		pt := lw.token("patient", w.patientUser(t))
		if status, body := lw.call(pt, "POST", "/v1/patients/"+w.patient.ID.String()+"/symptom-reports", map[string]any{
			"symptoms": []map[string]any{{"code": "dizziness", "severity": 2, "text": note}}, "note": note}); status != http.StatusCreated {
			t.Fatalf("symptom report: %d %s", status, body)
		}
		lw.call(pt, "POST", "/v1/patients/"+w.patient.ID.String()+"/symptom-reports", map[string]any{
			"symptoms": []map[string]any{{"code": note, "severity": 9}}, "note": strings.Repeat(note, 500)})
		// Tokens in the wrong places: a near-miss token, a token as an id
		// and as a query value, a token of a revoked user.
		lw.call(admin+"x", "GET", "/v1/patients", nil)
		lw.call(doc, "GET", "/v1/patients/"+admin, nil)
		lw.call(admin, "GET", "/v1/audit?patient_id="+doc, nil)
		lw.call(admin, "GET", "/v1/alerts?cursor="+cuff, nil)
		lw.call("Basic "+doc, "GET", "/v1/alerts", nil)
	}},
	{"keys in configuration errors", func(t *testing.T, lw *leakWatch) {
		// A key list with a bad entry is refused naming the entry, never
		// showing key bytes; what the engine logs while starting with
		// secrets configured shows none either.
		ring, err := sealed.Generate("k1")
		if err != nil {
			t.Fatal(err)
		}
		_, key, _ := strings.Cut(ring, ":")
		lw.secretText("encryption key", key)
		_, err = sealed.ParseKeyring(ring + ",k1:" + key + "," + key + ":x")
		if err == nil {
			t.Fatal("a duplicate id and a bad entry were accepted")
		}
		lw.mu.Lock()
		lw.captured = append(lw.captured, capture{"keyring error", err.Error()})
		lw.mu.Unlock()
		lw.token("admin", lw.w.adminUser(t))
	}},
}

// TestSecretsNeverLeak runs every leak scenario on one system and scans all
// it emitted: no token, key, patient name, reading value or note anywhere.
func TestSecretsNeverLeak(t *testing.T) {
	lw := newLeakWatch(t)
	for _, sc := range leakScenarios {
		t.Run(sc.name, func(t *testing.T) {
			lw.t = t
			sc.run(t, lw)
		})
	}
	lw.t = t
	lw.check()
}

// adminUser creates an admin user.
func (w *world) adminUser(t *testing.T) engine.Actor {
	t.Helper()
	u, err := w.eng.CreateUser(context.Background(), engine.System("test"), engine.NewUser{Name: "Ops", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return engine.Actor{UserID: u.ID, Role: engine.RoleAdmin}
}
