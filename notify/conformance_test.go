package notify_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/apns"
	"github.com/tendhealth/tend/notify/fcm"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
)

// wire is what a provider received, normalised across platforms.
type wire struct {
	// Priority is the Web Push Urgency header, the FCM android priority or
	// the APNs apns-priority.
	Priority string
	// Level is the APNs interruption-level (inside FCM's apns block too).
	Level string
	// TTL is the TTL header, android ttl, or apns-expiration minus the
	// request time.
	TTL time.Duration
	// Collapse is the Topic header, collapse_key or apns-collapse-id.
	Collapse    string
	Title, Body string
	// Data is everything the app receives besides title and body: ids,
	// id, type and urgency.
	Data map[string]string
	// Keys are the top-level keys of what was posted, sorted.
	Keys []string
}

// harness runs one sender against its fake provider.
type harness struct {
	sender notify.Sender
	// device returns a fresh device the fake knows.
	device func() notify.Device
	// script queues provider responses for d.
	script func(d notify.Device, rs ...notifytest.Response)
	// received is how many requests the fake accepted as well formed, and
	// last the wire of the latest.
	received func() int
	last     func(t *testing.T) wire
	rejected func() []notifytest.Rejection
	// failure gives the platform's scripted error response for a scenario.
	failure map[string]notifytest.Response
	// providerID checks a successful Result's ProviderID.
	providerID func(t *testing.T, m notify.Message, id string)
}

type harnessOpts struct{ criticalEntitled bool }

var platforms = []notify.Platform{notify.WebPush, notify.FCM, notify.APNs}

func newHarness(t *testing.T, p notify.Platform, o harnessOpts) *harness {
	t.Helper()
	switch p {
	case notify.WebPush:
		return webPushHarness(t)
	case notify.FCM:
		return fcmHarness(t, o)
	case notify.APNs:
		return apnsHarness(t, o)
	}
	t.Fatalf("unknown platform %s", p)
	return nil
}

func webPushHarness(t *testing.T) *harness {
	push := notifytest.NewWebPush()
	t.Cleanup(push.Close)
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	push.RequireVAPIDKey(pub)
	s, err := webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@tend.example"})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		sender:   s,
		device:   func() notify.Device { return push.NewSubscription().Device() },
		script:   func(d notify.Device, rs ...notifytest.Response) { push.Script(d.Endpoint, rs...) },
		received: func() int { return len(push.Received()) },
		rejected: push.Rejected,
		last: func(t *testing.T) wire {
			rs := push.Received()
			r := rs[len(rs)-1]
			var p struct {
				ID, Type, Title, Body, Urgency string
				Data                           map[string]string
			}
			decode(t, r.Payload, &p)
			ttl, _ := strconv.Atoi(r.Header.Get("TTL"))
			data := maps.Clone(p.Data)
			data["id"], data["type"], data["urgency"] = p.ID, p.Type, p.Urgency
			return wire{
				Priority: r.Header.Get("Urgency"), TTL: time.Duration(ttl) * time.Second,
				Collapse: r.Header.Get("Topic"), Title: p.Title, Body: p.Body, Data: data,
				Keys: keys(t, r.Payload),
			}
		},
		failure: map[string]notifytest.Response{
			"gone":         {Status: http.StatusGone},
			"not found":    {Status: http.StatusNotFound},
			"rate limited": {Status: http.StatusTooManyRequests, RetryAfter: "7"},
			"unavailable":  {Status: http.StatusServiceUnavailable, RetryAfter: "3"},
			"server error": {Status: http.StatusInternalServerError},
			"bad request":  {Status: http.StatusBadRequest},
			"auth":         {Status: http.StatusForbidden},
			"too large":    {Status: http.StatusRequestEntityTooLarge},
		},
		providerID: func(t *testing.T, _ notify.Message, id string) {
			if !strings.HasPrefix(id, push.URL+"/message/") {
				t.Errorf("ProviderID %q is not the Location", id)
			}
		},
	}
}

