package apns_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/apns"
	"github.com/tendhealth/tend/notify/notifytest"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const token = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

var msg = notify.Message{
	ID: "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f", Type: "reminder", Title: "Time for your medication",
	Body: "Open Tend to confirm", Urgency: notify.Low, Data: map[string]string{"reminder_id": "r1"},
}

func newSender(t *testing.T, fake *notifytest.APNs, edit func(*apns.Config)) *apns.Sender {
	t.Helper()
	cfg := apns.Config{Key: fake.KeyPEM, KeyID: fake.KeyID, TeamID: fake.TeamID, Topic: fake.Topic, Endpoint: fake.URL, HTTPClient: fake.Client()}
	if edit != nil {
		edit(&cfg)
	}
	s, err := apns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	p8, _, err := notifytest.GenerateAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "AuthKey.p8")
	if err := os.WriteFile(file, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  apns.Config
		ok   bool
	}{
		{"key bytes", apns.Config{Key: p8, KeyID: "K", TeamID: "T"}, true},
		{"key file", apns.Config{KeyFile: file, KeyID: "K", TeamID: "T", Endpoint: "https://127.0.0.1:1/"}, true},
		{"both", apns.Config{Key: p8, KeyFile: file, KeyID: "K", TeamID: "T"}, false},
		{"neither", apns.Config{KeyID: "K", TeamID: "T"}, false},
		{"missing file", apns.Config{KeyFile: file + ".none", KeyID: "K", TeamID: "T"}, false},
		{"not pem", apns.Config{Key: []byte("nope"), KeyID: "K", TeamID: "T"}, false},
		{"no key id", apns.Config{Key: p8, TeamID: "T"}, false},
		{"no team", apns.Config{Key: p8, KeyID: "K"}, false},
		{"http endpoint", apns.Config{Key: p8, KeyID: "K", TeamID: "T", Endpoint: "http://127.0.0.1:1"}, false},
	}
	for _, c := range cases {
		if _, err := apns.New(c.cfg); (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
}

func TestValidToken(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		token:                     true,
		strings.ToUpper(token):    true,
		token + "ab":              true,
		token[:62]:                false,
		token + "a":               false,
		strings.Repeat("g", 64):   false,
		strings.Repeat("a", 202):  false,
		"":                        false,
		"<" + token[1:] + ">":     false,
		strings.Repeat("ab", 100): true,
	} {
		if got := apns.ValidToken(s); got != want {
			t.Errorf("ValidToken(%q) = %v", s, got)
		}
	}
}

func TestSendPayloadAndHeaders(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewAPNs(nil)
	defer fake.Close()
	fake.AllowTopic("org.example.other")
	s := newSender(t, fake, nil)

	res, err := s.Send(ctxT(t), notify.Device{Token: token, Topic: "org.example.other"}, msg)
	if err != nil {
		t.Fatalf("Send: %v (rejected %+v)", err, fake.Rejected())
	}
	r := fake.Received()[0]
	if res.ProviderID != msg.ID || r.Header.Get("apns-id") != msg.ID {
		t.Errorf("apns-id %q, ProviderID %q", r.Header.Get("apns-id"), res.ProviderID)
	}
	if r.Header.Get("apns-topic") != "org.example.other" || r.Header.Get("apns-priority") != "5" || r.Header.Get("apns-collapse-id") != "" {
		t.Errorf("headers %v", r.Header)
	}
	want := `{"aps":{"alert":{"body":"Open Tend to confirm","title":"Time for your medication"},"interruption-level":"passive","sound":"default"},` +
		`"data":{"reminder_id":"r1"},"id":"5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f","type":"reminder","urgency":"low"}`
	var got any
	if err := json.Unmarshal(r.Payload, &got); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("payload %s\nwant    %s", b, want)
	}

	// A message id that is not a UUID is not sent as apns-id.
	m := msg
	m.ID = "42"
	if _, err := s.Send(ctxT(t), notify.Device{Token: token}, m); err != nil {
		t.Fatal(err)
	}
	if r := fake.Received()[1]; r.Header.Get("apns-id") != "" || r.Header.Get("apns-topic") != fake.Topic {
		t.Errorf("headers %v", r.Header)
	}
}

