package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/notify"
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

// leakWatch is the harness.
type leakWatch struct {
	t    *testing.T
	w    *pushtest.World
	url  string
	logs enginetest.SyncBuffer

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
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	lw.w = pushtest.New(t, pushtest.Opts{RunWorkers: true, Tune: func(c *engine.Config) {
		c.Logger = logger
		c.RecordPublicKey = record.HPKEPublic
		c.MessagePushHold = 100 * time.Millisecond // message pushes go within the check's wait
	}})
	srv, err := api.New(api.Config{Engine: lw.w.Eng, Logger: logger, Gatherer: lw.w.Reg})
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
// its own: not inside a longer number, nor inside the hex of an id or
// request id (a UUID's "a211f" is not the value 211), nor inside the
// base64url of a key (a public key's "x143_" is not the value 143).
func (lw *leakWatch) secretNumber(label, v string) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.secrets = append(lw.secrets, secret{label, regexp.MustCompile(`(^|[^0-9A-Za-z_.\-])` + regexp.QuoteMeta(v) + `([^0-9A-Za-z_\-]|\.[^0-9]|$)`)})
}

// token makes a bearer token for user and registers it as a secret.
func (lw *leakWatch) token(label string, a engine.Actor) string {
	tok, err := lw.w.Eng.CreateToken(context.Background(), engine.System("test"), a.UserID)
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
	return lw.callType(tok, method, path, "application/json", body)
}