func fcmHarness(t *testing.T, o harnessOpts) *harness {
	fake := notifytest.NewFCM()
	t.Cleanup(fake.Close)
	s, err := fcm.New(t.Context(), fcm.Config{Endpoint: fake.URL, ProjectID: "tend-test", CriticalEntitled: o.criticalEntitled})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		sender: s,
		device: func() notify.Device {
			return notify.Device{Platform: notify.FCM, Token: "fcm:" + randomHex(t, 40)}
		},
		script:   func(d notify.Device, rs ...notifytest.Response) { fake.Script(d.Token, rs...) },
		received: func() int { return len(fake.Received()) },
		rejected: fake.Rejected,
		last: func(t *testing.T) wire {
			rs := fake.Received()
			r := rs[len(rs)-1]
			if r.Project != "tend-test" || r.Authorized {
				t.Errorf("project %q, authorized %v", r.Project, r.Authorized)
			}
			m := r.Message
			if m.Android == nil || m.Android.Notification == nil || m.APNS == nil || m.Notification == nil || m.Webpush == nil {
				t.Fatalf("message lacks a block: %s", r.Raw)
			}
			ttl, err := time.ParseDuration(m.Android.TTL)
			if err != nil {
				t.Errorf("android.ttl %q: %v", m.Android.TTL, err)
			}
			aps, _ := m.APNS.Payload["aps"].(map[string]any)
			level, _ := aps["interruption-level"].(string)
			return wire{
				Priority: m.Android.Priority, Level: level, TTL: ttl, Collapse: m.Android.CollapseKey,
				Title: m.Notification.Title, Body: m.Notification.Body, Data: m.Data, Keys: keys(t, r.Raw),
			}
		},
		failure: map[string]notifytest.Response{
			"gone":         notifytest.FCMError(http.StatusNotFound, "UNREGISTERED"),
			"rate limited": withRetryAfter(notifytest.FCMError(http.StatusTooManyRequests, "QUOTA_EXCEEDED"), "7"),
			"unavailable":  withRetryAfter(notifytest.FCMError(http.StatusServiceUnavailable, "UNAVAILABLE"), "3"),
			"server error": notifytest.FCMError(http.StatusInternalServerError, "INTERNAL"),
			"bad request":  notifytest.FCMError(http.StatusBadRequest, "INVALID_ARGUMENT"),
			"auth":         notifytest.FCMError(http.StatusUnauthorized, "THIRD_PARTY_AUTH_ERROR"),
			"wrong sender": notifytest.FCMError(http.StatusForbidden, "SENDER_ID_MISMATCH"),
			"too large":    notifytest.FCMError(http.StatusRequestEntityTooLarge, ""), // from a proxy: FCM says 400
		},
		providerID: func(t *testing.T, _ notify.Message, id string) {
			if !strings.HasPrefix(id, "projects/tend-test/messages/") {
				t.Errorf("ProviderID %q is not the message name", id)
			}
		},
	}
}

