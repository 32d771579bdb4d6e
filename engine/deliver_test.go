package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/apns"
	"github.com/tendhealth/tend/notify/fcm"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
	"github.com/tendhealth/tend/rpm"
)

// pushWorld is a world whose clinician also has an Android phone (FCM) and
// an iPhone (APNs), each on its own fake provider, and an engine of its own
// with all three senders.
type pushWorld struct {
	*world
	fcm       *notifytest.FCM
	apns      *notifytest.APNs
	fcmToken  string
	apnsToken string
	devices   map[notify.Platform]uuid.UUID
	reg       *prometheus.Registry
	cfg       engine.Config
}

type pushOpts struct {
	runWorkers bool
	now        func() time.Time
	// without lists platforms whose provider is not configured.
	without []notify.Platform
	// tune adjusts the engine's configuration.
	tune func(*engine.Config)
}

func newPushWorld(t testing.TB, o pushOpts) *pushWorld {
	t.Helper()
	w := &pushWorld{world: newWorld(t, false), fcm: notifytest.NewFCM(), apns: notifytest.NewAPNs(nil),
		devices: map[notify.Platform]uuid.UUID{}, reg: prometheus.NewRegistry()}
	t.Cleanup(w.fcm.Close)
	t.Cleanup(w.apns.Close)
	ctx := context.Background()
	// Plain-HTTP fakes speak HTTP/1.1: keep enough idle connections for
	// the workers (a real provider's HTTP/2 multiplexes one).
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}
	fs, err := fcm.New(ctx, fcm.Config{Endpoint: w.fcm.URL, ProjectID: "tend-test", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	as, err := apns.New(apns.Config{Key: w.apns.KeyPEM, KeyID: w.apns.KeyID, TeamID: w.apns.TeamID, Topic: w.apns.Topic,
		Endpoint: w.apns.URL, HTTPClient: w.apns.Client()})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	w.push.RequireVAPIDKey(pub)
	wp, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@example.org", HTTPClient: &http.Client{
		Transport:     hc.Transport,
		Timeout:       webpush.DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}})
	if err != nil {
		t.Fatal(err)
	}
	senders := notify.Senders{notify.WebPush: wp, notify.FCM: fs, notify.APNs: as}
	for _, p := range o.without {
		delete(senders, p)
	}
	cfg := engine.Config{Pool: w.pool, Senders: senders, RunWorkers: o.runWorkers, Now: o.now, Registerer: w.reg,
		WebPushAllowedHosts: []string{"127.0.0.1"}, APNsTopic: w.apns.Topic, FetchCooldown: 5 * time.Millisecond}
	if o.tune != nil {
		o.tune(&cfg)
	}
	w.cfg = cfg
	eng := w.startEngine(t, cfg)
	w.eng = eng
	w.fcmToken = "fcm:" + randomHex(t, 40)
	w.apnsToken = randomHex(t, 32)
	for _, nd := range []engine.NewDevice{
		{Platform: notify.FCM, Token: w.fcmToken},
		{Platform: notify.APNs, Token: w.apnsToken, Environment: "sandbox"},
	} {
		d, _, err := eng.RegisterDevice(ctx, w.clinician, nd)
		if err != nil {
			t.Fatal(err)
		}
		w.devices[nd.Platform] = d.ID
	}
	ds, err := eng.ListDevices(ctx, w.clinician)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Platform == notify.WebPush {
			w.devices[notify.WebPush] = d.ID
		}
	}
	return w
}

