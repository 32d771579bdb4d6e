package fcm_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/fcm"
	"github.com/tendhealth/tend/notify/notifytest"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var msg = notify.Message{
	ID: "m1", Type: "message", Title: "New message from your care team", Body: "Open Tend to read it",
	Urgency: notify.Medium, CollapseID: "0191e6a2-7b3c-7def-8a12-3456789abcde",
	Data: map[string]string{"thread_id": "th1"},
}

func device(token string) notify.Device { return notify.Device{Platform: notify.FCM, Token: token} }

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notSA := filepath.Join(dir, "user.json")
	if err := os.WriteFile(notSA, []byte(`{"type":"authorized_user"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte(`not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]fcm.Config{
		"nothing":             {},
		"endpoint no project": {Endpoint: "http://127.0.0.1:1"},
		"relative endpoint":   {Endpoint: "/v1", ProjectID: "p"},
		"missing file":        {CredentialsFile: filepath.Join(dir, "none.json")},
		"not service account": {CredentialsFile: notSA, ProjectID: "p"},
		"not json":            {CredentialsFile: garbage, ProjectID: "p"},
	} {
		if _, err := fcm.New(ctxT(t), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEndpointForms(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewFCM()
	defer fake.Close()
	for _, ep := range []string{fake.URL, fake.URL + "/", fake.URL + "/v1", fake.URL + "/v1/"} {
		s, err := fcm.New(ctxT(t), fcm.Config{Endpoint: ep, ProjectID: "proj"})
		if err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		if _, err := s.Send(ctxT(t), device("tok"), msg); err != nil {
			t.Errorf("%s: %v (rejected %+v)", ep, err, fake.Rejected())
		}
	}
	if n := len(fake.Received()); n != 4 {
		t.Errorf("%d received", n)
	}
}

// TestCredentialsFile signs in with a service account (OAuth JWT bearer
// grant against the fake's token endpoint) and takes the project from it.
func TestCredentialsFile(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewFCM()
	defer fake.Close()
	creds, err := fake.ServiceAccountJSON("from-json")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := fcm.New(ctxT(t), fcm.Config{CredentialsFile: file, Endpoint: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctxT(t), device("tok"), msg); err != nil {
		t.Fatalf("Send: %v (rejected %+v)", err, fake.Rejected())
	}
	got := fake.Received()
	if len(got) != 1 || !got[0].Authorized || got[0].Project != "from-json" {
		t.Errorf("received %+v", got)
	}

	// An explicit ProjectID wins.
	s, err = fcm.New(ctxT(t), fcm.Config{CredentialsFile: file, Endpoint: fake.URL, ProjectID: "explicit"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctxT(t), device("tok"), msg); err != nil {
		t.Fatal(err)
	}
	if got := fake.Received(); got[len(got)-1].Project != "explicit" {
		t.Errorf("project %q", got[len(got)-1].Project)
	}
}

func TestMessageShape(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewFCM()
	defer fake.Close()
	s, err := fcm.New(ctxT(t), fcm.Config{Endpoint: fake.URL, ProjectID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Send(ctxT(t), device("tok"), msg); err != nil {
		t.Fatal(err)
	}
	m := fake.Received()[0].Message
	if m.Token != "tok" || m.Android.Notification.ChannelID != fcm.ChannelDefault || m.Android.TTL != "43200s" || m.Android.Priority != "normal" {
		t.Errorf("android %+v %+v", m.Android, m.Android.Notification)
	}
	h := m.APNS.Headers
	if h["apns-priority"] != "10" || h["apns-push-type"] != "alert" || h["apns-collapse-id"] != msg.CollapseID {
		t.Errorf("apns headers %v", h)
	}
	exp, err := strconv.ParseInt(h["apns-expiration"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(12 * time.Hour).Unix(); exp < want-1 || exp > want+5 {
		t.Errorf("apns-expiration %d, want about %d", exp, want)
	}
	aps := m.APNS.Payload["aps"].(map[string]any)
	if aps["sound"] != "default" || aps["interruption-level"] != "active" {
		t.Errorf("aps %v", aps)
	}
	if w := m.Webpush.Headers; w["Urgency"] != "normal" || w["TTL"] != "43200" || w["Topic"] != "AZHmons8fe-KEjRWeJq83g" {
		t.Errorf("webpush headers %v", w)
	}
}

func TestChannels(t *testing.T) {
	t.Parallel()
	for u, want := range map[notify.Urgency]string{
		notify.Critical: "tend_critical", notify.High: "tend_high", notify.Medium: "tend_default", notify.Low: "tend_low",
	} {
		if got := fcm.Channel(u); got != want {
			t.Errorf("Channel(%s) = %q", u, got)
		}
	}
}

func TestClassification(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewFCM()
	defer fake.Close()
	s, err := fcm.New(ctxT(t), fcm.Config{Endpoint: fake.URL, ProjectID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	const token = "secret-registration-token"
	echo := notifytest.FCMError(http.StatusBadRequest, "INVALID_ARGUMENT")
	echo.Body = strings.Replace(echo.Body, `"message":"Bad Request"`, `"message":"The registration token secret-registration-token is not valid"`, 1)
	cases := []struct {
		name       string
		resp       notifytest.Response
		kind       notify.Kind
		code       string
		retryAfter time.Duration
	}{
		{"unregistered", notifytest.FCMError(404, "UNREGISTERED"), notify.Unregistered, "UNREGISTERED", 0},
		{"404 without errorCode (wrong project)", notifytest.FCMError(404, ""), notify.Permanent, "NOT_FOUND", 0},
		{"503 with a long Retry-After", notifytest.Response{Status: 503, RetryAfter: "600", Body: notifytest.FCMError(503, "UNAVAILABLE").Body}, notify.Transient, "UNAVAILABLE", 10 * time.Minute},
		{"503 without a body", notifytest.Response{Status: 503}, notify.Transient, "", 0},
		{"quota", notifytest.Response{Status: 429, RetryAfter: "2", Body: notifytest.FCMError(429, "QUOTA_EXCEEDED").Body}, notify.Transient, "QUOTA_EXCEEDED", 2 * time.Second},
		{"echoing message", echo, notify.Permanent, "INVALID_ARGUMENT", 0},
	}
	for _, c := range cases {
		fake.Script(token, c.resp)
		before := len(fake.Received())
		_, err := s.Send(ctxT(t), device(token), msg)
		var ne *notify.Error
		if !errors.As(err, &ne) {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ne.Kind != c.kind || ne.Code != c.code || ne.RetryAfter != c.retryAfter || ne.Status != c.resp.Status {
			t.Errorf("%s: %+v", c.name, ne)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("%s: error leaks the token: %v", c.name, err)
		}
		if n := len(fake.Received()) - before; n != 1 {
			t.Errorf("%s: %d requests", c.name, n)
		}
	}
}

func TestMissingTokenAndUrgency(t *testing.T) {
	t.Parallel()
	s, err := fcm.New(ctxT(t), fcm.Config{Endpoint: "http://127.0.0.1:1", ProjectID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctxT(t), device(""), msg); notify.Classify(err).Kind != notify.Unregistered {
		t.Errorf("no token: %v", err)
	}
	m := msg
	m.Urgency = ""
	if _, err := s.Send(ctxT(t), device("t"), m); notify.Classify(err).Kind != notify.Permanent {
		t.Errorf("no urgency: %v", err)
	}
}