func apnsHarness(t *testing.T, o harnessOpts) *harness {
	fake := notifytest.NewAPNs(nil)
	t.Cleanup(fake.Close)
	s, err := apns.New(apns.Config{
		Key: fake.KeyPEM, KeyID: fake.KeyID, TeamID: fake.TeamID, Topic: fake.Topic,
		Endpoint: fake.URL, HTTPClient: fake.Client(), CriticalEntitled: o.criticalEntitled,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{
		sender: s,
		device: func() notify.Device {
			return notify.Device{Platform: notify.APNs, Token: randomHex(t, 32)}
		},
		script:   func(d notify.Device, rs ...notifytest.Response) { fake.Script(d.Token, rs...) },
		received: func() int { return len(fake.Received()) },
		rejected: fake.Rejected,
		last: func(t *testing.T) wire {
			rs := fake.Received()
			r := rs[len(rs)-1]
			if r.Header.Get("apns-push-type") != "alert" || r.Header.Get("apns-topic") != fake.Topic {
				t.Errorf("headers %v", r.Header)
			}
			var p struct {
				Aps struct {
					Alert             struct{ Title, Body string }
					Sound             any
					InterruptionLevel string `json:"interruption-level"`
				}
				ID, Type, Urgency string
				Data              map[string]string
			}
			decode(t, r.Payload, &p)
			if p.Aps.Sound != "default" {
				t.Errorf("sound %v, want \"default\"", p.Aps.Sound)
			}
			exp, err := strconv.ParseInt(r.Header.Get("apns-expiration"), 10, 64)
			if err != nil {
				t.Errorf("apns-expiration %q", r.Header.Get("apns-expiration"))
			}
			data := maps.Clone(p.Data)
			data["id"], data["type"], data["urgency"] = p.ID, p.Type, p.Urgency
			return wire{
				Priority: r.Header.Get("apns-priority"), Level: p.Aps.InterruptionLevel,
				TTL:      time.Unix(exp, 0).Sub(r.Time).Round(time.Minute),
				Collapse: r.Header.Get("apns-collapse-id"), Title: p.Aps.Alert.Title, Body: p.Aps.Alert.Body,
				Data: data, Keys: keys(t, r.Payload),
			}
		},
		failure: map[string]notifytest.Response{
			"gone":            notifytest.APNsError(http.StatusGone, "Unregistered"),
			"bad token":       notifytest.APNsError(http.StatusBadRequest, "BadDeviceToken"),
			"token not topic": notifytest.APNsError(http.StatusBadRequest, "DeviceTokenNotForTopic"),
			"rate limited":    withRetryAfter(notifytest.APNsError(http.StatusTooManyRequests, "TooManyRequests"), "7"),
			"unavailable":     withRetryAfter(notifytest.APNsError(http.StatusServiceUnavailable, "ServiceUnavailable"), "3"),
			"server error":    notifytest.APNsError(http.StatusInternalServerError, "InternalServerError"),
			"bad request":     notifytest.APNsError(http.StatusBadRequest, "BadTopic"),
			"auth":            notifytest.APNsError(http.StatusForbidden, "InvalidProviderToken"),
			"too large":       notifytest.APNsError(http.StatusRequestEntityTooLarge, "PayloadTooLarge"),
		},
		providerID: func(t *testing.T, m notify.Message, id string) {
			if id != m.ID {
				t.Errorf("ProviderID %q, want the message id as apns-id", id)
			}
		},
	}
}

func withRetryAfter(r notifytest.Response, v string) notifytest.Response {
	r.RetryAfter = v
	return r
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	decode(t, b, &m)
	return slices.Sorted(maps.Keys(m))
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const alertID = "0191e6a2-7b3c-7def-8a12-3456789abcde"

func message(u notify.Urgency) notify.Message {
	return notify.Message{
		ID:         "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
		Type:       "alert",
		Title:      "New critical alert",
		Body:       "Open Tend to review it",
		Urgency:    u,
		CollapseID: alertID,
		Data:       map[string]string{"alert_id": alertID, "patient_id": "7d1e2f3a-0000-4000-8000-000000000001"},
	}
}

// assertNoLeak fails if err's message shows the device's secrets.
func assertNoLeak(t *testing.T, err error, d notify.Device) {
	t.Helper()
	if err == nil {
		return
	}
	s := err.Error()
	for _, secret := range []string{d.Token, d.Endpoint, d.P256dh, d.Auth} {
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("error %q leaks a device secret", s)
		}
	}
	if d.Endpoint != "" && strings.Contains(s, "/push/") {
		t.Errorf("error %q leaks the endpoint path", s)
	}
}

func TestConformanceSuccess(t *testing.T) {
	t.Parallel()
	wantKeys := map[notify.Platform][]string{
		notify.WebPush: {"body", "data", "id", "title", "type", "urgency"},
		notify.FCM:     {"android", "apns", "data", "notification", "token", "webpush"},
		notify.APNs:    {"aps", "data", "id", "type", "urgency"},
	}
	wantCollapse := map[notify.Platform]string{
		notify.WebPush: "AZHmons8fe-KEjRWeJq83g", // the UUID's 16 bytes, unpadded base64url
		notify.FCM:     alertID,
		notify.APNs:    alertID,
	}
	for _, p := range platforms {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, p, harnessOpts{})
			d := h.device()
			m := message(notify.Critical)
			res, err := h.sender.Send(ctxT(t), d, m)
			if err != nil {
				t.Fatalf("Send: %v (rejected %+v)", err, h.rejected())
			}
			if res.Status != http.StatusOK && res.Status != http.StatusCreated {
				t.Errorf("status %d", res.Status)
			}
			h.providerID(t, m, res.ProviderID)
			w := h.last(t)
			if w.Title != m.Title || w.Body != m.Body {
				t.Errorf("title/body %q/%q", w.Title, w.Body)
			}
			wantData := maps.Clone(m.Data)
			wantData["id"], wantData["type"], wantData["urgency"] = m.ID, m.Type, string(m.Urgency)
			if !maps.Equal(w.Data, wantData) {
				t.Errorf("data %v\nwant %v", w.Data, wantData)
			}
			if !slices.Equal(w.Keys, wantKeys[p]) {
				t.Errorf("payload keys %v, want exactly %v", w.Keys, wantKeys[p])
			}
			if w.Collapse != wantCollapse[p] {
				t.Errorf("collapse %q, want %q", w.Collapse, wantCollapse[p])
			}
			if rj := h.rejected(); len(rj) != 0 {
				t.Errorf("the fake rejected requests: %+v", rj)
			}
		})
	}
}

