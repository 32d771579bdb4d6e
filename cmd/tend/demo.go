package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

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
	patients := fs.Int("patients", 20, "number of simulated patients")
	interval := fs.Duration("interval", 2*time.Second, "mean time between one patient's readings")
	abnormal := fs.Float64("abnormal", 0.08, "fraction of readings that are abnormal")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *patients < 1 || *patients > 1000 {
		return &exitError{code: 2, err: fmt.Errorf("--patients must be between 1 and 1000")}
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	s, err := loadSettings(env)
	if err != nil {
		return err
	}
	log := newLogger(stderr, s.LogLevel)
	if env("TEND_LOG_LEVEL") == "" {
		log = newLogger(stderr, 4) // warnings and errors only: the demo prints its own story
	}
	out := &printer{w: stdout, start: time.Now()}

	url, cleanup, err := resolveDatabaseOpts(ctx, s.DatabaseURL, "tend_demo", true, true, log)
	if err != nil {
		return err
	}
	defer cleanup()
	pool, err := openPool(ctx, url, s.DBMaxConns)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool, log); err != nil {
		return err
	}
	out.printf("database   %s (migrated)", redactURL(url))

	// Fake push services stand in for the clinician's devices: an Android
	// phone (FCM HTTP v1), an iPhone (APNs over HTTP/2 with a provider token)
	// and a browser (Web Push, decrypted by the fake push service).
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
	if s.Keys == nil {
		// Message bodies and symptom notes are sealed at rest: the demo
		// makes a key of its own, kept in memory only (like its data's
		// purpose: a tour).
		text, err := sealed.Generate("demo")
		if err != nil {
			return err
		}
		if s.Keys, err = sealed.ParseKeyring(text); err != nil {
			return err
		}
		out.printf("encryption a new key for this run (set TEND_ENCRYPTION_KEYS to keep one)")
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
	out.printf("api        %s   (metrics at %s/metrics)", base, base)

	// Set up the demo's people through the engine, as an admin would.
	sysActor := engine.System("demo")
	eng := sys.engine
	doc, err := eng.CreateUser(ctx, sysActor, engine.NewUser{Name: "Dr Ada Osei", Role: engine.RoleClinician})
	if err != nil {
		return err
	}
	docToken, err := eng.CreateToken(ctx, sysActor, doc.ID)
	if err != nil {
		return err
	}
	team, err := eng.CreateCareTeam(ctx, sysActor, engine.NewCareTeam{Name: fmt.Sprintf("Demo RPM team %s", time.Now().Format("15:04:05")),
		MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		return err
	}
	docActor := engine.Actor{UserID: doc.ID, Role: engine.RoleClinician, RequestID: "demo"}
	if err := phones.register(ctx, eng, docActor); err != nil {
		return err
	}
	out.printf("clinician  %s with an Android phone, an iPhone and a browser; token for the curl tour:", short(doc.ID.String()))
	out.printf("           export TOKEN=%s", docToken)
	out.printf("           curl -s -H \"Authorization: Bearer $TOKEN\" %s/v1/alerts", base)
	out.printf("console    %s/#token=%s   (opens the triage console signed in as the clinician)", base, docToken)

	sims := make([]*simPatient, *patients)
	for i := range sims {
		p, err := eng.CreatePatient(ctx, sysActor, engine.NewPatient{DisplayName: fmt.Sprintf("Demo patient %02d", i+1),
			Timezone: "America/Chicago", CareTeamID: team.ID, Programs: []string{"hypertension"}})
		if err != nil {
			return err
		}
		dev, err := eng.CreateUser(ctx, sysActor, engine.NewUser{Name: fmt.Sprintf("device %02d", i+1), Role: engine.RoleDevice, PatientID: p.ID})
		if err != nil {
			return err
		}
		tok, err := eng.CreateToken(ctx, sysActor, dev.ID)
		if err != nil {
			return err
		}
		sims[i] = &simPatient{id: p.ID, token: tok, rng: rand.New(rand.NewPCG(uint64(i), 42)), retakeKind: -1}
	}
	out.printf("patients   %d simulated patients with devices; streaming readings (%.0f%% abnormal). Ctrl-C stops.", len(sims), *abnormal*100)
	out.printf("")

	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for _, p := range sims {
		wg.Go(func() { p.run(ctx, client, base, *interval, *abnormal, out, stats) })
	}
	wg.Wait()
	select {
	case err := <-serveErr:
		if err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
	}
	stats.summary(out)
	return nil
}

// simPatient is one simulated patient and their device.
type simPatient struct {
	id    uuid.UUID
	token string
	rng   *rand.Rand
	seq   int
	// retakeKind is the kind (index in kinds) the patient was asked to
	// measure again, -1 for none.
	retakeKind int
}

func (p *simPatient) run(ctx context.Context, client *http.Client, base string, interval time.Duration, abnormal float64, out *printer, stats *demoStats) {
	// Stagger the start so patients do not post in lockstep.
	t := time.NewTimer(time.Duration(p.rng.Int64N(int64(interval))))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.seq++
		var body map[string]any
		next := time.Duration(float64(interval) * (0.5 + p.rng.Float64()))
		if p.retakeKind >= 0 {
			// Measuring again, as asked: most abnormal first readings are
			// real, some were a cuff slipping or a cold finger.
			body, p.retakeKind = p.readingOf(p.retakeKind, p.rng.Float64() < 0.75), -1
		} else {
			body = p.reading(p.rng.Float64() < abnormal)
		}
		sent := time.Now()
		res, err := postJSON(ctx, client, base+"/v1/patients/"+p.id.String()+"/readings", p.token, body)
		if err == nil {
			stats.posted()
			for _, a := range res.Alerts {
				if a.Status == "opened" {
					stats.alert(a.ID, a.Urgency, sent)
				}
				out.printf("ALERT  %-8s %-20s patient %s  alert %s (%s)", a.Urgency, a.RuleID, short(p.id.String()), short(a.ID), a.Status)
			}
			for _, rt := range res.Retakes {
				out.printf("RETAKE %-29s patient %s  asked to measure again before %s", rt.RuleID, short(p.id.String()),
					rt.RetakeBy.Local().Format(time.TimeOnly))
				p.retakeKind = slices.Index(kinds, body["kind"].(string))
				next = time.Duration(float64(interval) * (0.1 + 0.2*p.rng.Float64())) // the patient measures again shortly
			}
		} else if ctx.Err() == nil {
			out.printf("error  posting a reading: %v", err)
		}
		t.Reset(next)
	}
}

