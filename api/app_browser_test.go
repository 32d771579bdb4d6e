package api_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SherClockHolmes/webpush-go"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// TestPatientAppInBrowser drives the patient app at phone size (390×844) in
// headless Chromium, signed in as a patient with a sign-in link: a crisis
// blood pressure asks for a retake (shown at once with its countdown), the
// retake confirms it and the alert reaches the care team (checked through
// the API); a reading logged offline survives the tab closing and is stored
// exactly once when the connection returns, even though the answer to its
// first send is lost; a symptom report shows in the thread; a message with a
// photo gets its read receipt when the clinician reads it, and the
// clinician's urgent reply is marked; a dose is confirmed; the service
// worker's push handler opens the thread for a synthetic message push;
// axe-core finds no WCAG 2.2 AA violation on any view, and at 200 % text no
// view scrolls sideways. It also signs in through the organisation's
// OpenID Connect provider, follows a sign-in link in a tab that is already
// open, and signs out leaving nothing behind. Set TEND_APP_SCREENSHOT=
// docs/patient-app.png (relative to the repository) to refresh the
// README's screenshot.
func TestPatientAppInBrowser(t *testing.T) {
	pb := newPageBrowser(t, "app", "playwright-core", "axe-core")
	idp := newFakeIDP(t)
	vapidPub, _, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := newSetupServer(t, engine.Config{RunWorkers: true, ReminderInterval: -1, MissedDoseInterval: -1,
		EscalationSweepInterval: -1, MissingDataInterval: -1, OIDC: &engine.OIDCConfig{Issuer: idp.url, Audience: "tend-app"},
		PresenceIdle: appPresenceIdle * time.Second},
		api.Config{App: api.AppConfig{VAPIDPublicKey: vapidPub, OIDCIssuer: idp.url, OIDCClientID: "tend-app"}})
	ctx := context.Background()
	patient := s.admin.as(s.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": s.patientID}))
	if r := s.admin.do("PATCH", "/v1/users/"+s.lastUserID, map[string]any{"oidc_subject": "sam@idp"}); r.status != http.StatusOK {
		t.Fatalf("map the patient's subject: %d %s", r.status, r.body)
	}
	idp.subject = "sam@idp"
	// Two weeks of ordinary blood pressure for the chart and its usual
	// range, from the patient's cuff.
	now := time.Now().UTC().Truncate(time.Second)
	var history []map[string]any
	for i := range 14 {
		history = append(history, map[string]any{"kind": "blood_pressure", "systolic": 126 + i%5*2, "diastolic": 80 + i%3,
			"unit": "mm[Hg]", "observed_at": now.Add(-time.Duration(14-i) * 24 * time.Hour).Format(time.RFC3339)})
	}
	if r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", map[string]any{"readings": history}); r.status != http.StatusCreated {
		t.Fatalf("history: %d %s", r.status, r.body)
	}
	doseID := pendingDose(t, s, now)

	shot := filepath.Join(t.TempDir(), "patient-app.png")
	if p := os.Getenv("TEND_APP_SCREENSHOT"); p != "" {
		shot, _ = filepath.Abs(filepath.Join("..", p))
	}
	photo := filepath.Join(t.TempDir(), "ankle.png")
	if err := os.WriteFile(photo, pngFile, 0o600); err != nil {
		t.Fatal(err)
	}
	run, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	// The organisation's branding, which the app shows once signed in.
	if r := s.admin.do("PATCH", "/v1/organisations/"+engine.DefaultOrgID().String(), map[string]any{
		"branding": map[string]any{"name": "Northside Heart", "primary_color": "#0b5394"}}); r.status != http.StatusOK {
		t.Fatalf("branding: %d %s", r.status, r.body)
	}
	if r := s.admin.doWith("PUT", "/v1/organisations/"+engine.DefaultOrgID().String()+"/logo", string(testLogo(t)),
		map[string]string{"Content-Type": "image/png"}); r.status != http.StatusOK {
		t.Fatalf("logo: %d %s", r.status, r.body)
	}
	cmd := pb.command(run, "app.test.mjs", s.admin.base, "TOKEN="+patient.token, "SCREENSHOT="+shot, "PHOTO="+photo, "VAPID="+vapidPub,
		"DOSE_ID="+doseID, "BRAND_NAME=Northside Heart")
	result := runAppBrowser(t, cmd, s)
	t.Logf("browser: %s", result)
	checkAppResult(t, s, patient, result, doseID)
	// The push subscription used the server's key, reached the API as a
	// device, and sign-out removed it.
	var devices struct{ Items []struct{ ID string } }
	patient.do("GET", "/v1/me/devices", nil).decode(t, &devices)
	if result.PushKey != vapidPub || result.PushDevices != 1 || len(devices.Items) != 0 {
		t.Errorf("push: key %q (want the server's), %d devices registered, %d left after sign-out", result.PushKey,
			result.PushDevices, len(devices.Items))
	}
	// The temperature logged in °F is stored in °C.
	var temps struct{ Items []struct{ Value float64 } }
	patient.do("GET", "/v1/patients/"+s.patientID+"/readings?kind=body_temperature", nil).decode(t, &temps)
	if len(temps.Items) != 1 || temps.Items[0].Value < 37.99 || temps.Items[0].Value > 38.01 || result.FahrenheitHint != "Usually between 77 and 113 °F." {
		t.Errorf("temperature in °F: stored %+v, hint %q", temps.Items, result.FahrenheitHint)
	}
	// Away after the idle time, and online at the next key press, as the
	// clinician sees the patient in their thread.
	if result.AwaySeen != "SEEN away" || result.BackSeen != "SEEN online" ||
		result.IdleMS < appPresenceIdle*1000 || result.IdleMS > appPresenceIdle*1000+3000 {
		t.Errorf("away after %d ms without input (want about %d s); the clinician saw %q, then after a key press %q",
			result.IdleMS, appPresenceIdle, result.AwaySeen, result.BackSeen)
	}
	if result.Locked.Title != "Locked – Tend" || result.Locked.Main != 0 || !result.Locked.Nav || !result.Unlocked {
		t.Errorf("idle lock: %+v, unlocked %v", result.Locked, result.Unlocked)
	}
}