func TestConformanceNoCollapse(t *testing.T) {
	t.Parallel()
	for _, p := range platforms {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, p, harnessOpts{})
			m := message(notify.Low)
			m.CollapseID = ""
			if _, err := h.sender.Send(ctxT(t), h.device(), m); err != nil {
				t.Fatal(err)
			}
			if w := h.last(t); w.Collapse != "" {
				t.Errorf("collapse %q without a CollapseID", w.Collapse)
			}
		})
	}
}

func TestConformanceFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scenario   string
		kind       notify.Kind
		retryAfter time.Duration
	}{
		{"gone", notify.Unregistered, 0},
		{"not found", notify.Unregistered, 0},
		{"bad token", notify.Unregistered, 0},
		{"token not topic", notify.Permanent, 0},
		{"rate limited", notify.Transient, 7 * time.Second},
		{"unavailable", notify.Transient, 3 * time.Second},
		{"server error", notify.Transient, 0},
		{"bad request", notify.Permanent, 0},
		{"auth", notify.Permanent, 0},
		{"wrong sender", notify.Permanent, 0},
		{"too large", notify.Permanent, 0},
	}
	for _, p := range platforms {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, p, harnessOpts{})
			for _, c := range cases {
				resp, ok := h.failure[c.scenario]
				if !ok {
					continue
				}
				d := h.device()
				h.script(d, resp)
				before := h.received()
				res, err := h.sender.Send(ctxT(t), d, message(notify.High))
				var ne *notify.Error
				if !errors.As(err, &ne) {
					t.Fatalf("%s: error %v is not a *notify.Error", c.scenario, err)
				}
				if ne.Kind != c.kind || ne.Status != resp.Status || res.Status != resp.Status {
					t.Errorf("%s: kind %v status %d/%d, want %v %d", c.scenario, ne.Kind, ne.Status, res.Status, c.kind, resp.Status)
				}
				if ne.RetryAfter != c.retryAfter {
					t.Errorf("%s: RetryAfter %v, want %v", c.scenario, ne.RetryAfter, c.retryAfter)
				}
				if tooLarge := c.scenario == "too large"; errors.Is(err, notify.ErrPayloadTooLarge) != tooLarge || (tooLarge && ne.Code == "") {
					t.Errorf("%s: %v (code %q): a sizing error is told apart from every other failure, with a code", c.scenario, err, ne.Code)
				}
				if n := h.received() - before; n != 1 {
					t.Errorf("%s: the provider got %d requests, want 1 (retries are the job's)", c.scenario, n)
				}
				assertNoLeak(t, err, d)

				// The script is spent: the device works again.
				if _, err := h.sender.Send(ctxT(t), d, message(notify.High)); err != nil {
					t.Errorf("%s: send after the script: %v", c.scenario, err)
				}
			}
			if rj := h.rejected(); len(rj) != 0 {
				t.Errorf("the fake rejected requests: %+v", rj)
			}
		})
	}
}