// callType is call with the body's Content-Type: []byte bodies are sent as
// they are (file uploads).
func (lw *leakWatch) callType(tok, method, path, contentType string, body any) (int, []byte) {
	lw.t.Helper()
	rd := requestBody(lw.t, body)
	req, _ := http.NewRequest(method, lw.url+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
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

// awaitPushes waits until the pushes expected so far were sent: a message's
// push goes after its hold unless the recipient read it meanwhile, and
// posting in a thread marks it read for the poster, so a scenario lets each
// push go before the next post.
func (lw *leakWatch) awaitPushes() {
	lw.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := lw.w.FCM.Wait(ctx, lw.pushes); err != nil {
		lw.t.Fatalf("FCM pushes: %v", err)
	}
	if _, err := lw.w.APNs.Wait(ctx, lw.pushes); err != nil {
		lw.t.Fatalf("APNs pushes: %v", err)
	}
}

// check waits for the expected pushes, then scans every capture for every
// secret.
func (lw *leakWatch) check() {
	t := lw.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fcm, err := lw.w.FCM.Wait(ctx, lw.pushes)
	if err != nil {
		t.Fatalf("FCM pushes: %v", err)
	}
	apnsReqs, err := lw.w.APNs.Wait(ctx, lw.pushes)
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
	for _, r := range lw.w.Push.Received() {
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
		len(all), strings.Count(logs, "\n"), len(fcm), len(apnsReqs), len(lw.w.Push.Received()), len(lw.secrets), leaks)
}

// leakScenarios are the journeys the harness checks; each registers what it
// must not leak and drives the system over HTTP.
var leakScenarios = []struct {
	name string
	run  func(t *testing.T, lw *leakWatch)
}{
	{"readings, alerts and pushes", func(t *testing.T, lw *leakWatch) {
		w := lw.w
		doc, cuff := lw.token("clinician", w.Clinician), lw.token("device", w.Device)
		admin := lw.token("admin", adminUser(t, w.World))
		// A patient whose name is easy to find anywhere.
		name := "Zephyrine Quillfeather"
		lw.secretText("patient name", name)
		lw.secretText("patient name (family)", "Quillfeather")
		status, body := lw.call(doc, "POST", "/v1/patients", map[string]any{"display_name": name, "timezone": "Europe/Paris",
			"care_team_id": w.Patient.CareTeamID, "programs": []string{"hypertension", "heart_failure"}})
		if status != http.StatusCreated {
			t.Fatalf("create patient: %d %s", status, body)
		}
		var p struct{ ID string }
		_ = json.Unmarshal(body, &p)
		// A crisis blood pressure: an alert and a push per device.
		lw.secretNumber("systolic value", "247")
		lw.secretNumber("diastolic value", "143")
		status, body = lw.call(cuff, "POST", "/v1/patients/"+w.Patient.ID.String()+"/readings", map[string]any{
			"kind": "blood_pressure", "systolic": 247, "diastolic": 143, "unit": "mm[Hg]",
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
		lw.call(cuff, "POST", "/v1/patients/"+w.Patient.ID.String()+"/readings", map[string]any{"kind": "weight", "value": name, "unit": "kg"})
		lw.call(cuff, "POST", "/v1/patients/"+w.Patient.ID.String()+"/readings", map[string]any{"kind": "weight", "value": 97.43, "unit": name})
		lw.call(cuff, "POST", "/v1/patients/"+w.Patient.ID.String()+"/readings", `{"kind": "weight", "value": 97.43, "`+name+`": 1}`)
		lw.call(doc, "POST", "/v1/patients", map[string]any{"display_name": name, "timezone": "Mars/" + name})
		lw.call(doc, "PUT", "/v1/patients/"+w.Patient.ID.String()+"/params", map[string]any{"overrides": map[string]any{name: map[string]any{"x": 97.43}}})
		// Symptom notes are health information too.
		note := "dizzy on the lighthouse stairs"
		lw.secretText("symptom note", note)
		pt := lw.token("patient", w.PatientUser(t))
		if status, body := lw.call(pt, "POST", "/v1/patients/"+w.Patient.ID.String()+"/symptom-reports", map[string]any{
			"symptoms": []map[string]any{{"code": "dizziness", "severity": 2, "text": note}}, "note": note}); status != http.StatusCreated {
			t.Fatalf("symptom report: %d %s", status, body)
		}
		lw.call(pt, "POST", "/v1/patients/"+w.Patient.ID.String()+"/symptom-reports", map[string]any{
			"symptoms": []map[string]any{{"code": note, "severity": 9}}, "note": strings.Repeat(note, 500)})
		// Tokens in the wrong places: a near-miss token, a token as an id
		// and as a query value, a token of a revoked user.
		lw.call(admin+"x", "GET", "/v1/patients", nil)
		lw.call(doc, "GET", "/v1/patients/"+admin, nil)
		lw.call(admin, "GET", "/v1/audit?patient_id="+doc, nil)
		lw.call(admin, "GET", "/v1/alerts?cursor="+cuff, nil)
		lw.call("Basic "+doc, "GET", "/v1/alerts", nil)
	}},
	{"messages, attachments and broadcasts", func(t *testing.T, lw *leakWatch) {
		w := lw.w
		ctx := context.Background()
		doc, admin := lw.token("clinician", w.Clinician), lw.token("admin", adminUser(t, w.World))
		// A patient user with an Android phone and an iPhone, so that the
		// pushes of staff messages and broadcasts are captured too.
		patient := w.PatientUser(t)
		pt := lw.token("patient", patient)
		for _, nd := range []engine.NewDevice{
			{Platform: notify.FCM, Token: "fcm:" + pushtest.RandomHex(t, 40)},
			{Platform: notify.APNs, Token: pushtest.RandomHex(t, 32), Environment: "sandbox"},
		} {
			if _, _, err := w.Eng.RegisterDevice(ctx, patient, nd); err != nil {
				t.Fatal(err)
			}
		}
		th := enginetest.PatientThread(t, w.Eng, patient)
		threadPath := "/v1/threads/" + th.ID.String()
		pid := w.Patient.ID.String()

		// An attachment whose bytes say something only the file may hold,
		// then the patient's message with it: pushed to the clinician.
		file := "%PDF-1.7\n% Bellwether-ultrasound: a nodule on the left lobe\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
		lw.secretText("attachment bytes", "Bellwether-ultrasound")
		status, body := lw.callType(pt, "POST", threadPath+"/attachments", "application/pdf", []byte(file))
		if status != http.StatusCreated {
			t.Fatalf("upload: %d %s", status, body)
		}
		var att struct{ ID string }
		_ = json.Unmarshal(body, &att)
		text := "my ankles swelled up at the quarry again"
		lw.secretText("message body", text)
		if status, body := lw.call(pt, "POST", threadPath+"/messages", map[string]any{"body": text,
			"attachment_ids": []string{att.ID}}); status != http.StatusCreated {
			t.Fatalf("post message: %d %s", status, body)
		}
		lw.expectPushes(1) // the clinician's phones
		lw.awaitPushes()
		// The clinician's urgent answer: pushed to the patient.
		urgent := "ring Dr Vantablack before noon about your potassium"
		lw.secretText("urgent message body", urgent)
		if status, body := lw.call(doc, "POST", threadPath+"/messages", map[string]any{"body": urgent, "urgent": true}); status != http.StatusCreated {
			t.Fatalf("post urgent message: %d %s", status, body)
		}
		lw.expectPushes(1) // the patient's phones
		lw.awaitPushes()
		// A symptom report: its note becomes a message of the thread.
		note := "numb fingertips after feeding the aviary"
		lw.secretText("symptom report note", note)
		if status, body := lw.call(pt, "POST", "/v1/patients/"+pid+"/symptom-reports", map[string]any{
			"symptoms": []map[string]any{{"code": "other", "severity": 1, "text": note}}, "note": note}); status != http.StatusCreated {
			t.Fatalf("symptom report: %d %s", status, body)
		}
		// A broadcast to every patient of the team: the patient's phones.
		cast := "flu shots on Thursday at the Marigold annex"
		lw.secretText("broadcast body", cast)
		status, body = lw.call(admin, "POST", "/v1/care-teams/"+w.Patient.CareTeamID.String()+"/broadcasts", map[string]any{"body": cast})
		if status != http.StatusAccepted {
			t.Fatalf("broadcast: %d %s", status, body)
		}
		lw.expectPushes(1)
		lw.awaitPushes()
		// Everything read back, over JSON and FHIR (bodies are answers, not
		// errors), then the same text where it is refused: too long, urgent
		// from a patient, a file that is not what it says, strangers,
		// malformed ids and search parameters.
		lw.call(doc, "GET", threadPath+"/messages", nil)
		lw.call(doc, "GET", "/v1/attachments/"+att.ID, nil)
		lw.call(doc, "GET", "/fhir/r4/Communication?patient=Patient/"+pid, nil)
		lw.call(pt, "GET", "/fhir/r4/Communication", nil)
		lw.call(pt, "POST", threadPath+"/messages", map[string]any{"body": strings.Repeat(text, 200)})
		lw.call(pt, "POST", threadPath+"/messages", map[string]any{"body": urgent, "urgent": true})
		lw.call(pt, "POST", threadPath+"/messages", map[string]any{"body": text, "attachment_ids": []string{note}})
		lw.call(pt, "POST", threadPath+"/messages", map[string]any{"body": text, "client_id": strings.Repeat(note, 20)})
		lw.call(pt, "POST", threadPath+"/messages", `{"body": "`+text+`", "`+urgent+`": true}`)
		lw.callType(pt, "POST", threadPath+"/attachments", "image/png", []byte(file))
		lw.callType(pt, "POST", threadPath+"/attachments", "text/html", []byte("<html>"+file))
		lw.call(pt, "POST", "/v1/patients/"+pid+"/symptom-reports", map[string]any{"symptoms": []map[string]any{{"code": note, "severity": 1}},
			"note": strings.Repeat(note, 100)})
		lw.call(admin, "POST", "/v1/care-teams/"+w.Patient.CareTeamID.String()+"/broadcasts", map[string]any{"body": strings.Repeat(cast, 100)})
		lw.call(admin, "POST", "/v1/care-teams/"+w.Patient.CareTeamID.String()+"/broadcasts", map[string]any{"body": cast, "urgent": cast})
		lw.call(pt, "POST", "/v1/care-teams/"+w.Patient.CareTeamID.String()+"/broadcasts", map[string]any{"body": cast})
		other, err := w.Eng.CreateUser(ctx, engine.System("test"), engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Eng.CreateCareTeam(ctx, engine.System("test"), engine.NewCareTeam{Name: "Other", MemberIDs: []uuid.UUID{other.ID}}); err != nil {
			t.Fatal(err)
		}
		stranger := lw.token("other team's clinician", engine.Actor{UserID: other.ID, Role: engine.RoleClinician})
		lw.call(stranger, "GET", threadPath+"/messages", nil)
		lw.call(stranger, "POST", threadPath+"/messages", map[string]any{"body": text})
		lw.call(stranger, "GET", "/v1/attachments/"+att.ID, nil)
		lw.call(stranger, "GET", "/fhir/r4/Communication?patient=Patient/"+pid, nil)
		lw.call(doc, "GET", "/fhir/r4/Communication?patient="+url.QueryEscape(text), nil)
		lw.call(doc, "GET", "/fhir/r4/Communication?"+url.QueryEscape(note)+"=1", nil)
		lw.call(doc, "GET", "/fhir/r4/Communication/"+url.PathEscape(urgent), nil)
	}},
	{"end-to-end encrypted messages", leakE2EE},
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
		lw.token("admin", adminUser(t, lw.w.World))
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

// leakE2EE: two clinicians of a new team register device keys, encrypt
// their team channel and exchange an envelope, then send malformed ones and
// one missing a recipient. The plaintext never reaches the server, so it must
// appear nowhere.
func leakE2EE(t *testing.T, lw *leakWatch) {
	ctx, sys := context.Background(), engine.System("test")
	var toks []string
	var ids []uuid.UUID
	for _, name := range []string{"Dr Kestrel", "Dr Plover"} {
		u, err := lw.w.Eng.CreateUser(ctx, sys, engine.NewUser{Name: name, Role: engine.RoleClinician})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
		toks = append(toks, lw.token(name, engine.Actor{UserID: u.ID, Role: engine.RoleClinician}))
	}
	if _, err := lw.w.Eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Aviary", MemberIDs: ids}); err != nil {
		t.Fatal(err)
	}
	var devs []*e2eeClient
	for _, tok := range toks {
		k, err := e2ee.GenerateDeviceKeys()
		if err != nil {
			t.Fatal(err)
		}
		status, body := lw.call(tok, "POST", "/v1/me/e2ee-devices", map[string]any{"hpke_public_key": b64url(k.HPKEPublic),
			"signing_public_key": b64url(k.SigningPublic())})
		var d struct{ ID string }
		if status != http.StatusCreated || json.Unmarshal(body, &d) != nil {
			t.Fatalf("register: %d %s", status, body)
		}
		devs = append(devs, &e2eeClient{keys: k, id: d.ID})
	}
	threads, _, err := lw.w.Eng.ListThreads(ctx, engine.Actor{UserID: ids[0], Role: engine.RoleClinician}, engine.ThreadFilter{})
	if err != nil || len(threads) != 1 {
		t.Fatalf("threads: %v", err)
	}
	path := "/v1/threads/" + threads[0].ID.String()
	if status, body := lw.call(toks[0], "POST", path+"/encrypt", nil); status != http.StatusOK {
		t.Fatalf("encrypt: %d %s", status, body)
	}
	_, body := lw.call(toks[0], "GET", path+"/keys", nil)
	var keys threadKeys
	if err := json.Unmarshal(body, &keys); err != nil {
		t.Fatal(err)
	}
	text := "the heron in bay 9 has a fractured tarsus"
	lw.secretText("encrypted message text", text)
	if status, body := lw.call(toks[0], "POST", path+"/envelopes", devs[0].seal(t, keys, text)); status != http.StatusCreated {
		t.Fatalf("post envelope: %d %s", status, body)
	}
	lw.call(toks[1], "GET", path+"/messages", nil)
	bad := devs[0].seal(t, keys, text)
	bad["envelope"].(map[string]any)["suite"] = map[string]any{"kem": 32, "kdf": 1, "aead": 2}
	lw.call(toks[0], "POST", path+"/envelopes", bad)
	keys.Devices = keys.Devices[:1]
	lw.call(toks[0], "POST", path+"/envelopes", devs[0].seal(t, keys, text))
	lw.call(toks[1], "POST", path+"/messages", map[string]any{"body": text})
}

// adminUser creates an admin user.
func adminUser(t *testing.T, w *enginetest.World) engine.Actor {
	t.Helper()
	u, err := w.Eng.CreateUser(context.Background(), engine.System("test"), engine.NewUser{Name: "Ops", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return engine.Actor{UserID: u.ID, Role: engine.RoleAdmin}
}
