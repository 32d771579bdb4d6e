package delivery_test

import (
	"context"
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

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/rpm"
)

// TestDeliveryReRunRecordsNoPhantomSuccess runs the worker several times on
// the same job, as River does after a crash: a re-run after the success was
// recorded sends nothing; a re-run after a crash between send and record
// sends again with the same ids (one banner on the phone) and still records
// one success.
func TestDeliveryReRunRecordsNoPhantomSuccess(t *testing.T) {
	t.Parallel()
	w := pushtest.New(t, pushtest.Opts{})
	ctx := context.Background()
	alertID := w.IngestCritical(t)
	job := w.DeliveryJob(t, alertID, w.Devices[notify.APNs])

	for range 2 {
		if err := w.Eng.Shared().Delivery.Work(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.APNs.Received()); n != 1 {
		t.Fatalf("APNs received %d pushes after two runs, want 1 (the second finds the recorded success)", n)
	}
	// A crash between the send and its record: the push went out, no
	// success is on file.
	if _, err := w.Pool.Exec(ctx, `DELETE FROM deliveries WHERE device_id = $1`, w.Devices[notify.APNs]); err != nil {
		t.Fatal(err)
	}
	if err := w.Eng.Shared().Delivery.Work(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := w.Eng.Shared().Delivery.Work(ctx, job); err != nil {
		t.Fatal(err)
	}
	got := w.APNs.Received()
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
	if o := w.Outcomes(t, w.Devices[notify.APNs]); len(o) != 1 || !strings.HasPrefix(o[0], "sent:200") {
		t.Errorf("recorded outcomes = %v, want one success", o)
	}

	// The same for a success recorded twice concurrently (two workers on a
	// rescued job): the unique index keeps one.
	fjob := w.DeliveryJob(t, alertID, w.Devices[notify.FCM])
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- w.Eng.Shared().Delivery.Work(ctx, fjob) }()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if o := w.Outcomes(t, w.Devices[notify.FCM]); len(o) != 1 || !strings.HasPrefix(o[0], "sent:200") {
		t.Errorf("FCM outcomes = %v, want one success", o)
	}
	fr := w.FCM.Received()
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
	w := pushtest.New(t, pushtest.Opts{})
	ctx := context.Background()
	for range 50 {
		w.Push.Script(w.Sub.Endpoint, notifytest.Response{Status: 429, RetryAfter: "30"})
	}
	alertID := w.IngestCritical(t)
	job := w.DeliveryJob(t, alertID, w.Devices[notify.WebPush])
	var runs int
	for runs = 1; runs <= 100; runs++ {
		err := w.Eng.Shared().Delivery.Work(ctx, job) // River hands a snoozed job back with the same attempt
		var snooze *river.JobSnoozeError
		if errors.As(err, &snooze) {
			if snooze.Duration != 30*time.Second {
				t.Fatalf("run %d snoozed %s, want the provider's Retry-After of 30s", runs, snooze.Duration)
			}
			continue
		}
		if !pushtest.IsCancel(err) {
			t.Fatalf("run %d: err = %v, want a snooze or, at the bound, a cancel", runs, err)
		}
		break
	}
	if runs != 12 {
		t.Errorf("gave up after %d requests, want 12", runs)
	}
	if n := len(w.Push.Received()); n != runs {
		t.Errorf("push service got %d requests, want %d", n, runs)
	}
	o := w.Outcomes(t, w.Devices[notify.WebPush])
	if len(o) != 12 || o[0] != "retrying:429:transient" || o[11] != "failed:429:transient" {
		t.Errorf("outcomes = %v, want 11 × retrying:429 then failed:429", o)
	}
	var attempts []int
	rows, _ := w.Pool.Query(ctx, `SELECT attempt FROM deliveries WHERE device_id = $1 ORDER BY id`, w.Devices[notify.WebPush])
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
	w := pushtest.New(t, pushtest.Opts{})
	ctx := context.Background()
	w.FCM.Script(w.FCMToken, notifytest.FCMError(503, "UNAVAILABLE"))
	w.APNs.Script(w.APNsToken, notifytest.Response{Status: 503, RetryAfter: "120", Body: `{"reason":"ServiceUnavailable"}`})
	w.Push.Script(w.Sub.Endpoint, notifytest.Response{Status: 429, RetryAfter: "7200"}) // 2 h > a critical push's 1 h TTL
	alertID := w.IngestCritical(t)

	fjob := w.DeliveryJob(t, alertID, w.Devices[notify.FCM])
	err := w.Eng.Shared().Delivery.Work(ctx, fjob)
	var perr *notify.Error
	if !errors.As(err, &perr) || perr.Kind != notify.Transient || pushtest.IsCancel(err) {
		t.Fatalf("FCM 503: err = %v, want the transient error (retried with backoff)", err)
	}
	fjob.Attempt++
	if err := w.Eng.Shared().Delivery.Work(ctx, fjob); err != nil {
		t.Fatalf("FCM retry: %v", err)
	}
	if o := w.Outcomes(t, w.Devices[notify.FCM]); strings.Join(o, ",") != "retrying:503:UNAVAILABLE,sent:200:" {
		t.Errorf("FCM outcomes = %v", o)
	}

	ajob := w.DeliveryJob(t, alertID, w.Devices[notify.APNs])
	var snooze *river.JobSnoozeError
	if err := w.Eng.Shared().Delivery.Work(ctx, ajob); !errors.As(err, &snooze) || snooze.Duration != 2*time.Minute {
		t.Fatalf("APNs 503 + Retry-After 120: err = %v, want a 2m snooze", err)
	}

	wjob := w.DeliveryJob(t, alertID, w.Devices[notify.WebPush])
	if err := w.Eng.Shared().Delivery.Work(ctx, wjob); !pushtest.IsCancel(err) {
		t.Fatalf("Web Push 429 + Retry-After 2h on a critical push: err = %v, want a cancel", err)
	}
	if o := w.Outcomes(t, w.Devices[notify.WebPush]); len(o) != 1 || o[0] != "failed:429:expired" {
		t.Errorf("Web Push outcomes = %v, want failed:429:expired", o)
	}

	for attempt, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 5: 32 * time.Second, 9: 512 * time.Second, 10: 10 * time.Minute, 30: 10 * time.Minute} {
		if got := delivery.RetryDelay(attempt); got != want {
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
	w := pushtest.New(t, pushtest.Opts{Without: []notify.Platform{notify.WebPush}})
	ctx := context.Background()
	w.FCM.Script(w.FCMToken, notifytest.FCMError(404, "UNREGISTERED"))
	w.APNs.Script(w.APNsToken, notifytest.APNsError(400, "DeviceTokenNotForTopic"))
	alertID := w.IngestCritical(t)

	if err := w.Eng.Shared().Delivery.Work(ctx, w.DeliveryJob(t, alertID, w.Devices[notify.FCM])); err != nil {
		t.Fatalf("FCM UNREGISTERED: err = %v, want nil (done, no retry)", err)
	}
	if err := w.Eng.Shared().Delivery.Work(ctx, w.DeliveryJob(t, alertID, w.Devices[notify.APNs])); !pushtest.IsCancel(err) {
		t.Fatalf("APNs DeviceTokenNotForTopic: err = %v, want a cancel", err)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, alertID); n != 0 {
		t.Fatal("flagged undelivered while a delivery was still pending")
	}
	if err := w.Eng.Shared().Delivery.Work(ctx, w.DeliveryJob(t, alertID, w.Devices[notify.WebPush])); !pushtest.IsCancel(err) {
		t.Fatalf("Web Push without a sender: err = %v, want a cancel", err)
	}
	for p, want := range map[notify.Platform]string{
		notify.FCM:     "unregistered:404:UNREGISTERED",
		notify.APNs:    "failed:400:DeviceTokenNotForTopic",
		notify.WebPush: "undeliverable:0:not_configured",
	} {
		if o := w.Outcomes(t, w.Devices[p]); len(o) != 1 || o[0] != want {
			t.Errorf("%s outcomes = %v, want [%s]", p, o, want)
		}
	}
	enabled := map[uuid.UUID]bool{}
	ds, _ := w.Eng.ListDevices(ctx, w.Clinician)
	for _, d := range ds {
		enabled[d.ID] = d.Enabled
	}
	if enabled[w.Devices[notify.FCM]] || !enabled[w.Devices[notify.APNs]] || !enabled[w.Devices[notify.WebPush]] {
		t.Errorf("enabled = %v: only the unregistered FCM token should be disabled", enabled)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, alertID); n != 1 {
		t.Error("critical alert whose every delivery failed is not flagged undelivered")
	}
	if got := gather(t, w.Reg); got["tend_alerts_undelivered_total"] != 1 || got["tend_alerts_undelivered"] != 1 {
		t.Errorf("metrics = total %v, gauge %v; want 1 and 1", got["tend_alerts_undelivered_total"], got["tend_alerts_undelivered"])
	}
	items, _, err := w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{})
	if err != nil || len(items) != 1 || !items[0].Undelivered {
		t.Errorf("triage queue = %+v, %v; want the alert flagged undelivered", items, err)
	}
	// The disabled device gets no job for the next alert.
	if _, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{{Kind: rpm.SpO2, Value: enginetest.Ptr(84), Unit: "%", ObservedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 5 {
		t.Errorf("%d delivery jobs after the second alert, want 5 (3 + 2: none for the disabled device)", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver' AND args->>'device_id' = $1`, w.Devices[notify.FCM].String()); n != 1 {
		t.Errorf("%d jobs for the disabled device, want only the first", n)
	}
}

// TestOneSuccessMeansDelivered: a critical alert that reached one device is
// not undelivered, whatever happened on the others.
func TestOneSuccessMeansDelivered(t *testing.T) {
	t.Parallel()
	w := pushtest.New(t, pushtest.Opts{})
	ctx := context.Background()
	w.FCM.Script(w.FCMToken, notifytest.FCMError(400, "INVALID_ARGUMENT"))
	w.Push.Script(w.Sub.Endpoint, notifytest.Response{Status: 410})
	alertID := w.IngestCritical(t)
	for _, p := range []notify.Platform{notify.FCM, notify.APNs, notify.WebPush} {
		_ = w.Eng.Shared().Delivery.Work(ctx, w.DeliveryJob(t, alertID, w.Devices[p]))
	}
	if n := w.Count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'sent'`); n != 1 {
		t.Fatalf("%d successes, want 1 (APNs)", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE id = $1 AND undelivered`, alertID); n != 0 {
		t.Error("alert flagged undelivered although the iPhone got it")
	}
}

// TestCriticalAlertWithNoDeviceIsUndelivered: with no device registered the
// alert is flagged at once, and the flag shows in the triage queue and in
// the metrics.
func TestCriticalAlertWithNoDeviceIsUndelivered(t *testing.T) {
	t.Parallel()
	w := pushtest.New(t, pushtest.Opts{})
	ctx := context.Background()
	for _, id := range w.Devices {
		if err := w.Eng.DeleteDevice(ctx, w.Clinician, id); err != nil {
			t.Fatal(err)
		}
	}
	alertID := w.IngestCritical(t)
	items, _, err := w.Eng.ListAlerts(ctx, w.Clinician, engine.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].ID != alertID || !items[0].Undelivered {
		t.Errorf("triage queue = %+v, want the alert flagged undelivered", items)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 0 {
		t.Errorf("%d delivery jobs without devices", n)
	}
	got := gather(t, w.Reg)
	if got["tend_alerts_undelivered_total"] != 1 || got["tend_alerts_undelivered"] != 1 {
		t.Errorf("metrics = total %v, gauge %v; want 1 and 1", got["tend_alerts_undelivered_total"], got["tend_alerts_undelivered"])
	}

	// The same over HTTP: the triage queue and /metrics.
	srv, err := api.New(api.Config{Engine: w.Eng, Gatherer: w.Reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	tok, err := w.Eng.CreateToken(ctx, engine.System("test"), w.Clinician.UserID)
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