func TestConformanceUrgencyMapping(t *testing.T) {
	t.Parallel()
	type want struct{ priority, level string }
	cases := []struct {
		urgency notify.Urgency
		ttl     time.Duration
		entitle bool
		want    map[notify.Platform]want
	}{
		{notify.Critical, time.Hour, false, map[notify.Platform]want{
			notify.WebPush: {"high", ""}, notify.FCM: {"high", "time-sensitive"}, notify.APNs: {"10", "time-sensitive"}}},
		{notify.Critical, time.Hour, true, map[notify.Platform]want{
			notify.WebPush: {"high", ""}, notify.FCM: {"high", "critical"}, notify.APNs: {"10", "critical"}}},
		{notify.High, 4 * time.Hour, false, map[notify.Platform]want{
			notify.WebPush: {"high", ""}, notify.FCM: {"high", "time-sensitive"}, notify.APNs: {"10", "time-sensitive"}}},
		{notify.Medium, 12 * time.Hour, false, map[notify.Platform]want{
			notify.WebPush: {"normal", ""}, notify.FCM: {"normal", "active"}, notify.APNs: {"10", "active"}}},
		{notify.Low, 24 * time.Hour, false, map[notify.Platform]want{
			notify.WebPush: {"low", ""}, notify.FCM: {"normal", "passive"}, notify.APNs: {"5", "passive"}}},
	}
	for _, p := range platforms {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			harnesses := map[bool]*harness{}
			for _, c := range cases {
				h := harnesses[c.entitle]
				if h == nil {
					h = newHarness(t, p, harnessOpts{criticalEntitled: c.entitle})
					harnesses[c.entitle] = h
				}
				if _, err := h.sender.Send(ctxT(t), h.device(), message(c.urgency)); err != nil {
					t.Fatalf("%s: %v", c.urgency, err)
				}
				w := h.last(t)
				if got := (want{w.Priority, w.Level}); got != c.want[p] {
					t.Errorf("%s (entitled %v): priority/level %v, want %v", c.urgency, c.entitle, got, c.want[p])
				}
				if w.TTL != c.ttl {
					t.Errorf("%s: TTL %v, want %v", c.urgency, w.TTL, c.ttl)
				}
			}
		})
	}
}

func TestConformanceUnknownUrgencyIsPermanent(t *testing.T) {
	t.Parallel()
	for _, p := range platforms {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, p, harnessOpts{})
			_, err := h.sender.Send(ctxT(t), h.device(), message("urgent"))
			if notify.Classify(err).Kind != notify.Permanent {
				t.Errorf("err = %v, want permanent", err)
			}
			if n := h.received(); n != 0 {
				t.Errorf("%d requests reached the provider", n)
			}
		})
	}
}

func TestConformanceNetworkErrorIsTransient(t *testing.T) {
	t.Parallel()
	for _, p := range platforms {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			var (
				s     notify.Sender
				d     notify.Device
				close func()
			)
			switch p {
			case notify.WebPush:
				push := notifytest.NewWebPush()
				d, close = push.NewSubscription().Device(), push.Close
				pub, priv, _ := webpush.GenerateVAPIDKeys()
				s = must(webpush.New(webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@tend.example"}))
			case notify.FCM:
				fake := notifytest.NewFCM()
				d, close = notify.Device{Platform: notify.FCM, Token: randomHex(t, 40)}, fake.Close
				s = must(fcm.New(t.Context(), fcm.Config{Endpoint: fake.URL, ProjectID: "p"}))
			case notify.APNs:
				fake := notifytest.NewAPNs(nil)
				d, close = notify.Device{Platform: notify.APNs, Token: randomHex(t, 32)}, fake.Close
				s = must(apns.New(apns.Config{Key: fake.KeyPEM, KeyID: fake.KeyID, TeamID: fake.TeamID, Topic: fake.Topic, Endpoint: fake.URL, HTTPClient: fake.Client()}))
			}
			close() // nothing listens any more
			start := time.Now()
			_, err := s.Send(ctxT(t), d, message(notify.Critical))
			ne := notify.Classify(err)
			if err == nil || ne.Kind != notify.Transient || ne.Status != 0 {
				t.Fatalf("err = %v, want transient without status", err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("Send took %v: a client retried inside Send", el)
			}
			assertNoLeak(t, err, d)
		})
	}
}

func TestConformanceCancelledContext(t *testing.T) {
	t.Parallel()
	for _, p := range platforms {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, p, harnessOpts{})
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := h.sender.Send(ctx, h.device(), message(notify.Critical))
			if notify.Classify(err).Kind != notify.Transient || !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want transient wrapping context.Canceled", err)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestWebPushTopicIsUUIDBytes pins the RFC 8030 Topic derivation the
// conformance table relies on.
func TestWebPushTopicIsUUIDBytes(t *testing.T) {
	t.Parallel()
	b, _ := hex.DecodeString(strings.ReplaceAll(alertID, "-", ""))
	if got, want := webpush.Topic(alertID), base64.RawURLEncoding.EncodeToString(b); got != want || len(got) != 22 {
		t.Errorf("Topic = %q, want %q", got, want)
	}
}
