package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/migrations"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/apns"
	"github.com/tendhealth/tend/notify/fcm"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
	"github.com/tendhealth/tend/sealed"
)

// demo runs the whole system locally: a Postgres (found or started), the API
// and workers, fake push services standing in for the clinician's devices,
// and simulated patients whose devices post readings over the real API.
func demo(ctx context.Context, env getenv, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "[flags]", "Runs the whole system on a local PostgreSQL (TEND_DATABASE_URL, else 127.0.0.1:5432, else a private\n"+
		"cluster) with simulated patients, fake push services and a live story of alerts and deliveries.", stdout, stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	patients := fs.Int("patients", 12, "number of simulated patients (the first three follow clinical stories, the rest are stable)")
	interval := fs.Duration("interval", 2*time.Second, "mean time between one patient's readings")
	envFile := fs.String("env-file", demoEnvFile, "where to write the settings that reopen the demo's data with tend serve (\"\": nowhere)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *patients < 1 || *patients > 1000 {
		return &exitError{code: 2, err: fmt.Errorf("--patients must be between 1 and 1000")}
	}
	ctx, cancel := demoContext(ctx, *duration)
	defer cancel()
	s, err := loadSettings(env)
	if err != nil {
		return err
	}
	log := demoLogger(env, stderr, s.LogLevel)
	start := time.Now()
	out := &printer{w: stdout, start: start}

	pool, url, cleanup, err := demoDatabase(ctx, s, log, out)
	if err != nil {
		return err
	}
	defer cleanup()

	stats := newDemoStats()
	senders, phones, err := demoPushServices(ctx, out, stats)
	if err != nil {
		return err
	}
	defer phones.close()

	ln, err := net.Listen("tcp", orDefault(env("TEND_ADDR"), "127.0.0.1:0"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.WebPushAllowed = []string{"127.0.0.1"}
	generatedKeys, err := demoKeys(&s, out) // the key the demo made, for its settings file
	if err != nil {
		return err
	}
	if *envFile != "" {
		writeDemoEnv(out, *envFile, url, generatedKeys)
	}
	sys, err := startSystem(ctx, s, pool, log, systemOpts{withAPI: true, overrides: func(c *engine.Config) {
		c.Senders = senders
		c.APNsTopic = phones.apns.Topic
		c.FetchCooldown = 10 * time.Millisecond
	}})
	if err != nil {
		return err
	}
	defer sys.stop()
	base := "http://" + ln.Addr().String()
	serveErr := make(chan error, 1)
	go func() { serveErr <- sys.listen(ctx, ln, nil) }()
	out.printf("api        %s   (metrics at /metrics, job dashboard at /riverui/ for admins)", base)

	d := &demoRun{eng: sys.engine, client: &http.Client{Timeout: 10 * time.Second}, base: base, out: out, stats: stats,
		phones: phones, start: start, names: map[string]string{}, printed: map[string]bool{}}
	if err := d.clinician(ctx); err != nil {
		return err
	}
	sims, err := d.enrol(ctx, *patients)
	if err != nil {
		return err
	}
	stopMQTT, err := d.devices(ctx, s, sys, sims)
	if err != nil {
		return err
	}
	defer stopMQTT()

	return d.play(ctx, sims, *interval, serveErr)
}

// play runs the patients' stories and the clinician's side until ctx
// ends, then prints the summary.
func (d *demoRun) play(ctx context.Context, sims []*simPatient, interval time.Duration, serveErr <-chan error) error {
	// What the histories raised is shown (and counted) before any story
	// posts: on a slow enrolment a story's first reading would otherwise
	// come first and find its alert already open.
	d.poll(ctx, true)
	var wg sync.WaitGroup
	for _, p := range sims {
		wg.Go(func() { p.run(ctx, d, interval) })
	}
	wg.Go(func() { d.watch(ctx) })
	wg.Go(func() { d.converse(ctx) })
	wg.Wait()
	select {
	case err := <-serveErr:
		if err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
	}
	// The clinician's view of what happened, from the API.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.poll(sctx, false)
	d.stats.summary(d.out.w, time.Since(d.start), sims)
	return nil
}

// demoDatabase finds or starts the demo's database (tend_demo), migrates
// it and opens a pool on url; cleanup closes the pool and stops any
// private cluster.
func demoDatabase(ctx context.Context, s settings, log *slog.Logger, out *printer) (*pgxpool.Pool, string, func(), error) {
	url, stop, err := resolveDatabaseOpts(ctx, s.DatabaseURL, "tend_demo", true, true, log)
	if err != nil {
		return nil, "", nil, err
	}
	pool, err := openPool(ctx, url, s.DBMaxConns)
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	cleanup := func() { pool.Close(); stop() }
	if _, err := migrations.Up(ctx, pool, log); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	out.printf("database   %s (migrated)", redactURL(url))
	return pool, url, cleanup, nil
}

// demoLogger logs at TEND_LOG_LEVEL when set, else warnings and errors
// only: the demo prints its own story.
func demoLogger(env getenv, stderr io.Writer, level slog.Level) *slog.Logger {
	if env("TEND_LOG_LEVEL") == "" {
		return newLogger(stderr, 4)
	}
	return newLogger(stderr, level)
}

// signIns prints the console's sign-in links for the clinician and the
// first patient.
// demoContext ends ctx after d (0: when interrupted only).
func demoContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// devices starts the demo's MQTT listener for the patients' devices and
// prints the sign-in links; the returned function stops the listener.
func (d *demoRun) devices(ctx context.Context, s settings, sys *system, sims []*simPatient) (func(), error) {
	ml, err := demoMQTT(ctx, s, sys, d.out, sims)
	if err != nil {
		return nil, err
	}
	if err := d.signIns(ctx, sys.api, sims[0]); err != nil {
		ml.Close()
		return nil, err
	}
	return func() { ml.Close() }, nil
}

func (d *demoRun) signIns(ctx context.Context, srv *api.Server, first *simPatient) error {
	links, err := demoSignIns(ctx, d.eng, srv, d.team, d.docID, d.docToken, first.id, first.name)
	if err != nil {
		return err
	}
	d.out.printf("")
	printSignIns(d.out, d.base, links)
	d.out.printf("")
	return nil
}

// demoKeys makes a key of the demo's own when none is configured, and
// returns it ("" when one was): message bodies and symptom notes are sealed
// at rest, and the demo's key is kept in memory only (like its data's
// purpose: a tour).
func demoKeys(s *settings, out *printer) (string, error) {
	if s.Keys != nil {
		return "", nil
	}
	text, err := sealed.Generate("demo")
	if err != nil {
		return "", err
	}
	if s.Keys, err = sealed.ParseKeyring(text); err != nil {
		return "", err
	}
	out.printf("encryption a new key for this run (set TEND_ENCRYPTION_KEYS to keep one)")
	return text, nil
}

// clinician sets up the demo's clinician and care team through the engine,
// as an admin would, registers the clinician's devices and prints how to
// follow along.
func (d *demoRun) clinician(ctx context.Context) error {
	sysActor := engine.System("demo")
	doc, err := d.eng.CreateUser(ctx, sysActor, engine.NewUser{Name: "Dr Ada Osei", Role: engine.RoleClinician})
	if err != nil {
		return err
	}
	if d.docToken, err = d.eng.CreateToken(ctx, sysActor, doc.ID); err != nil {
		return err
	}
	team, err := d.eng.CreateCareTeam(ctx, sysActor, engine.NewCareTeam{Name: fmt.Sprintf("Demo RPM team %s", d.start.Format("15:04:05")),
		MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		return err
	}
	d.team, d.docID = team.ID, doc.ID
	docActor := engine.Actor{UserID: doc.ID, Role: engine.RoleClinician, RequestID: "demo"}
	if err := d.phones.register(ctx, d.eng, docActor); err != nil {
		return err
	}
	d.out.printf("clinician  Dr Ada Osei with an Android phone, an iPhone and a browser; token for the curl tour:")
	d.out.printf("           export TOKEN=%s", d.docToken)
	d.out.printf("           curl -s -H \"Authorization: Bearer $TOKEN\" %s/v1/alerts", d.base)
	d.out.printf("console    %s/#token=%s", d.base, d.docToken)
	d.out.printf("           (opens the triage console signed in as the clinician)")
	d.out.printf("")
	return nil
}

type ingestResponse struct {
	Readings []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"readings"`
	Alerts []struct {
		ID      string `json:"id"`
		RuleID  string `json:"rule_id"`
		Urgency string `json:"urgency"`
		Status  string `json:"status"`
	} `json:"alerts"`
	Retakes []struct {
		RuleID   string    `json:"rule_id"`
		RetakeBy time.Time `json:"retake_by"`
	} `json:"retakes"`
}

// postJSON posts a body and decodes the answer into a new T.
func postJSON[T any](ctx context.Context, client *http.Client, url, token string, body any) (T, error) {
	var res T
	err := callJSON(ctx, client, http.MethodPost, url, token, body, &res)
	return res, err
}

// callJSON makes one API call; a non-2xx answer is an error.
func callJSON(ctx context.Context, client *http.Client, method, url, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

// printer serialises the demo's live output, stamped with elapsed time.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if format == "" {
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintf(p.w, "%6.1fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// short abbreviates an id for display: the last 8 hex digits, which are the
// random part of a UUIDv7 (its first digits are a timestamp).
func short(id string) string {
	if len(id) >= 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// demoPhones are the fake provider services and the devices on them: the
// clinician's three, and a phone for each story patient (FCM).
type demoPhones struct {
	fcm     *notifytest.FCM
	apns    *notifytest.APNs
	browser *notifytest.WebPush
	sub     notifytest.Subscription
	android string // FCM registration token
	iphone  string // APNs device token

	mu     sync.Mutex
	owners map[string]*simPatient // FCM token of a patient's phone → the patient
}

func (p *demoPhones) close() {
	p.fcm.Close()
	p.apns.Close()
	p.browser.Close()
}

// patientPhone registers a phone for a story patient, as the patient's app
// would.
func (p *demoPhones) patientPhone(ctx context.Context, eng *engine.Engine, a engine.Actor, sim *simPatient) error {
	token := "demo-patient-" + uuid.NewString()
	p.mu.Lock()
	p.owners[token] = sim
	p.mu.Unlock()
	if _, _, err := eng.RegisterDevice(ctx, a, engine.NewDevice{Platform: notify.FCM, Token: token}); err != nil {
		return fmt.Errorf("register a demo patient's phone: %w", err)
	}
	return nil
}

func (p *demoPhones) owner(token string) *simPatient {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.owners[token]
}

// demoPushServices starts the three fake providers, builds a real sender for
// each (pointed at its fake), and prints every push as it arrives with the
// headers that carry its urgency. The fakes stand in for the clinician's
// devices: an Android phone (FCM HTTP v1), an iPhone (APNs over HTTP/2 with
// a provider token) and a browser (Web Push, decrypted by the fake push
// service); the story patients' phones are on the fake FCM too.
func demoPushServices(ctx context.Context, out *printer, stats *demoStats) (notify.Senders, *demoPhones, error) {
	p := &demoPhones{fcm: notifytest.NewFCM(), apns: notifytest.NewAPNs(nil), browser: notifytest.NewWebPush(),
		owners: map[string]*simPatient{}}
	p.sub = p.browser.NewSubscription()
	p.android = "demo-android-" + uuid.NewString()
	p.iphone = strings.Repeat(strings.ReplaceAll(uuid.NewString(), "-", ""), 2) // 64 hex digits
	fail := func(err error) (notify.Senders, *demoPhones, error) { p.close(); return nil, nil, err }

	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return fail(err)
	}
	p.browser.RequireVAPIDKey(pub)
	wp, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:demo@tend.invalid"})
	if err != nil {
		return fail(err)
	}
	fs, err := fcm.New(ctx, fcm.Config{Endpoint: p.fcm.URL, ProjectID: "tend-demo"})
	if err != nil {
		return fail(err)
	}
	as, err := apns.New(apns.Config{Key: p.apns.KeyPEM, KeyID: p.apns.KeyID, TeamID: p.apns.TeamID, Topic: p.apns.Topic,
		Endpoint: p.apns.URL, HTTPClient: p.apns.Client()})
	if err != nil {
		return fail(err)
	}

	type payload struct {
		Type    string            `json:"type"`
		Urgency string            `json:"urgency"`
		Data    map[string]string `json:"data"`
	}
	p.fcm.OnReceive(p.onFCM(out, stats))
	p.apns.OnReceive(func(r notifytest.APNsRequest) {
		var pl struct {
			payload
			Aps struct {
				Level string `json:"interruption-level"`
			} `json:"aps"`
		}
		_ = json.Unmarshal(r.Payload, &pl)
		lat := stats.delivered(pl.Data["alert_id"], "iPhone")
		out.printf("%s", pushLine("iPhone", "APNs", pl.Urgency, pl.Type, pl.Data["alert_id"],
			fmt.Sprintf("apns-priority %s, %s", r.Header.Get("apns-priority"), pl.Aps.Level), lat))
	})
	p.browser.OnReceive(func(r notifytest.WebPushRequest) {
		var pl payload
		_ = json.Unmarshal(r.Payload, &pl)
		lat := stats.delivered(pl.Data["alert_id"], "browser")
		out.printf("%s", pushLine("browser", "Web Push", pl.Urgency, pl.Type, pl.Data["alert_id"],
			fmt.Sprintf("Urgency %s, TTL %ss", r.Header.Get("Urgency"), r.Header.Get("TTL")), lat))
	})
	return notify.Senders{notify.WebPush: wp, notify.FCM: fs, notify.APNs: as}, p, nil
}

// onFCM prints what reached a phone on the fake FCM: a story patient's
// reminder or request, or the clinician's Android alert.
func (p *demoPhones) onFCM(out *printer, stats *demoStats) func(notifytest.FCMRequest) {
	return func(r notifytest.FCMRequest) {
		m := r.Message
		var a notifytest.FCMAndroid
		if m.Android != nil {
			a = *m.Android
		}
		channel := ""
		if a.Notification != nil {
			channel = a.Notification.ChannelID
		}
		if sim := p.owner(m.Token); sim != nil {
			stats.delivered("", "patients' phones")
			title := ""
			if a.Notification != nil && a.Notification.Title != "" {
				title = a.Notification.Title
			} else if m.Notification != nil {
				title = m.Notification.Title
			}
			if m.Data["type"] == "reminder" {
				stats.reminder()
			}
			out.printf("%s", pushLine(sim.firstName()+"'s phone", "", m.Data["urgency"], m.Data["type"], "", fmt.Sprintf("%q", title), ""))
			sim.pushed(m.Data["type"], title)
			return
		}
		lat := stats.delivered(m.Data["alert_id"], "Android")
		out.printf("%s", pushLine("Android", "FCM", m.Data["urgency"], m.Data["type"], m.Data["alert_id"],
			fmt.Sprintf("priority %s, %s, ttl %s", strings.ToLower(a.Priority), channel, a.TTL), lat))
	}
}

// register registers the three devices for the clinician, as their apps
// would over POST /v1/me/devices.
func (p *demoPhones) register(ctx context.Context, eng *engine.Engine, doc engine.Actor) error {
	for _, d := range []engine.NewDevice{
		{Platform: notify.FCM, Token: p.android},
		{Platform: notify.APNs, Token: p.iphone},
		{Platform: notify.WebPush, Endpoint: p.sub.Endpoint, P256dh: p.sub.P256dh, Auth: p.sub.Auth},
	} {
		if _, _, err := eng.RegisterDevice(ctx, doc, d); err != nil {
			return fmt.Errorf("register the demo %s device: %w", d.Platform, err)
		}
	}
	return nil
}