// startEngine starts another engine (another process, in effect) on w's
// database.
func (w *pushWorld) startEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	return startEngine(t, cfg)
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ingestCritical posts a blood pressure in the crisis range and returns the
// alert it opened.
func (w *pushWorld) ingestCritical(t *testing.T) uuid.UUID {
	t.Helper()
	res, err := w.eng.Ingest(context.Background(), w.device, engine.IngestRequest{PatientID: w.patient.ID,
		Readings: []rpm.Reading{bp(204, 131, time.Now().Add(-time.Minute), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Alerts) != 1 || res.Alerts[0].Urgency != rpm.Critical {
		t.Fatalf("alerts = %+v, want one critical", res.Alerts)
	}
	return res.Alerts[0].ID
}

// deliveryJob returns the notify.deliver job of the alert's notification to
// device.
func (w *pushWorld) deliveryJob(t *testing.T, alertID, device uuid.UUID) *rivertype.JobRow {
	t.Helper()
	var id int64
	err := w.pool.QueryRow(context.Background(), `SELECT j.id FROM river_job j
		WHERE j.kind = 'notify.deliver' AND j.args->>'alert_id' = $1 AND j.args->>'device_id' = $2`,
		alertID.String(), device.String()).Scan(&id)
	if err != nil {
		t.Fatalf("delivery job for device %s: %v", device, err)
	}
	job, err := w.eng.River().JobGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func (w *pushWorld) outcomes(t *testing.T, device uuid.UUID) []string {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), `SELECT outcome || ':' || coalesce(provider_status, 0) || ':' || coalesce(error_code, '')
		FROM deliveries WHERE device_id = $1 ORDER BY id`, device)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func isCancel(err error) bool {
	var c *rivertype.JobCancelError
	return errors.As(err, &c)
}

// TestDeliveryReRunRecordsNoPhantomSuccess runs the worker several times on
// the same job, as River does after a crash: a re-run after the success was
// recorded sends nothing; a re-run after a crash between send and record
// sends again with the same ids (one banner on the phone) and still records
// one success.
func TestDeliveryReRunRecordsNoPhantomSuccess(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t, pushOpts{})
	ctx := context.Background()
	alertID := w.ingestCritical(t)
	job := w.deliveryJob(t, alertID, w.devices[notify.APNs])

	for range 2 {
		if err := w.eng.WorkDelivery(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.apns.Received()); n != 1 {
		t.Fatalf("APNs received %d pushes after two runs, want 1 (the second finds the recorded success)", n)
	}
	// A crash between the send and its record: the push went out, no
	// success is on file.
	if _, err := w.pool.Exec(ctx, `DELETE FROM deliveries WHERE device_id = $1`, w.devices[notify.APNs]); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.WorkDelivery(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.WorkDelivery(ctx, job); err != nil {
		t.Fatal(err)
	}
	got := w.apns.Received()
	if len(got) != 2 {
		t.Fatalf("APNs received %d pushes, want 2 (one re-send after the crash)", len(got))
	}
	for _, h := range []string{"apns-id", "apns-collapse-id"} {
		if a, b := got[0].Header.Get(h), got[1].Header.Get(h); a == "" || a != b {
			t.Errorf("%s differs between the send and the re-send: %q, %q", h, a, b)
		}
	}
	if c := got[0].Header.Get("apns-collapse-id"); c != alertID.String() {
		t.Errorf("apns-collapse-id = %q, want the alert id", c)
	}
	if o := w.outcomes(t, w.devices[notify.APNs]); len(o) != 1 || !strings.HasPrefix(o[0], "sent:200") {
		t.Errorf("recorded outcomes = %v, want one success", o)
	}

	// The same for a success recorded twice concurrently (two workers on a
	// rescued job): the unique index keeps one.
	fjob := w.deliveryJob(t, alertID, w.devices[notify.FCM])
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- w.eng.WorkDelivery(ctx, fjob) }()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if o := w.outcomes(t, w.devices[notify.FCM]); len(o) != 1 || !strings.HasPrefix(o[0], "sent:200") {
		t.Errorf("FCM outcomes = %v, want one success", o)
	}
	fr := w.fcm.Received()
	for _, r := range fr[1:] {
		if r.Message.Data["id"] != fr[0].Message.Data["id"] || r.Message.Android.CollapseKey != fr[0].Message.Android.CollapseKey {
			t.Errorf("re-sent FCM message has other ids: %s vs %s", r.Raw, fr[0].Raw)
		}
	}
}

// TestRetryAfterIsHonouredAndBounded: a provider answering 429 with
// Retry-After forever gets the job snoozed for that long each time (a snooze
// does not advance River's attempt), until the recorded attempts reach the
// bound: then the delivery is recorded failed and the job cancelled.
func TestRetryAfterIsHonouredAndBounded(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t, pushOpts{})
	ctx := context.Background()
	for range 50 {
		w.push.Script(w.sub.Endpoint, notifytest.Response{Status: 429, RetryAfter: "30"})
	}
	alertID := w.ingestCritical(t)
	job := w.deliveryJob(t, alertID, w.devices[notify.WebPush])
	var runs int
	for runs = 1; runs <= 100; runs++ {
		err := w.eng.WorkDelivery(ctx, job) // River hands a snoozed job back with the same attempt
		var snooze *river.JobSnoozeError
		if errors.As(err, &snooze) {
			if snooze.Duration != 30*time.Second {
				t.Fatalf("run %d snoozed %s, want the provider's Retry-After of 30s", runs, snooze.Duration)
			}
			continue
		}
		if !isCancel(err) {
			t.Fatalf("run %d: err = %v, want a snooze or, at the bound, a cancel", runs, err)
		}
		break
	}
	if runs != 12 {
		t.Errorf("gave up after %d requests, want 12", runs)
	}
	if n := len(w.push.Received()); n != runs {
		t.Errorf("push service got %d requests, want %d", n, runs)
	}
	o := w.outcomes(t, w.devices[notify.WebPush])
	if len(o) != 12 || o[0] != "retrying:429:transient" || o[11] != "failed:429:transient" {
		t.Errorf("outcomes = %v, want 11 × retrying:429 then failed:429", o)
	}
	var attempts []int
	rows, _ := w.pool.Query(ctx, `SELECT attempt FROM deliveries WHERE device_id = $1 ORDER BY id`, w.devices[notify.WebPush])
	for rows.Next() {
		var a int
		_ = rows.Scan(&a)
		attempts = append(attempts, a)
	}
	rows.Close()
	if len(attempts) != 12 || attempts[0] != 1 || attempts[11] != 12 {
		t.Errorf("recorded attempt numbers = %v, want 1…12", attempts)
	}
}

// TestTransientFailuresRetryWithBackoff: a 503 without Retry-After returns
// the error (River retries with the worker's backoff); with Retry-After it
// snoozes; a Retry-After past the message's TTL gives up (the provider would
// drop the message anyway). A later success is recorded once.
func TestTransientFailuresRetryWithBackoff(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t, pushOpts{})
	ctx := context.Background()
	w.fcm.Script(w.fcmToken, notifytest.FCMError(503, "UNAVAILABLE"))
	w.apns.Script(w.apnsToken, notifytest.Response{Status: 503, RetryAfter: "120", Body: `{"reason":"ServiceUnavailable"}`})
	w.push.Script(w.sub.Endpoint, notifytest.Response{Status: 429, RetryAfter: "7200"}) // 2 h > a critical push's 1 h TTL
	alertID := w.ingestCritical(t)

	fjob := w.deliveryJob(t, alertID, w.devices[notify.FCM])
	err := w.eng.WorkDelivery(ctx, fjob)
	var perr *notify.Error
	if !errors.As(err, &perr) || perr.Kind != notify.Transient || isCancel(err) {
		t.Fatalf("FCM 503: err = %v, want the transient error (retried with backoff)", err)
	}
	fjob.Attempt++
	if err := w.eng.WorkDelivery(ctx, fjob); err != nil {
		t.Fatalf("FCM retry: %v", err)
	}
	if o := w.outcomes(t, w.devices[notify.FCM]); strings.Join(o, ",") != "retrying:503:UNAVAILABLE,sent:200:" {
		t.Errorf("FCM outcomes = %v", o)
	}

	ajob := w.deliveryJob(t, alertID, w.devices[notify.APNs])
	var snooze *river.JobSnoozeError
	if err := w.eng.WorkDelivery(ctx, ajob); !errors.As(err, &snooze) || snooze.Duration != 2*time.Minute {
		t.Fatalf("APNs 503 + Retry-After 120: err = %v, want a 2m snooze", err)
	}

	wjob := w.deliveryJob(t, alertID, w.devices[notify.WebPush])
	if err := w.eng.WorkDelivery(ctx, wjob); !isCancel(err) {
		t.Fatalf("Web Push 429 + Retry-After 2h on a critical push: err = %v, want a cancel", err)
	}
	if o := w.outcomes(t, w.devices[notify.WebPush]); len(o) != 1 || o[0] != "failed:429:expired" {
		t.Errorf("Web Push outcomes = %v, want failed:429:expired", o)
	}

	for attempt, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 5: 32 * time.Second, 9: 512 * time.Second, 10: 10 * time.Minute, 30: 10 * time.Minute} {
		if got := engine.RetryDelay(attempt); got != want {
			t.Errorf("backoff after attempt %d = %s, want %s", attempt, got, want)
		}
	}
}