// runAppBrowser runs the script, answering its requests: when the patient
// has sent a message, the clinician reads it, types and replies urgently.
func runAppBrowser(t *testing.T, cmd *exec.Cmd, s *setup) appResult {
	t.Helper()
	var result appResult
	driveBrowser(t, cmd, &result, func(line string, reply func(string)) bool {
		switch line {
		case "MESSAGED":
			// The clinician comes online (holds the stream) and reads.
			openStream(t, s.clinician.base, s.clinician.token, "", false)
			clinicianReads(t, s)
			reply("READ")
		case "AWAY", "BACK":
			reply("SEEN " + patientSeen(t, s))
		case "CUFF":
			r := s.device.do("POST", "/v1/patients/"+s.patientID+"/readings", map[string]any{"kind": "heart_rate",
				"value": 125, "unit": "/min", "observed_at": time.Now().UTC().Format(time.RFC3339)})
			if r.status != http.StatusCreated {
				t.Fatalf("the cuff's reading: %d %s", r.status, r.body)
			}
			reply("POSTED")
		default:
			return false
		}
		return true
	})
	return result
}

// appPresenceIdle is the idle time (seconds) of the app's browser test:
// short, so that the app reports the patient away within the test.
const appPresenceIdle = 3

// patientSeen returns the patient's presence state as the clinician sees
// it in the thread with them (GET /v1/threads/{id}).
func patientSeen(t *testing.T, s *setup) string {
	t.Helper()
	var threads struct{ Items []struct{ ID string } }
	s.clinician.do("GET", "/v1/threads?patient_id="+s.patientID, nil).decode(t, &threads)
	if len(threads.Items) == 0 {
		t.Fatal("the clinician has no thread with the patient")
	}
	var th struct {
		Participants []struct {
			Role     string
			Presence *presenceJSON
		}
	}
	s.clinician.do("GET", "/v1/threads/"+threads.Items[0].ID, nil).decode(t, &th)
	for _, p := range th.Participants {
		if p.Role == "patient" && p.Presence != nil {
			return p.Presence.State
		}
	}
	return "not shown"
}