// reading makes a plausible reading; abnormal ones cross a default rule.
func (p *simPatient) reading(abnormal bool) map[string]any {
	return p.readingOf(p.rng.IntN(5), abnormal)
}

// kinds are the demo's vital kinds, by the index readingOf takes.
var kinds = []string{"blood_pressure", "spo2", "heart_rate", "blood_glucose", "body_temperature"}

// readingOf makes a plausible reading of kinds[kind].
func (p *simPatient) readingOf(kind int, abnormal bool) map[string]any {
	r := map[string]any{"observed_at": time.Now().UTC().Format(time.RFC3339Nano), "source_id": fmt.Sprintf("sim-%s:%d", short(p.id.String()), p.seq)}
	n := func(mean, sd float64) float64 { return float64(int((mean+p.rng.NormFloat64()*sd)*10)) / 10 }
	switch {
	case kind == 0 && abnormal:
		r["kind"], r["systolic"], r["diastolic"], r["unit"] = "blood_pressure", n(188, 6), n(118, 5), "mm[Hg]"
	case kind == 0:
		r["kind"], r["systolic"], r["diastolic"], r["unit"] = "blood_pressure", n(128, 8), n(80, 5), "mmHg"
	case kind == 1 && abnormal:
		r["kind"], r["value"], r["unit"] = "spo2", n(85, 1.5), "%"
	case kind == 1:
		r["kind"], r["value"], r["unit"] = "spo2", min(100, n(97, 1)), "%"
	case kind == 2 && abnormal:
		r["kind"], r["value"], r["unit"] = "heart_rate", n(142, 6), "/min"
	case kind == 2:
		r["kind"], r["value"], r["unit"] = "heart_rate", n(74, 8), "bpm"
	case kind == 3 && abnormal:
		r["kind"], r["value"], r["unit"] = "blood_glucose", n(2.8, 0.2), "mmol/L"
	case kind == 3:
		r["kind"], r["value"], r["unit"] = "blood_glucose", n(115, 15), "mg/dL"
	case abnormal:
		r["kind"], r["value"], r["unit"] = "body_temperature", n(102.2, 0.4), "[degF]"
	default:
		r["kind"], r["value"], r["unit"] = "body_temperature", n(36.8, 0.3), "Cel"
	}
	return r
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

func postJSON(ctx context.Context, client *http.Client, url, token string, body any) (ingestResponse, error) {
	var res ingestResponse
	b, err := json.Marshal(body)
	if err != nil {
		return res, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return res, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return res, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	return res, json.Unmarshal(data, &res)
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
	fmt.Fprintf(p.w, "%7.1fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// demoStats counts what happened, for the live latency and the summary.
type demoStats struct {
	mu        sync.Mutex
	readings  atomic.Int64
	alerts    map[string]int
	pushes    map[string]int
	openedAt  map[string]time.Time
	latencies []time.Duration
}

func newDemoStats() *demoStats {
	return &demoStats{alerts: map[string]int{}, pushes: map[string]int{}, openedAt: map[string]time.Time{}}
}

func (s *demoStats) posted() { s.readings.Add(1) }

func (s *demoStats) alert(id, urgency string, sent time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts[urgency]++
	s.openedAt[id] = sent
}

// delivered records a push and returns a note of the latency from the
// reading's POST to the push, when known.
func (s *demoStats) delivered(alertID, device string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes[device]++
	if at, ok := s.openedAt[alertID]; ok {
		d := time.Since(at)
		s.latencies = append(s.latencies, d)
		return fmt.Sprintf("  %d ms after the reading was posted", d.Milliseconds())
	}
	return ""
}

func (s *demoStats) summary(out *printer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out.printf("")
	out.printf("summary: %d readings posted; alerts opened: critical %d, high %d, medium %d, low %d; pushes delivered: %v",
		s.readings.Load(), s.alerts["critical"], s.alerts["high"], s.alerts["medium"], s.alerts["low"], s.pushes)
	if len(s.latencies) > 0 {
		sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
		out.printf("reading → push latency: p50 %d ms, max %d ms", s.latencies[len(s.latencies)/2].Milliseconds(),
			s.latencies[len(s.latencies)-1].Milliseconds())
	}
}

// short abbreviates an id for display: the last 8 hex digits, which are the
// random part of a UUIDv7 (its first digits are a timestamp).
func short(id string) string {
	if len(id) >= 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// demoPhones are the fake provider services and the clinician's devices on
// them.
type demoPhones struct {
	fcm     *notifytest.FCM
	apns    *notifytest.APNs
	browser *notifytest.WebPush
	sub     notifytest.Subscription
	android string // FCM registration token
	iphone  string // APNs device token
}

func (p *demoPhones) close() {
	p.fcm.Close()
	p.apns.Close()
	p.browser.Close()
}

// demoPushServices starts the three fake providers, builds a real sender for
// each (pointed at its fake), and prints every push as it arrives with the
// headers that carry its urgency.
func demoPushServices(ctx context.Context, out *printer, stats *demoStats) (notify.Senders, *demoPhones, error) {
	p := &demoPhones{fcm: notifytest.NewFCM(), apns: notifytest.NewAPNs(nil), browser: notifytest.NewWebPush()}
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
	p.fcm.OnReceive(func(r notifytest.FCMRequest) {
		m := r.Message
		var a notifytest.FCMAndroid
		if m.Android != nil {
			a = *m.Android
		}
		channel := ""
		if a.Notification != nil {
			channel = a.Notification.ChannelID
		}
		lat := stats.delivered(m.Data["alert_id"], "android")
		out.printf("PUSH   → Android (FCM v1)               %-8s %-7s alert %s  [android priority %s, channel %s, ttl %s]%s",
			m.Data["urgency"], m.Data["type"], short(m.Data["alert_id"]), strings.ToLower(a.Priority), channel, a.TTL, lat)
	})
	p.apns.OnReceive(func(r notifytest.APNsRequest) {
		var pl struct {
			payload
			Aps struct {
				Level string `json:"interruption-level"`
			} `json:"aps"`
		}
		_ = json.Unmarshal(r.Payload, &pl)
		lat := stats.delivered(pl.Data["alert_id"], "iphone")
		out.printf("PUSH   → iPhone (APNs, HTTP/2, ES256)   %-8s %-7s alert %s  [apns-priority %s, interruption-level %s, push-type %s]%s",
			pl.Urgency, pl.Type, short(pl.Data["alert_id"]), r.Header.Get("apns-priority"), pl.Aps.Level, r.Header.Get("apns-push-type"), lat)
	})
	p.browser.OnReceive(func(r notifytest.WebPushRequest) {
		var pl payload
		_ = json.Unmarshal(r.Payload, &pl)
		lat := stats.delivered(pl.Data["alert_id"], "browser")
		out.printf("PUSH   → browser (Web Push, decrypted)  %-8s %-7s alert %s  [Urgency: %s, TTL %ss, Topic %s]%s",
			pl.Urgency, pl.Type, short(pl.Data["alert_id"]), r.Header.Get("Urgency"), r.Header.Get("TTL"), r.Header.Get("Topic"), lat)
	})
	return notify.Senders{notify.WebPush: wp, notify.FCM: fs, notify.APNs: as}, p, nil
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
