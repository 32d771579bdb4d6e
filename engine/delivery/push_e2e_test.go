package delivery_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
)

// TestCriticalReadingPushesToAndroidIPhoneAndBrowser is the end-to-end path
// over HTTP: the clinician registers an Android phone, an iPhone and a
// browser; the patient's cuff posts a blood pressure in the crisis range;
// each fake provider receives its own wire format (FCM HTTP v1 JSON; APNs
// over HTTP/2 with an ES256 provider token; RFC 8291 encrypted Web Push with
// VAPID), mapped for a critical alert — and nothing in any of them is PHI.
func TestCriticalReadingPushesToAndroidIPhoneAndBrowser(t *testing.T) {
	t.Parallel()
	w := pushtest.New(t, pushtest.Opts{RunWorkers: true})
	ctx := context.Background()
	// Start from the API alone: no device registered by the helpers.
	if _, err := w.Pool.Exec(ctx, `DELETE FROM devices`); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: w.Eng, Gatherer: w.Reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	token := func(user uuid.UUID) string {
		tok, err := w.Eng.CreateToken(ctx, engine.System("test"), user)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	doc, cuff := token(w.Clinician.UserID), token(w.Device.UserID)
	call := func(tok, method, path string, body any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, hs.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	for _, d := range []map[string]any{
		{"platform": "fcm", "token": w.FCMToken},
		{"platform": "apns", "token": w.APNsToken, "environment": "production"},
		{"platform": "webpush", "subscription": map[string]any{"endpoint": w.Sub.Endpoint, "keys": map[string]string{"p256dh": w.Sub.P256dh, "auth": w.Sub.Auth}}},
	} {
		if status, body := call(doc, "POST", "/v1/me/devices", d); status != http.StatusCreated {
			t.Fatalf("register %s: %d %s", d["platform"], status, body)
		}
	}

	status, body := call(cuff, "POST", "/v1/patients/"+w.Patient.ID.String()+"/readings", map[string]any{
		"kind": "blood_pressure", "systolic": 204, "diastolic": 131, "unit": "mm[Hg]",
		"observed_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "source_id": "cuff-77:1234"})
	if status != http.StatusCreated {
		t.Fatalf("post reading: %d %s", status, body)
	}
	var res struct {
		Alerts []struct{ ID, Urgency, Title string } `json:"alerts"`
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.Alerts) != 1 || res.Alerts[0].Urgency != "critical" {
		t.Fatalf("ingest response %s", body)
	}
	alertID := res.Alerts[0].ID
	accepted := time.Now()

	wctx := enginetest.WaitCtx(t)
	fcmGot, err := w.FCM.Wait(wctx, 1)
	if err != nil {
		t.Fatalf("Android: no push: %v (rejected %+v)", err, w.FCM.Rejected())
	}
	apnsGot, err := w.APNs.Wait(wctx, 1)
	if err != nil {
		t.Fatalf("iPhone: no push: %v (rejected %+v)", err, w.APNs.Rejected())
	}
	wpGot, err := w.Push.Wait(wctx, 1)
	if err != nil {
		t.Fatalf("browser: no push: %v (rejected %+v)", err, w.Push.Rejected())
	}
	t.Logf("reading accepted → last push received: %s", time.Since(accepted).Round(time.Millisecond))
	for name, rej := range map[string]int{"FCM": len(w.FCM.Rejected()), "APNs": len(w.APNs.Rejected()), "Web Push": len(w.Push.Rejected())} {
		if rej > 0 {
			t.Errorf("fake %s refused %d requests as malformed", name, rej)
		}
	}

	// FCM HTTP v1: POST /v1/projects/tend-test/messages:send {"message": …}.
	f := fcmGot[0]
	m := f.Message
	if f.Project != "tend-test" || m.Token != w.FCMToken {
		t.Errorf("FCM project %q token %q", f.Project, m.Token)
	}
	if m.Notification == nil || m.Notification.Title != "New critical alert" || m.Notification.Body != "Open Tend to review it." {
		t.Errorf("FCM notification = %+v, want the generic words", m.Notification)
	}
	if a := m.Android; a == nil || !strings.EqualFold(a.Priority, "high") || a.TTL != "3600s" || a.CollapseKey != alertID ||
		a.Notification == nil || a.Notification.ChannelID != "tend_critical" {
		t.Errorf("FCM android block = %s, want priority high, ttl 3600s, collapse_key = alert id, channel tend_critical", mustJSON(m.Android))
	}
	if m.Data["alert_id"] != alertID || m.Data["type"] != "alert" || m.Data["urgency"] != "critical" {
		t.Errorf("FCM data = %v", m.Data)
	}
	if a := m.APNS; a == nil || a.Headers["apns-priority"] != "10" || a.Headers["apns-collapse-id"] != alertID {
		t.Errorf("FCM apns block = %s", mustJSON(m.APNS))
	}
	if wp := m.Webpush; wp == nil || wp.Headers["Urgency"] != "high" {
		t.Errorf("FCM webpush block = %s", mustJSON(m.Webpush))
	}

	// APNs: HTTP/2, ES256 provider token (checked by the fake), headers.
	a := apnsGot[0]
	if a.Token != w.APNsToken {
		t.Errorf("APNs device token %q", a.Token)
	}
	for h, want := range map[string]string{
		"apns-priority": "10", "apns-push-type": "alert", "apns-collapse-id": alertID, "apns-topic": w.APNs.Topic,
	} {
		if got := a.Header.Get(h); got != want {
			t.Errorf("APNs %s = %q, want %q", h, got, want)
		}
	}
	if _, err := uuid.Parse(a.Header.Get("apns-id")); err != nil {
		t.Errorf("apns-id = %q, want the notification id", a.Header.Get("apns-id"))
	}
	if exp, err := strconv.ParseInt(a.Header.Get("apns-expiration"), 10, 64); err != nil ||
		exp < time.Now().Add(50*time.Minute).Unix() || exp > time.Now().Add(70*time.Minute).Unix() {
		t.Errorf("apns-expiration = %q, want about an hour from now", a.Header.Get("apns-expiration"))
	}
	var ap struct {
		Aps struct {
			Alert             struct{ Title, Body string } `json:"alert"`
			Sound             string                       `json:"sound"`
			InterruptionLevel string                       `json:"interruption-level"`
		} `json:"aps"`
		Type string            `json:"type"`
		Data map[string]string `json:"data"`
	}
	if err := json.Unmarshal(a.Payload, &ap); err != nil {
		t.Fatalf("APNs payload %s: %v", a.Payload, err)
	}
	if ap.Aps.Alert.Title != "New critical alert" || ap.Aps.Sound != "default" || ap.Aps.InterruptionLevel != "time-sensitive" ||
		ap.Type != "alert" || ap.Data["alert_id"] != alertID {
		t.Errorf("APNs payload = %s", a.Payload)
	}

	// Web Push: VAPID-signed, RFC 8291 body (decrypted by the fake).
	p := wpGot[0]
	au, _ := uuid.Parse(alertID)
	for h, want := range map[string]string{
		"Urgency": "high", "TTL": "3600", "Topic": base64.RawURLEncoding.EncodeToString(au[:]), "Content-Encoding": "aes128gcm",
	} {
		if got := p.Header.Get(h); got != want {
			t.Errorf("Web Push %s = %q, want %q", h, got, want)
		}
	}
	if p.Subject != "mailto:ops@example.org" {
		t.Errorf("VAPID sub = %q", p.Subject)
	}
	var wp struct {
		Type, Title, Body, Urgency string
		Data                       map[string]string
	}
	if err := json.Unmarshal(p.Payload, &wp); err != nil || wp.Type != "alert" || wp.Title != "New critical alert" ||
		wp.Urgency != "critical" || wp.Data["alert_id"] != alertID {
		t.Errorf("Web Push payload = %s (%v)", p.Payload, err)
	}

	// No PHI anywhere in what left the building.
	phi := []string{"Sam Lee", "Sam", "Lee", "204", "131", "mm[Hg]", "mmHg", "blood_pressure", "blood pressure", "systolic",
		"diastolic", "bp-crisis", "crisis", "hypertension", "America/Chicago", "cuff-77", w.Patient.ID.String(), res.Alerts[0].Title}
	enginetest.ScanPHI(t, "FCM request", string(f.Raw), phi)
	enginetest.ScanPHI(t, "APNs payload", string(a.Payload), phi)
	enginetest.ScanPHI(t, "APNs headers", fmt.Sprint(a.Header), phi)
	enginetest.ScanPHI(t, "Web Push payload", string(p.Payload), phi)
	enginetest.ScanPHI(t, "Web Push headers", fmt.Sprint(p.Header), phi)

	enginetest.WaitFor(t, func() bool { return w.Count(t, `SELECT count(*) FROM deliveries WHERE outcome = 'sent'`) == 3 })
	if n := w.Count(t, `SELECT count(*) FROM devices WHERE enabled AND last_success_at IS NOT NULL`); n != 3 {
		t.Errorf("%d devices with a last success, want 3", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM alerts WHERE undelivered`); n != 0 {
		t.Errorf("%d alerts flagged undelivered after three successful pushes", n)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