// clinicianReads: the clinician opens the patient's thread (which marks it
// read), starts typing, and replies urgently.
func clinicianReads(t *testing.T, s *setup) {
	t.Helper()
	var threads struct{ Items []struct{ ID string } }
	s.clinician.do("GET", "/v1/threads?patient_id="+s.patientID, nil).decode(t, &threads)
	if len(threads.Items) == 0 {
		t.Fatal("the clinician has no thread with the patient")
	}
	thread := threads.Items[0].ID
	msgs := threadMessages(t, s.clinician, thread)
	if len(msgs) == 0 {
		t.Fatal("the patient's message did not arrive")
	}
	if r := s.clinician.do("POST", "/v1/threads/"+thread+"/read", map[string]any{"up_to": msgs[len(msgs)-1].ID}); r.status != http.StatusOK {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	if r := s.clinician.do("POST", "/v1/threads/"+thread+"/typing", nil); r.status != http.StatusAccepted {
		t.Errorf("typing: %d %s", r.status, r.body)
	}
	time.Sleep(300 * time.Millisecond) // the typing shows before the reply
	if r := s.clinician.do("POST", "/v1/threads/"+thread+"/messages", map[string]any{"body": appReply, "urgent": true}); r.status != http.StatusCreated {
		t.Fatalf("reply: %d %s", r.status, r.body)
	}
}

const appReply = "Please rest and measure again in an hour; call 999 if the chest pain comes back."

// pendingDose gives the patient a furosemide schedule and one dose due five
// minutes ago, still pending (written as the reminder worker would).
func pendingDose(t *testing.T, s *setup, now time.Time) string {
	t.Helper()
	var sched struct{ ID string }
	r := s.clinician.do("POST", "/v1/patients/"+s.patientID+"/schedules", map[string]any{"type": "medication",
		"medication": "Furosemide", "dose": "40 mg", "times": []string{"08:00"}, "start_date": now.AddDate(0, 0, -3).Format(time.DateOnly)})
	if r.status != http.StatusCreated {
		t.Fatalf("schedule: %d %s", r.status, r.body)
	}
	r.decode(t, &sched)
	loc, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	due := now.Add(-5 * time.Minute)
	if due.In(loc).Day() != now.In(loc).Day() {
		due = now
	}
	var id string
	if err := s.pool.QueryRow(context.Background(), `INSERT INTO doses (id, schedule_id, patient_id, occurrence_key, due_at,
		status, reminded_at, created_at) VALUES (gen_random_uuid(), $1, $2, $4, $3::timestamptz, 'pending', $3::timestamptz,
		$3::timestamptz - interval '1 day')
		RETURNING id`, sched.ID, s.patientID, due,
		rpm.OccurrenceKey(sched.ID, due.In(loc).Format(time.DateOnly), due.In(loc).Format("15:04"))).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func checkAppResult(t *testing.T, s *setup, patient client, res appResult, doseID string) {
	t.Helper()
	// The retake: asked at once with a countdown, then answered; the
	// confirmed crisis reached the care team.
	if !strings.Contains(res.RetakeCountdown, ":") || !strings.Contains(res.RetakeAnswered, "both readings") {
		t.Errorf("retake in the app: countdown %q, answer %q", res.RetakeCountdown, res.RetakeAnswered)
	}
	type alert struct {
		RuleID string `json:"rule_id"`
		Status string
	}
	var alerts struct{ Items []alert }
	s.clinician.do("GET", "/v1/alerts?patient_id="+s.patientID, nil).decode(t, &alerts)
	if !slices.ContainsFunc(alerts.Items, func(a alert) bool { return a.RuleID == "bp-crisis" && a.Status == "open" }) {
		t.Errorf("the confirmed crisis did not reach the care team: %+v", alerts.Items)
	}
	if !strings.Contains(res.FieldError, "must be greater than diastolic") {
		t.Errorf("the API's field error in the form: %q", res.FieldError)
	}
	// Offline: exactly one stored reading, though it was sent twice.
	var weights struct{ Items []struct{ Value float64 } }
	patient.do("GET", "/v1/patients/"+s.patientID+"/readings?kind=body_weight", nil).decode(t, &weights)
	if len(weights.Items) != 1 || weights.Items[0].Value < 81.29 || weights.Items[0].Value > 81.31 {
		t.Errorf("readings after offline logging: %+v (want exactly one of 81.3 kg)", weights.Items)
	}
	if !strings.Contains(res.OfflineStart, "1 reading is waiting to be sent") {
		t.Errorf("the app opened offline shows %q", res.OfflineStart)
	}
	if !strings.Contains(res.OfflineSaved, "Saved on this phone") || res.LostResponse != 1 {
		t.Errorf("offline message: %q; answers lost on the way back: %d, want 1", res.OfflineSaved, res.LostResponse)
	}
	if !slices.Contains(res.SymptomInThread, "Shortness of breath: 6 out of 10") {
		t.Errorf("symptom report in the thread: %q", res.SymptomInThread)
	}
	if res.Receipt != "Read" || !strings.Contains(res.UrgentReply, appReply) || !strings.Contains(res.UrgentReply, "Urgent") || !res.Photo {
		t.Errorf("thread: receipt %q, urgent reply %q, photo shown %v", res.Receipt, res.UrgentReply, res.Photo)
	}
	if res.Available != "Your care team is available now." {
		t.Errorf("care team availability: %q", res.Available)
	}
	if res.Typing != "Your care team is typing…" {
		t.Errorf("typing: %q", res.Typing)
	}
	var doses struct{ Items []struct{ ID, Status string } }
	patient.do("GET", "/v1/patients/"+s.patientID+"/doses?limit=100", nil).decode(t, &doses)
	if !slices.Contains(doses.Items, struct{ ID, Status string }{doseID, "taken"}) || res.Dose != "Taken" {
		t.Errorf("dose: app %q, API %+v", res.Dose, doses.Items)
	}
	if res.PushView != "#/messages" || res.PushTitle != "New message from your care team" || !strings.Contains(res.PushRetake, ":") {
		t.Errorf("push: view %q, title %q; the retake push showed the cuff's request with %q", res.PushView, res.PushTitle, res.PushRetake)
	}
	checkAppPages(t, res)
}

// checkAppPages: accessibility, 200 % text, titles without PHI, sign-out
// leaving nothing, both other sign-ins.
func checkAppPages(t *testing.T, res appResult) {
	t.Helper()
	views := []string{"signin", "home", "log", "messages", "symptoms", "reminders", "readings", "settings", "desktop-home",
		"desktop-messages"}
	for _, v := range views {
		if n, ok := res.Axe[v]; !ok || n != 0 {
			t.Errorf("axe-core on %s: %d violations (checked %v)", v, n, ok)
		}
		if n, ok := res.Overflow[v]; !ok || n > 0 {
			t.Errorf("at 200 %% text, %s scrolls sideways by %d px (checked %v)", v, n, ok)
		}
		if n := res.SmallTargets[v]; n > 0 && !strings.HasPrefix(v, "desktop") {
			t.Errorf("%s has %d tap targets smaller than 48 px", v, n)
		}
	}
	for _, v := range []string{"locked", "high-contrast"} {
		if n, ok := res.Axe[v]; !ok || n != 0 {
			t.Errorf("axe-core on %s: %d violations (checked %v)", v, n, ok)
		}
	}
	for _, title := range res.Titles {
		if strings.Contains(title, "Sam") || strings.Contains(title, "Lee") || strings.ContainsAny(title, "0123456789") {
			t.Errorf("page title %q", title)
		}
	}
	if len(res.SignedOut.IndexedDB)+len(res.SignedOut.Storage)+len(res.SignedOut.Caches) > 0 {
		t.Errorf("left after sign-out: %+v", res.SignedOut)
	}
	if res.SecondTab != "You signed out in another window." {
		t.Errorf("the app's other tab after sign-out: %q", res.SecondTab)
	}
	if res.OIDC != "signed in" || res.OpenTabLink != "signed in" || !res.Installable {
		t.Errorf("single sign-on %q, link in an open tab %q, installable %v", res.OIDC, res.OpenTabLink, res.Installable)
	}
	if !slices.Equal(res.Adherence, []string{"1 of 1 taken (100 %).", "1 of 1 taken (100 %)."}) ||
		!strings.Contains(res.Chart, "Your usual range") {
		t.Errorf("adherence %q, chart %q", res.Adherence, res.Chart)
	}
}

// fakeIDP is an OpenID Connect provider for the browser: discovery and keys
// (oidctest), an authorization endpoint that signs the user in at once, and
// a token endpoint that checks PKCE and returns an ID token for subject.
type fakeIDP struct {
	url     string
	key     *rsa.PrivateKey
	subject string
	mu      sync.Mutex
	codes   map[string][2]string // code → challenge, nonce
}

func newFakeIDP(t *testing.T) *fakeIDP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIDP{key: key, codes: map[string][2]string{}}
	keys := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		switch r.URL.Path {
		case "/auth":
			f.authorize(w, r)
		case "/token":
			f.token(w, r)
		default:
			keys.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(hs.Close)
	keys.SetIssuer(hs.URL)
	f.url = hs.URL
	return f
}

func (f *fakeIDP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "tend-app" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))
	f.mu.Lock()
	f.codes[code] = [2]string{q.Get("code_challenge"), q.Get("nonce")}
	f.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+q.Get("state"), http.StatusFound)
}

func (f *fakeIDP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	c, ok := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != c[0] {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	claims, _ := json.Marshal(map[string]any{"iss": f.url, "aud": "tend-app", "sub": f.subject, "nonce": c[1],
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id_token": oidctest.SignIDToken(f.key, "k1", "RS256", string(claims)),
		"token_type": "Bearer", "expires_in": 3600})
}