func TestSendFailures(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewAPNs(nil)
	defer fake.Close()
	s := newSender(t, fake, nil)

	// A malformed token never reaches APNs.
	if _, err := s.Send(ctxT(t), notify.Device{Token: "short"}, msg); notify.Classify(err).Kind != notify.Unregistered {
		t.Errorf("short token: %v", err)
	}
	// No topic anywhere.
	noTopic := newSender(t, fake, func(c *apns.Config) { c.Topic = "" })
	if _, err := noTopic.Send(ctxT(t), notify.Device{Token: token}, msg); notify.Classify(err).Kind != notify.Permanent {
		t.Errorf("no topic: %v", err)
	}
	if n := len(fake.Received()) + len(fake.Rejected()); n != 0 {
		t.Errorf("%d requests reached APNs", n)
	}

	// A wrong team id is a configuration error, not the device's.
	wrongTeam := newSender(t, fake, func(c *apns.Config) { c.TeamID = "WRONGTEAM0" })
	_, err := wrongTeam.Send(ctxT(t), notify.Device{Token: token}, msg)
	if ne := notify.Classify(err); ne.Kind != notify.Permanent || ne.Code != "InvalidProviderToken" || ne.Status != 403 {
		t.Errorf("wrong team: %+v", ne)
	}
	// A topic APNs does not accept for the token.
	_, err = s.Send(ctxT(t), notify.Device{Token: token, Topic: "org.example.unknown"}, msg)
	if ne := notify.Classify(err); ne.Kind != notify.Permanent || ne.Code != "DeviceTokenNotForTopic" {
		t.Errorf("wrong topic: %+v", ne)
	}

	// A proxy's error page is classified by its status.
	fake.Script(token, notifytest.Response{Status: 502, RetryAfter: "4", Body: "<html>Bad Gateway</html>"})
	_, err = s.Send(ctxT(t), notify.Device{Token: token}, msg)
	if ne := notify.Classify(err); ne.Kind != notify.Transient || ne.Status != 502 || ne.RetryAfter != 4*time.Second {
		t.Errorf("502 page: %+v", ne)
	}

	fake.Script(token, notifytest.APNsError(410, "Unregistered"))
	_, err = s.Send(ctxT(t), notify.Device{Token: token}, msg)
	if ne := notify.Classify(err); ne.Kind != notify.Unregistered || !strings.Contains(err.Error(), "since 20") {
		t.Errorf("410: %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error leaks the token: %v", err)
	}
}

// hostRecorder fails every request, noting its host.
type hostRecorder struct {
	mu    sync.Mutex
	hosts []string
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts = append(h.hosts, r.URL.Host)
	h.mu.Unlock()
	return nil, errors.New("offline")
}

func TestSandboxSelectsDevelopmentHost(t *testing.T) {
	t.Parallel()
	p8, _, err := notifytest.GenerateAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	rec := &hostRecorder{}
	s, err := apns.New(apns.Config{Key: p8, KeyID: "K", TeamID: "T", Topic: "org.example", HTTPClient: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sandbox := range []bool{false, true} {
		_, err := s.Send(ctxT(t), notify.Device{Token: token, Sandbox: sandbox}, msg)
		if ne := notify.Classify(err); ne.Kind != notify.Transient || strings.Contains(err.Error(), token) {
			t.Errorf("sandbox %v: %v", sandbox, err)
		}
	}
	if want := []string{"api.push.apple.com", "api.sandbox.push.apple.com"}; strings.Join(rec.hosts, " ") != strings.Join(want, " ") {
		t.Errorf("hosts %v, want %v", rec.hosts, want)
	}
}

func TestEndpointOverridesSandbox(t *testing.T) {
	t.Parallel()
	fake := notifytest.NewAPNs(nil)
	defer fake.Close()
	s := newSender(t, fake, nil)
	if _, err := s.Send(ctxT(t), notify.Device{Token: token, Sandbox: true}, msg); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Received()); n != 1 {
		t.Errorf("%d received", n)
	}
}

func TestPriority(t *testing.T) {
	t.Parallel()
	cases := []struct {
		u        notify.Urgency
		entitled bool
		priority int
		level    string
	}{
		{notify.Critical, true, 10, "critical"},
		{notify.Critical, false, 10, "time-sensitive"},
		{notify.High, true, 10, "time-sensitive"},
		{notify.Medium, false, 10, "active"},
		{notify.Low, false, 5, "passive"},
	}
	for _, c := range cases {
		p, l, ok := apns.Priority(c.u, c.entitled)
		if !ok || p != c.priority || l != c.level {
			t.Errorf("%s/%v: %d %s %v", c.u, c.entitled, p, l, ok)
		}
	}
	if _, _, ok := apns.Priority("", false); ok {
		t.Error("empty urgency accepted")
	}
}