// TestUnregisteredPermanentAndNotConfigured: an unregistered token disables
// its device without retry; a permanent failure cancels the job and leaves
// the device alone; a platform whose provider is off is recorded
// undeliverable. When every device failed, the critical alert is flagged
// undelivered.
func TestUnregisteredPermanentAndNotConfigured(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t, pushOpts{without: []notify.Platform{notify.WebPush}})
	ctx := context.Background()
	w.fcm.Script(w.fcmToken, notifytest.FCMError(404, "UNREGISTERED"))
	w.apns.Script(w.apnsToken, notifytest.APNsError(400, "DeviceTokenNotForTopic"))
	alertID := w.ingestCritical(t)

	if err := w.eng.WorkDelivery(ctx, w.deliveryJob(t, alertID, w.devices[notify.FCM])); err != nil {
		t.Fatalf("FCM UNREGISTERED: err = %v, want nil (done, no retry)", err)
	}
	if err := w.eng.WorkDelivery(ctx, w.deliveryJob(t, alertID, w.devices[notify.APNs])); !isCancel(err) {
		t.Fatalf("APNs DeviceTokenNotForTopic: err = %v, want a cancel", err)
	}
	if n := w.count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, alertID); n != 0 {
		t.Fatal("flagged undelivered while a delivery was still pending")
	}
	if err := w.eng.WorkDelivery(ctx, w.deliveryJob(t, alertID, w.devices[notify.WebPush])); !isCancel(err) {
		t.Fatalf("Web Push without a sender: err = %v, want a cancel", err)
	}
	for p, want := range map[notify.Platform]string{
		notify.FCM:     "unregistered:404:UNREGISTERED",
		notify.APNs:    "failed:400:DeviceTokenNotForTopic",
		notify.WebPush: "undeliverable:0:not_configured",
	} {
		if o := w.outcomes(t, w.devices[p]); len(o) != 1 || o[0] != want {
			t.Errorf("%s outcomes = %v, want [%s]", p, o, want)
		}
	}
	enabled := map[uuid.UUID]bool{}
	ds, _ := w.eng.ListDevices(ctx, w.clinician)
	for _, d := range ds {
		enabled[d.ID] = d.Enabled
	}
	if enabled[w.devices[notify.FCM]] || !enabled[w.devices[notify.APNs]] || !enabled[w.devices[notify.WebPush]] {
		t.Errorf("enabled = %v: only the unregistered FCM token should be disabled", enabled)
	}
	if n := w.count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, alertID); n != 1 {
		t.Error("critical alert whose every delivery failed is not flagged undelivered")
	}
	if got := gather(t, w.reg); got["tend_alerts_undelivered_total"] != 1 || got["tend_alerts_undelivered"] != 1 {
		t.Errorf("metrics = total %v, gauge %v; want 1 and 1", got["tend_alerts_undelivered_total"], got["tend_alerts_undelivered"])
	}
	items, _, err := w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{})
	if err != nil || len(items) != 1 || !items[0].Undelivered {
		t.Errorf("triage queue = %+v, %v; want the alert flagged undelivered", items, err)
	}
	// The disabled device gets no job for the next alert.
	if _, err := w.eng.Ingest(ctx, w.device, engine.IngestRequest{PatientID: w.patient.ID,
		Readings: []rpm.Reading{{Kind: rpm.SpO2, Value: ptr(84), Unit: "%", ObservedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 5 {
		t.Errorf("%d delivery jobs after the second alert, want 5 (3 + 2: none for the disabled device)", n)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver' AND args->>'device_id' = $1`, w.devices[notify.FCM].String()); n != 1 {
		t.Errorf("%d jobs for the disabled device, want only the first", n)
	}
}

// TestOneSuccessMeansDelivered: a critical alert that reached one device is
// not undelivered, whatever happened on the others.
func TestOneSuccessMeansDelivered(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t, pushOpts{})
	ctx := context.Background()
	w.fcm.Script(w.fcmToken, notifytest.FCMError(400, "INVALID_ARGUMENT"))
	w.push.Script(w.sub.Endpoint, notifytest.Response{Status: 410})
	alertID := w.ingestCritical(t)
	for _, p := range []notify.Platform{notify.FCM, notify.APNs, notify.WebPush} {
		_ = w.eng.WorkDelivery(ctx, w.deliveryJob(t, alertID, w.devices[p]))
	}
	if n := w.count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'sent'`); n != 1 {
		t.Fatalf("%d successes, want 1 (APNs)", n)
	}
	if n := w.count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, alertID); n != 0 {
		t.Error("alert flagged undelivered although the iPhone got it")
	}
}

// TestCriticalAlertWithNoDeviceIsUndelivered: with no device registered the
// alert is flagged at once, and the flag shows in the triage queue and in
// the metrics.
func TestCriticalAlertWithNoDeviceIsUndelivered(t *testing.T) {
	t.Parallel()
	w := newPushWorld(t, pushOpts{})
	ctx := context.Background()
	for _, id := range w.devices {
		if err := w.eng.DeleteDevice(ctx, w.clinician, id); err != nil {
			t.Fatal(err)
		}
	}
	alertID := w.ingestCritical(t)
	items, _, err := w.eng.ListAlerts(ctx, w.clinician, engine.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].ID != alertID || !items[0].Undelivered {
		t.Errorf("triage queue = %+v, want the alert flagged undelivered", items)
	}
	if n := w.count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 0 {
		t.Errorf("%d delivery jobs without devices", n)
	}
	got := gather(t, w.reg)
	if got["tend_alerts_undelivered_total"] != 1 || got["tend_alerts_undelivered"] != 1 {
		t.Errorf("metrics = total %v, gauge %v; want 1 and 1", got["tend_alerts_undelivered_total"], got["tend_alerts_undelivered"])
	}

	// The same over HTTP: the triage queue and /metrics.
	srv, err := api.New(api.Config{Engine: w.eng, Gatherer: w.reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	tok, err := w.eng.CreateToken(ctx, engine.System("test"), w.clinician.UserID)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, token string) string {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	var queue struct {
		Items []struct {
			ID          uuid.UUID `json:"id"`
			Undelivered bool      `json:"undelivered"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(get("/v1/alerts", tok)), &queue); err != nil || len(queue.Items) != 1 || !queue.Items[0].Undelivered {
		t.Errorf("GET /v1/alerts = %+v (%v), want the alert with undelivered: true", queue, err)
	}
	metrics := get("/metrics", "")
	for _, line := range []string{"tend_alerts_undelivered 1", "tend_alerts_undelivered_total 1"} {
		if !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// gather returns the value of every unlabelled metric in reg.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
