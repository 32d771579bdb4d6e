package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"riverqueue.com/riverui"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestConsoleServed checks the console's files and the headers that keep it
// to its own origin; it needs no database and no browser.
func TestConsoleServed(t *testing.T) {
	t.Parallel()
	srv, err := api.New(api.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, r := servePage(t, srv, "/", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'", "worker-src 'self'")
	if r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("missing security headers: %v", r.header)
	}
	page := string(r.body)
	if !strings.Contains(page, "<title>Tend triage console</title>") {
		t.Error("the page title is not the fixed, PHI-free one")
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, " style=") {
		t.Error("index.html has inline script or style, which the CSP forbids")
	}
	// Every file the page and its modules load is served with the right type.
	for path, typ := range map[string]string{
		"/console/assets/app.js":            "text/javascript",
		"/console/assets/api.js":            "text/javascript",
		"/console/assets/live.js":           "text/javascript",
		"/console/assets/queue.js":          "text/javascript",
		"/console/assets/detail.js":         "text/javascript",
		"/console/assets/plot.js":           "text/javascript",
		"/console/assets/admin.js":          "text/javascript",
		"/console/assets/reminders.js":      "text/javascript",
		"/console/assets/thread.js":         "text/javascript",
		"/console/assets/messages.js":       "text/javascript",
		"/console/assets/format.js":         "text/javascript",
		"/console/assets/tabs.js":           "text/javascript",
		"/console/assets/dom.js":            "text/javascript",
		"/console/assets/audit.js":          "text/javascript",
		"/console/assets/patients.js":       "text/javascript",
		"/console/assets/simulate.js":       "text/javascript",
		"/console/assets/presence.js":       "text/javascript",
		"/console/assets/brand.js":          "text/javascript",
		"/console/assets/console.css":       "text/css",
		"/console/vendor/uPlot.iife.min.js": "text/javascript",
		"/console/vendor/uPlot.min.css":     "text/css",
		"/console/vendor/hpke.js":           "text/javascript",
		"/console/assets/e2ee.js":           "text/javascript",
		"/console/assets/wrappool.js":       "text/javascript",
		"/console/assets/wrapworker.js":     "text/javascript",
		"/console/assets/x25519.js":         "text/javascript",
	} {
		r := c.do("GET", path, nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), typ) {
			t.Errorf("GET %s: %d %q, want 200 %s", path, r.status, r.header.Get("Content-Type"), typ)
		}
	}
	if r := c.do("GET", "/favicon.ico", nil); r.status != http.StatusOK || r.header.Get("Content-Type") != "image/x-icon" ||
		len(r.body) < 100 || string(r.body[:4]) != "\x00\x00\x01\x00" {
		t.Errorf("GET /favicon.ico: %d %q (%d bytes)", r.status, r.header.Get("Content-Type"), len(r.body))
	}
	// No directory listings, no test files, no second copy of the page.
	for _, path := range []string{"/console/", "/console/assets/", "/console/index.html", "/console/test/package.json",
		"/console/test/console.test.mjs", "/console/nope.js"} {
		if r := c.do("GET", path, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
	if r := c.do("POST", "/", nil); r.status == http.StatusOK {
		t.Errorf("POST /: %d", r.status)
	}
}

// TestConsoleModules runs the unit tests of the console's DOM-free logic
// (the SSE parser, queue order and counts, thresholds, plot series) in Node.
func TestConsoleModules(t *testing.T) {
	t.Parallel()
	runNodeUnits(t, pageTestDir(t, "console"), "units.test.mjs", "console unit tests")
}

// TestConsoleInBrowser opens the console as a clinician of team A and one of
// team B in headless Chromium. A critical reading posted through the API
// appears in A's queue without a reload; A opens it with the keyboard, sees
// the plot with the rule's thresholds, and acknowledges it; the API then
// shows it acknowledged. B's console never shows it, and the API hides it
// from B. It runs twice: with the live stream unavailable (the console
// polls) and with a stream (the server's own once it has one, else a
// stand-in that sends alert events, each only to clients whose token can
// read the alert); with the stream the console does not poll, so the alert
// can only arrive through it. Set TEND_CONSOLE_SCREENSHOT=docs/console.png
// (relative to the repository) to refresh the README's screenshot.
func TestConsoleInBrowser(t *testing.T) {
	pb := newPageBrowser(t, "console", "playwright-core")
	for _, mode := range []string{"polling", "stream"} {
		t.Run(mode, func(t *testing.T) { consoleInBrowser(t, pb, mode) })
	}
}

func consoleInBrowser(t *testing.T, pb pageBrowser, mode string) {
	pool := enginetest.NewPool(t)
	// Workers run for the broadcast's fan-out; the periodic sweeps stay off so
	// that the data the test writes stays as written.
	eng, err := engine.New(engine.Config{Pool: pool, Keys: testKeys(t), RunWorkers: true, ReminderInterval: -1,
		MissedDoseInterval: -1, EscalationSweepInterval: -1, MissingDataInterval: -1,
		PresenceIdle: consolePresenceIdle * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	// The operators' job dashboard, as tend serve mounts it.
	jobs, err := riverui.NewHandler(&riverui.HandlerOpts{Endpoints: riverui.NewEndpoints(eng.Jobs(), nil),
		Logger: slog.New(slog.DiscardHandler), Prefix: "/riverui"})
	if err != nil {
		t.Fatal(err)
	}
	jobsCtx, stopJobs := context.WithCancel(context.Background())
	t.Cleanup(stopJobs)
	if err := jobs.Start(jobsCtx); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng, JobsUI: jobs})
	if err != nil {
		t.Fatal(err)
	}
	live := &stream{api: srv, subs: map[chan string]string{}}
	switch {
	case mode == "polling":
		live.refuse = true
	case hasRoute(srv, "GET /v1/stream"):
		live.real = true
	}
	hs := httptest.NewServer(live)
	t.Cleanup(hs.Close)
	t.Cleanup(live.close)
	ctx := context.Background()
	admTok := adminToken(t, eng)
	s := &setup{admin: client{t: t, base: hs.URL, token: admTok}, eng: eng}

	type team struct {
		clinician, device client
		patientID, userID string
	}
	newTeam := func(name, clinician, patient string) team {
		var tm team
		tm.clinician = s.admin.as(s.userToken(t, map[string]any{"name": clinician, "role": "clinician"}))
		tm.userID = s.lastUserID
		var out struct{ ID string }
		r := s.admin.do("POST", "/v1/care-teams", map[string]any{"name": name, "member_ids": []string{s.lastUserID}})
		if r.status != http.StatusCreated {
			t.Fatalf("create team: %d %s", r.status, r.body)
		}
		r.decode(t, &out)
		r = tm.clinician.do("POST", "/v1/patients", map[string]any{"display_name": patient, "timezone": "Europe/London",
			"care_team_id": out.ID, "programs": []string{"hypertension"}})
		if r.status != http.StatusCreated {
			t.Fatalf("create patient: %d %s", r.status, r.body)
		}
		r.decode(t, &out)
		tm.patientID = out.ID
		tm.device = s.admin.as(s.userToken(t, map[string]any{"name": "oximeter", "role": "device", "patient_id": out.ID}))
		return tm
	}
	a := newTeam("Cardiology RPM", "Dr Ada Osei", "Sam Lee")
	b := newTeam("Pulmonary RPM", "Dr Ben Roy", "Kim Park")

	post := func(c client, patientID string, readings ...map[string]any) []string {
		r := c.do("POST", "/v1/patients/"+patientID+"/readings", map[string]any{"readings": readings})
		if r.status != http.StatusCreated {
			t.Fatalf("post readings: %d %s", r.status, r.body)
		}
		var out struct{ Alerts []struct{ ID string } }
		r.decode(t, &out)
		ids := make([]string, len(out.Alerts))
		for i, al := range out.Alerts {
			ids[i] = al.ID
		}
		return ids
	}
	now := time.Now().UTC().Truncate(time.Second)
	spo2 := func(v float64, ago time.Duration) map[string]any {
		return map[string]any{"kind": "spo2", "value": v, "unit": "%", "observed_at": now.Add(-ago).Format(time.RFC3339)}
	}
	glucose := func(v float64, ago time.Duration) map[string]any {
		return map[string]any{"kind": "blood_glucose", "value": v, "unit": "mg/dL",
			"observed_at": now.Add(-ago).Format(time.RFC3339)}
	}
	// A history for the plot, and an older alert of each team already in
	// the queues.
	var history []map[string]any
	for i, v := range []float64{97, 96, 96, 95, 94, 95, 93, 94} {
		history = append(history, spo2(v, time.Duration(16-2*i)*time.Hour))
	}
	post(a.device, a.patientID, history...)
	post(a.device, a.patientID, glucose(62, 40*time.Minute))
	bAlerts := post(b.device, b.patientID, spo2(72, 30*time.Minute))
	if len(bAlerts) == 0 {
		t.Fatal("team B's critical reading raised no alert")
	}

	// Team A's patient takes furosemide: one dose taken yesterday evening,
	// this morning's missed (the reminder workers do not run in this test,
	// so the doses' outcomes are written as those workers would).
	var sched struct{ ID string }
	r := a.clinician.do("POST", "/v1/patients/"+a.patientID+"/schedules", map[string]any{"type": "medication",
		"medication": "Furosemide", "dose": "40 mg", "times": []string{"08:00", "20:00"},
		"start_date": now.AddDate(0, 0, -2).Format(time.DateOnly)})
	if r.status != http.StatusCreated {
		t.Fatalf("schedule: %d %s", r.status, r.body)
	}
	r.decode(t, &sched)
	for i, st := range []string{"taken", "missed"} {
		at := now.Add(-time.Duration(16-12*i) * time.Hour)
		if _, err := pool.Exec(ctx, `INSERT INTO doses (id, schedule_id, patient_id, occurrence_key, due_at, status, reminded_at,
			decided_at, taken_at, created_at) SELECT gen_random_uuid(), $1, $2, $3, $4::timestamptz, $5::text, $4::timestamptz,
			$4::timestamptz + interval '1 hour', CASE WHEN $5::text = 'taken' THEN $4::timestamptz + interval '10 minutes' END,
			$4::timestamptz - interval '2 days'`,
			sched.ID, a.patientID, "test:"+st, at, st); err != nil {
			t.Fatal(err)
		}
	}

	// Team A's patient has the app: a symptom report is already in their
	// thread with the team.
	patientA := s.admin.as(s.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": a.patientID}))
	if r := patientA.do("POST", "/v1/patients/"+a.patientID+"/symptom-reports", map[string]any{
		"symptoms": []map[string]any{{"code": "swelling", "severity": 4}}, "note": "Ankles puffy by the evening"}); r.status != http.StatusCreated {
		t.Fatalf("symptom report: %d %s", r.status, r.body)
	}
	var threadsA struct {
		Items []struct{ ID, Kind string }
	}
	patientA.do("GET", "/v1/threads", nil).decode(t, &threadsA)
	if len(threadsA.Items) != 1 || threadsA.Items[0].Kind != "patient" {
		t.Fatalf("the patient's threads: %+v", threadsA.Items)
	}
	threadA := threadsA.Items[0].ID
	var teamA struct {
		CareTeamID string `json:"care_team_id"`
	}
	s.admin.do("GET", "/v1/patients/"+a.patientID, nil).decode(t, &teamA)
	cast := castTeam(t, s, pool, teamA.CareTeamID)
	const patientText = "My ankles are more swollen today & my shoes feel tight <since Sunday>"
	const replyText = "Thanks, Sam: please put your feet up and weigh yourself now; I will call you at 3 pm."
	const broadcastText = "The clinic is closed on Monday: message us here as usual."
	const leadBroadcastText = "Flu vaccinations this week: reply here to book a time."

	// For the administration pages (run once): a user to disable, and
	// the expected backtest.
	var adminEnv []string
	var tempUser string
	if mode == "polling" {
		s.userToken(t, map[string]any{"name": "Dr Cal Temp", "role": "clinician"})
		tempUser = s.lastUserID
		pt := teamA
		// A lead of team A, who broadcasts from the care-team page.
		leadTok := s.userToken(t, map[string]any{"name": "Dr Lea Lead", "role": "clinician"})
		if _, err := pool.Exec(ctx, `INSERT INTO care_team_members (care_team_id, user_id, role, org_id) VALUES ($1, $2, 'lead', '00000000-0000-0000-0000-000000000001')`,
			pt.CareTeamID, s.lastUserID); err != nil {
			t.Fatal(err)
		}
		// Team A reads its dates in Chicago: the backtest's "since" is a
		// Chicago midnight.
		if r := s.admin.do("PUT", "/v1/care-teams/"+pt.CareTeamID, map[string]any{"timezone": "America/Chicago"}); r.status != http.StatusOK {
			t.Fatalf("team zone: %d %s", r.status, r.body)
		}
		adminEnv = []string{"TOKEN_ADMIN=" + admTok, "DISABLE_USER=" + tempUser, "TOKEN_LEAD=" + leadTok,
			"LEAD_BROADCAST_TEXT=" + leadBroadcastText}
	}

	// The organisation's branding, which every console page shows.
	const brandName = "Northside Heart"
	if r := s.admin.do("PATCH", "/v1/organisations/"+engine.DefaultOrgID().String(), map[string]any{
		"branding": map[string]any{"name": brandName, "primary_color": "#0B5394"}}); r.status != http.StatusOK {
		t.Fatalf("branding: %d %s", r.status, r.body)
	}
	if r := s.admin.doWith("PUT", "/v1/organisations/"+engine.DefaultOrgID().String()+"/logo", string(testLogo(t)), map[string]string{"Content-Type": "image/png"}); r.status != http.StatusOK {
		t.Fatalf("logo: %d %s", r.status, r.body)
	}

	shot := filepath.Join(t.TempDir(), "console.png")
	if p := os.Getenv("TEND_CONSOLE_SCREENSHOT"); p != "" && mode == "polling" {
		shot, _ = filepath.Abs(filepath.Join("..", p))
	}
	// About a minute on an idle machine; generous for a loaded CI runner.
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	cmd := pb.command(ctx, "console.test.mjs", hs.URL, append([]string{"TOKEN_A=" + a.clinician.token, "TOKEN_B=" + b.clinician.token,
		"SCREENSHOT=" + shot, "EXPECT_MODE=" + mode, "PATIENT_TEXT=" + patientText, "REPLY_TEXT=" + replyText,
		"BROADCAST_TEXT=" + broadcastText, "TEAM_A=" + teamA.CareTeamID, "GONE_USER=" + cast.gone.UserID.String(),
		"BRAND_NAME=" + brandName}, adminEnv...)...)

	var alertID, messageID string
	var result struct {
		AppearedMS int    `json:"appeared_ms"`
		LiveMode   string `json:"live_mode"`
		Lead       *struct {
			ID       string `json:"id"`
			Progress string `json:"progress"`
		} `json:"lead_broadcast"`
		PlotCaption  string       `json:"plot_caption"`
		RowText      string       `json:"row_text"`
		FiredText    string       `json:"fired_text"`
		Legend       string       `json:"legend"`
		History      string       `json:"history"`
		LoadingText  string       `json:"loading_text"`
		TokenLink    string       `json:"token_link"`
		Checks       pageChecks   `json:"checks"`
		AckMessage   string       `json:"ack_message"`
		Resolved     bool         `json:"resolved"`
		ResolveError string       `json:"resolve_error"`
		BRows        []string     `json:"b_rows"`
		Thread       threadResult `json:"thread"`
		Reminders    struct {
			Schedules []string `json:"schedules"`
			Doses     []string `json:"doses"`
		} `json:"reminders"`
		Admin          *adminResult     `json:"admin"`
		LeadSimulation *simulationShown `json:"lead_simulation"`
		Team           teamPageResult   `json:"team"`
	}
	driveBrowser(t, cmd, &result, func(line string, reply func(string)) bool {
		switch {
		case line == "READY":
			ids := post(a.device, a.patientID, spo2(72, 0))
			if len(ids) == 0 {
				t.Fatal("the critical reading raised no alert")
			}
			alertID = ids[0]
			// Then one for team B, so that B's console is known to have
			// refreshed after A's alert existed.
			later := post(b.device, b.patientID, glucose(45, 0))
			if len(later) == 0 {
				t.Fatal("team B's second critical reading raised no alert")
			}
			live.publish(alertID)
			live.publish(later[0])
			reply(fmt.Sprintf("POSTED %s %s", alertID, later[0]))
		case line == "TEAM":
			// Dr Gil Gone comes back while the team page is open.
			cast.connect(t, cast.gone)
			reply("CONNECTED")
		case line == "AWAY", line == "BACK":
			// The console reported its user away after the idle time, then
			// online at a key press: the server has it so.
			if away := userAway(t, pool, a.userID); away != (line == "AWAY") {
				t.Errorf("after the console said %s, the server has the clinician away=%v", line, away)
			}
			reply("OK")
		case strings.HasPrefix(line, "THREAD "):
			// The console shows the patient's thread: the patient starts
			// typing, then writes with a photo.
			if got := strings.TrimPrefix(line, "THREAD "); got != threadA {
				t.Errorf("the alert pane shows thread %s, want the patient's %s", got, threadA)
			}
			if r := patientA.do("POST", "/v1/threads/"+threadA+"/typing", nil); r.status != http.StatusAccepted {
				t.Errorf("typing: %d %s", r.status, r.body)
			}
			reply("POSTING")
			var att, msg struct{ ID string }
			r := patientA.doWith("POST", "/v1/threads/"+threadA+"/attachments", string(pngFile), map[string]string{"Content-Type": "image/png"})
			if r.status != http.StatusCreated {
				t.Fatalf("upload: %d %s", r.status, r.body)
			}
			r.decode(t, &att)
			var clip struct{ ID string }
			r = patientA.doWith("POST", "/v1/threads/"+threadA+"/attachments", string(voiceNote), map[string]string{"Content-Type": "audio/ogg"})
			if r.status != http.StatusCreated {
				t.Fatalf("upload the voice note: %d %s", r.status, r.body)
			}
			r.decode(t, &clip)
			r = patientA.do("POST", "/v1/threads/"+threadA+"/messages", map[string]any{"body": patientText,
				"attachment_ids": []string{att.ID, clip.ID}})
			if r.status != http.StatusCreated {
				t.Fatalf("the patient's message: %d %s", r.status, r.body)
			}
			r.decode(t, &msg)
			messageID = msg.ID
			reply(fmt.Sprintf("MESSAGED %s %d", msg.ID, len(pngFile)))
		default:
			return false
		}
		return true
	})
	t.Logf("appeared after %d ms (%s); plot: %s", result.AppearedMS, result.LiveMode, result.PlotCaption)
	checkConsoleDisplay(t, mode, &result.Checks, displayResult{Row: result.RowText, Fired: result.FiredText, Caption: result.PlotCaption,
		Legend: result.Legend, History: result.History, Loading: result.LoadingText, TokenLink: result.TokenLink})

	// The API agrees with what the console showed.
	var got struct{ Status string }
	r = a.clinician.do("GET", "/v1/alerts/"+alertID, nil)
	if r.status != http.StatusOK {
		t.Fatalf("get alert: %d %s", r.status, r.body)
	}
	r.decode(t, &got)
	// The clinician resolved it from the console, and the API shows it resolved.
	if !result.Resolved || got.Status != "resolved" {
		t.Errorf("resolve from the console: console resolved=%v (error %q); the API says %q", result.Resolved, result.ResolveError, got.Status)
	}
	if result.AckMessage != "Acknowledged." {
		t.Errorf("ack message %q", result.AckMessage)
	}
	// The assignee chosen by name in the console is the API's.
	var assigned struct {
		AssignedTo string `json:"assigned_to"`
	}
	a.clinician.do("GET", "/v1/alerts/"+alertID, nil).decode(t, &assigned)
	if assigned.AssignedTo != a.userID {
		t.Errorf("assigned from the console to %q, want the clinician %s", assigned.AssignedTo, a.userID)
	}
	// Team B never sees it, in the console or through the API; it did see
	// its own alert, so its console was working.
	if r := b.clinician.do("GET", "/v1/alerts/"+alertID, nil); r.status != http.StatusNotFound {
		t.Errorf("team B reads team A's alert: %d", r.status)
	}
	if !slices.Contains(result.BRows, bAlerts[0]) {
		t.Errorf("team B's console did not show team B's own alert: %v", result.BRows)
	}
	// The alert pane showed the patient's reminders as the API has them.
	if len(result.Reminders.Schedules) != 1 || !strings.Contains(result.Reminders.Schedules[0], "Furosemide 40 mg") ||
		!strings.Contains(result.Reminders.Schedules[0], "1 of 2 taken (50 %), 1 missed") {
		t.Errorf("reminders in the console: %q", result.Reminders.Schedules)
	}
	if len(result.Reminders.Doses) < 2 || result.Reminders.Doses[0] != "missed" || result.Reminders.Doses[1] != "taken" {
		t.Errorf("recent doses in the console (newest first): %q", result.Reminders.Doses)
	}
	checkThread(t, result.Thread, threadA, messageID, patientA, a.userID, b.clinician, replyText)
	checkTeamPage(t, mode, result.Team, a.userID, cast)
	// With the stream, the patient's typing showed before their message.
	if mode == "stream" && result.Thread.Typing != "Patient is typing…" {
		t.Errorf("typing indicator: %q", result.Thread.Typing)
	}
	if mode == "polling" {
		checkAdminPages(t, s.admin, tempUser, result.Admin)
		checkSimulations(t, s.admin, result.Admin.simulationSteps, result.Admin.Simulation, result.LeadSimulation)
		// The broadcast sent from the console completed, and its copy is in
		// the patient's thread.
		var bc struct {
			Status      string
			Total, Done int
		}
		if r := s.admin.do("GET", "/v1/broadcasts/"+result.Admin.Broadcast.ID, nil); r.status != http.StatusOK {
			t.Fatalf("broadcast from the console: %d %s", r.status, r.body)
		} else {
			r.decode(t, &bc)
		}
		if bc.Status != "completed" || bc.Total != 1 || bc.Done != 1 || !strings.HasPrefix(result.Admin.Broadcast.Progress, "Completed: 1 of 1") {
			t.Errorf("broadcast: API %+v, console %q", bc, result.Admin.Broadcast.Progress)
		}
		msgs := threadMessages(t, patientA, threadA)
		if !slices.ContainsFunc(msgs, func(m threadMessage) bool { return m.Body == broadcastText && m.SenderRole == "admin" }) {
			t.Errorf("the broadcast's copy is not in the patient's thread")
		}
		// The lead's broadcast, from the care-team page of a non-admin.
		if result.Lead == nil || !strings.HasPrefix(result.Lead.Progress, "Completed: 1 of 1") {
			t.Errorf("the lead's broadcast: %+v", result.Lead)
		} else if r := s.admin.do("GET", "/v1/broadcasts/"+result.Lead.ID, nil); r.status != http.StatusOK {
			t.Errorf("the lead's broadcast: %d %s", r.status, r.body)
		}
		if !slices.ContainsFunc(msgs, func(m threadMessage) bool { return m.Body == leadBroadcastText && m.SenderRole == "clinician" }) {
			t.Errorf("the lead's broadcast is not in the patient's thread")
		}
	}
}

type threadMessage struct {
	ID         string
	Body       string
	Kind       string
	SenderRole string `json:"sender_role"`
	Receipts   []receipt
}

type receipt struct {
	UserID string `json:"user_id"`
	Status string
}

func threadMessages(t *testing.T, c client, thread string) []threadMessage {
	t.Helper()
	var page struct{ Items []threadMessage }
	r := c.do("GET", "/v1/threads/"+thread+"/messages?limit=100", nil)
	if r.status != http.StatusOK {
		t.Fatalf("messages of %s: %d %s", thread, r.status, r.body)
	}
	r.decode(t, &page)
	return page.Items
}

// checkThread checks, through the API, the thread view's part: the
// patient's message appeared in the console (its text as text, its photo as
// a link with type and size, the symptom report as a list), the console
// marked it read, the clinician's reply reached the patient, and team B's
// clinician never saw the thread.
func checkThread(t *testing.T, got threadResult, thread, messageID string, patient client, clinicianA string, clinicianB client, reply string) {
	t.Helper()
	t.Logf("message appeared in the console after %d ms", got.AppearedMS)
	if got.ID != thread || got.Role != "Patient" || got.Body != "My ankles are more swollen today & my shoes feel tight <since Sunday>" {
		t.Errorf("thread view: %+v", got)
	}
	if got.Attachment != fmt.Sprintf("Attachment: PNG image, %d bytes", len(pngFile)) {
		t.Errorf("attachment link %q", got.Attachment)
	}
	if got.Unread != "0" {
		t.Errorf("the Messages section lists the thread with %q unread after the clinician read and answered it", got.Unread)
	}
	if !strings.HasSuffix(got.Download, ".png") {
		t.Errorf("the attachment link downloaded %q, want the PNG", got.Download)
	}
	// The thread shows presence: the patient holds no stream (offline), and
	// how many staff are online (the clinician reading, when the console
	// holds the stream).
	if !strings.HasPrefix(got.Presence, "Patient: offline") || !strings.Contains(got.Presence, "Staff online: ") {
		t.Errorf("the thread's presence line is %q", got.Presence)
	}
	// The voice note plays inline: the browser read its length (2 s) from the
	// file the console fetched.
	if got.AudioDuration < 1.9 || got.AudioDuration > 2.1 {
		t.Errorf("the inline player's duration is %v s, want the voice note's 2 s", got.AudioDuration)
	}
	if !slices.Equal(got.Symptoms, []string{"Swelling: severity 4 of 10"}) {
		t.Errorf("symptom report in the thread view: %q", got.Symptoms)
	}
	// Shown means read: the patient sees the clinician's receipt of their
	// message as read.
	msgs := threadMessages(t, patient, thread)
	read := false
	for _, m := range msgs {
		if m.ID == messageID {
			read = slices.Contains(m.Receipts, receipt{UserID: clinicianA, Status: "read"})
		}
	}
	if !read {
		t.Errorf("the console did not mark the patient's message read: %+v", msgs)
	}
	// The reply, as the patient sees it.
	if !slices.ContainsFunc(msgs, func(m threadMessage) bool { return m.Body == reply && m.SenderRole == "clinician" }) ||
		!slices.ContainsFunc(msgs, func(m threadMessage) bool { return m.ID == messageID }) || got.Sent != "Sent." {
		t.Errorf("the clinician's reply from the console (%q) is not in the patient's thread: %+v", got.Sent, msgs)
	}
	// Team B's clinician: not in the console's list, 404 from the API.
	if got.BDefault != 0 {
		t.Errorf("team B's Messages section lists %d threads without messages by default", got.BDefault)
	}
	if !got.BThreadsMet || len(got.BThreads) == 0 || slices.Contains(got.BThreads, thread) {
		t.Errorf("team B's Messages section: %v (loaded %v)", got.BThreads, got.BThreadsMet)
	}
	if r := clinicianB.do("GET", "/v1/threads/"+thread+"/messages", nil); r.status != http.StatusNotFound {
		t.Errorf("team B reads team A's patient thread: %d", r.status)
	}
}

// checkAdminPages checks, through the API, what the admin did in the
// console's administration pages.
// adminResult is what the browser did in the administration pages.
type adminResult struct {
	Disabled       bool     `json:"disabled"`
	TokenIssued    bool     `json:"token_issued"`
	TokenRevoked   bool     `json:"token_revoked"`
	TeamSaved      string   `json:"team_saved"`
	MembersShown   []string `json:"members_presence"`
	BacktestRule   string   `json:"backtest_rule"`
	BacktestSince  string   `json:"backtest_since"`
	BacktestAlerts int      `json:"backtest_alerts"`
	RuleDisabled   string   `json:"rule_disabled"`
	ParamsSaved    string   `json:"params_saved"`
	AuditIDs       []string `json:"audit_ids"`
	AuditFiltered  int      `json:"audit_filtered"`
	BacktestDay    string   `json:"backtest_day"`
	Patient        struct {
		ID          string `json:"id"`
		DeviceToken string `json:"device_token"`
	} `json:"patient"`
	JobsStates int    `json:"jobs_states"`
	JobsTitle  string `json:"jobs_title"`
	Broadcast  struct {
		ID       string `json:"id"`
		Progress string `json:"progress"`
	} `json:"broadcast"`
	Simulation *simulationShown `json:"simulation"`
	simulationSteps
}

// threadResult is what the thread views showed.
type threadResult struct {
	ID         string `json:"id"`
	AppearedMS int    `json:"appeared_ms"`
	Role       string `json:"role"`
	Body       string `json:"body"`
	Attachment string `json:"attachment"`
	Download   string `json:"download"`
	// Presence is the thread view's presence line.
	Presence string `json:"presence"`
	// AudioDuration is the duration the browser read from the inline
	// player of the voice note.
	AudioDuration float64  `json:"audio_duration"`
	Unread        string   `json:"listed_unread"`
	Symptoms      []string `json:"symptoms"`
	Typing        string   `json:"typing"`
	Sent          string   `json:"sent"`
	BThreads      []string `json:"b_threads"`
	BThreadsMet   bool     `json:"b_threads_loaded"`
	BDefault      int      `json:"b_default"`
}

func checkAdminPages(t *testing.T, admin client, tempUser string, got *adminResult) {
	t.Helper()
	if got == nil {
		t.Fatal("the browser test did not report the administration pages")
	}
	// The user disabled in the console is disabled for the API.
	var users struct {
		Items []struct {
			ID         string
			DisabledAt *time.Time `json:"disabled_at"`
		}
	}
	admin.do("GET", "/v1/users?q=Cal%20Temp", nil).decode(t, &users)
	if len(users.Items) != 1 || users.Items[0].ID != tempUser || users.Items[0].DisabledAt == nil || !got.Disabled {
		t.Errorf("disable from the console: console %v, API %+v", got.Disabled, users.Items)
	}
	// The token issued in the console was listed, then revoked.
	var toks struct {
		Items []struct {
			ExpiresAt *time.Time `json:"expires_at"`
			RevokedAt *time.Time `json:"revoked_at"`
		}
	}
	admin.do("GET", "/v1/users/"+tempUser+"/tokens", nil).decode(t, &toks)
	revoked := 0
	for _, tk := range toks.Items {
		if tk.RevokedAt != nil && tk.ExpiresAt != nil {
			revoked++
		}
	}
	if !got.TokenIssued || !got.TokenRevoked || revoked != 1 {
		t.Errorf("tokens from the console: issued %v revoked %v; the API lists %d revoked expiring tokens", got.TokenIssued, got.TokenRevoked, revoked)
	}
	// The team's escalation policy as edited.
	var team struct {
		Escalation struct {
			AckDeadlines map[string]string `json:"ack_deadlines"`
			Levels       []string          `json:"levels"`
			SkipOffline  bool              `json:"skip_offline_first_step"`
		}
	}
	admin.do("GET", "/v1/care-teams/"+got.TeamSaved, nil).decode(t, &team)
	if team.Escalation.AckDeadlines["critical"] != "7m" || !slices.Equal(team.Escalation.Levels, []string{"on_call", "all"}) ||
		!team.Escalation.SkipOffline {
		t.Errorf("team policy after the console's edit: %+v", team.Escalation)
	}
	// An admin outside the team sees its members without their presence.
	if len(got.MembersShown) == 0 || slices.ContainsFunc(got.MembersShown, func(s string) bool { return s != "Not shown: only the team's members see it" }) {
		t.Errorf("an admin outside team A sees its members' presence as %q", got.MembersShown)
	}
	// The rule disabled and the parameter changed.
	var rule struct {
		Enabled    bool
		Version    int
		Definition struct{ Params map[string]float64 }
	}
	admin.do("GET", "/v1/rules/"+got.RuleDisabled, nil).decode(t, &rule)
	if rule.Enabled {
		t.Errorf("rule %s still enabled after the console disabled it", got.RuleDisabled)
	}
	admin.do("GET", "/v1/rules/"+got.ParamsSaved, nil).decode(t, &rule)
	if rule.Definition.Params["systolic_max"] != 185 || rule.Version < 2 {
		t.Errorf("rule %s after the console's parameter edit: v%d %v", got.ParamsSaved, rule.Version, rule.Definition.Params)
	}
	checkBacktestAndAudit(t, admin, got)
	checkPatientPage(t, admin, got)
	// The job dashboard opened from the console, signed in by its cookie.
	if got.JobsStates != http.StatusOK || !strings.Contains(got.JobsTitle, "River") {
		t.Errorf("job dashboard from the console: states %d, title %q", got.JobsStates, got.JobsTitle)
	}
}

func hasRoute(srv *api.Server, pattern string) bool {
	return slices.ContainsFunc(srv.Routes(), func(r api.Route) bool { return r.Pattern == pattern })
}

// stream serves the API and GET /v1/stream: refused (404, as a server
// without a stream answers), the server's own, or a stand-in that sends
// each published alert to the clients whose token may read it.
type stream struct {
	api          http.Handler
	refuse, real bool

	mu     sync.Mutex
	subs   map[chan string]string // events → the client's Authorization header
	seq    int
	closed bool
}

func (s *stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/stream" || s.real {
		s.api.ServeHTTP(w, r)
		return
	}
	if s.refuse {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"type":"about:blank","title":"Not found","status":404,"detail":"no such endpoint"}`)
		return
	}
	auth := r.Header.Get("Authorization")
	if s.call(auth, "/v1/alerts") != http.StatusOK {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"type":"about:blank","title":"Unauthorized","status":401}`)
		return
	}
	ch := make(chan string, 16)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.subs[ch] = auth
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": connected\n\n")
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			_, _ = io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}
}

// call answers the status of an API GET made with the given credentials.
func (s *stream) call(auth, path string) int {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", auth)
	rec := httptest.NewRecorder()
	s.api.ServeHTTP(rec, req)
	return rec.Code
}

// publish sends alert.created for id to every client that may read it.
func (s *stream) publish(id string) {
	if s.refuse || s.real {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch, auth := range s.subs {
		if s.call(auth, "/v1/alerts/"+id) != http.StatusOK {
			continue
		}
		s.seq++
		ch <- fmt.Sprintf("id: %d\nevent: alert.created\ndata: {\"id\":%q}\n\n", s.seq, id)
	}
}

// close ends every open stream, so that the test server can shut down.
func (s *stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.subs {
		close(ch)
		delete(s.subs, ch)
	}
}
