package webpush_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/notify/notifytest"
	"github.com/tendhealth/tend/notify/webpush"
)

func newSender(t *testing.T, cfg webpush.Config) *webpush.Sender {
	t.Helper()
	if cfg.PublicKey == "" {
		pub, priv, err := webpush.GenerateVAPIDKeys()
		if err != nil {
			t.Fatal(err)
		}
		cfg.PublicKey, cfg.PrivateKey = pub, priv
	}
	if cfg.Subject == "" {
		cfg.Subject = "mailto:ops@example.org"
	}
	s, err := webpush.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var msg = notify.Message{
	ID:         "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
	Type:       "alert",
	Title:      "New critical alert",
	Body:       "Open Tend to review",
	Urgency:    notify.Critical,
	CollapseID: "0191e6a2-7b3c-7def-8a12-3456789abcde",
	Data:       map[string]string{"alert_id": "0191e6a2-7b3c-7def-8a12-3456789abcde"},
}

func TestSendDeliversEncryptedPayload(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	push.RequireVAPIDKey(pub)
	s := newSender(t, webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:ops@example.org"})
	sub := push.NewSubscription()

	res, err := s.Send(ctxT(t), sub.Device(), msg)
	if err != nil {
		t.Fatalf("Send: %v (rejected: %+v)", err, push.Rejected())
	}
	if res.Status != http.StatusCreated || !strings.HasPrefix(res.ProviderID, push.URL+"/message/") {
		t.Errorf("result = %+v", res)
	}
	got, err := push.Wait(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	r := got[0]
	if r.Subject != "mailto:ops@example.org" {
		t.Errorf("VAPID sub = %q", r.Subject)
	}
	if h := r.Header.Get("TTL"); h != "3600" {
		t.Errorf("TTL = %q, want 3600", h)
	}
	if h := r.Header.Get("Urgency"); h != "high" {
		t.Errorf("Urgency = %q", h)
	}
	if h := r.Header.Get("Topic"); h != "AZHmons8fe-KEjRWeJq83g" {
		t.Errorf("Topic = %q", h)
	}
	var p map[string]any
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": msg.ID, "type": "alert", "title": msg.Title, "body": msg.Body, "urgency": "critical",
		"data": map[string]any{"alert_id": msg.CollapseID},
	}
	if pj, wj := mustJSON(t, p), mustJSON(t, want); pj != wj {
		t.Errorf("payload = %s\nwant      %s", pj, wj)
	}
	if rj := push.Rejected(); len(rj) != 0 {
		t.Errorf("rejected: %+v", rj)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSendHeadersPerUrgency(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{Subject: "https://tend.example.org/contact"})
	sub := push.NewSubscription()
	cases := []struct {
		u       notify.Urgency
		urgency string
		ttl     string
	}{
		{notify.Critical, "high", "3600"},
		{notify.High, "high", "14400"},
		{notify.Medium, "normal", "43200"},
		{notify.Low, "low", "86400"},
	}
	for i, c := range cases {
		m := msg
		m.Urgency = c.u
		m.CollapseID = ""
		if _, err := s.Send(ctxT(t), sub.Device(), m); err != nil {
			t.Fatalf("%s: %v", c.u, err)
		}
		got, err := push.Wait(ctxT(t), i+1)
		if err != nil {
			t.Fatal(err)
		}
		r := got[i]
		if r.Header.Get("Urgency") != c.urgency || r.Header.Get("TTL") != c.ttl || r.Header.Get("Topic") != "" {
			t.Errorf("%s: headers %v", c.u, r.Header)
		}
		if r.Subject != "https://tend.example.org/contact" {
			t.Errorf("sub = %q", r.Subject)
		}
	}
}

func TestSendClassifiesResponses(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{})
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		resp       notifytest.Response
		kind       notify.Kind
		retryAfter time.Duration // lower bound
	}{
		{notifytest.Response{Status: 410}, notify.Unregistered, 0},
		{notifytest.Response{Status: 404}, notify.Unregistered, 0},
		{notifytest.Response{Status: 429, RetryAfter: "30"}, notify.Transient, 30 * time.Second},
		{notifytest.Response{Status: 503, RetryAfter: date}, notify.Transient, 80 * time.Second},
		{notifytest.Response{Status: 500}, notify.Transient, 0},
		{notifytest.Response{Status: 400}, notify.Permanent, 0},
		{notifytest.Response{Status: 401}, notify.Permanent, 0},
		{notifytest.Response{Status: 403}, notify.Permanent, 0},
		{notifytest.Response{Status: 413}, notify.Permanent, 0}, // and a sizing error: TestSendTooLargeIsASizingError
	}
	for _, c := range cases {
		sub := push.NewSubscription()
		push.Script(sub.Endpoint, c.resp)
		_, err := s.Send(ctxT(t), sub.Device(), msg)
		var ne *notify.Error
		if !errors.As(err, &ne) {
			t.Fatalf("%d: error %v is not a *notify.Error", c.resp.Status, err)
		}
		if ne.Kind != c.kind || ne.Status != c.resp.Status {
			t.Errorf("%d: kind %v status %d", c.resp.Status, ne.Kind, ne.Status)
		}
		if ne.RetryAfter < c.retryAfter || (c.retryAfter == 0 && ne.RetryAfter != 0) || ne.RetryAfter > c.retryAfter+20*time.Second {
			t.Errorf("%d: RetryAfter %v, want about %v", c.resp.Status, ne.RetryAfter, c.retryAfter)
		}
		if strings.Contains(err.Error(), sub.Endpoint) || strings.Contains(err.Error(), push.URL) {
			t.Errorf("%d: error leaks the endpoint: %v", c.resp.Status, err)
		}
	}
	// After its script, a subscription is back to 201.
	sub := push.NewSubscription()
	push.Script(sub.Endpoint, notifytest.Response{Status: 503})
	if _, err := s.Send(ctxT(t), sub.Device(), msg); notify.Classify(err).Kind != notify.Transient {
		t.Fatalf("first send: %v", err)
	}
	if _, err := s.Send(ctxT(t), sub.Device(), msg); err != nil {
		t.Fatalf("second send: %v", err)
	}
	if rj := push.Rejected(); len(rj) != 0 {
		t.Errorf("rejected: %+v", rj)
	}
}

func TestSendNetworkErrorIsTransientAndRedacted(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	sub := push.NewSubscription()
	push.Close()
	s := newSender(t, webpush.Config{Timeout: 2 * time.Second})
	_, err := s.Send(ctxT(t), sub.Device(), msg)
	ne := notify.Classify(err)
	if err == nil || ne.Kind != notify.Transient || ne.Status != 0 {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "/push/") {
		t.Errorf("error leaks the endpoint: %v", err)
	}
}

func TestSendHonoursContext(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Send(ctx, push.NewSubscription().Device(), msg)
	if notify.Classify(err).Kind != notify.Transient || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{})
	sub := push.NewSubscription()

	d := sub.Device()
	d.Auth = "c2hvcnQ"
	if _, err := s.Send(ctxT(t), d, msg); notify.Classify(err).Kind != notify.Permanent {
		t.Errorf("bad auth: %v", err)
	}
	m := msg
	m.Urgency = ""
	if _, err := s.Send(ctxT(t), sub.Device(), m); notify.Classify(err).Kind != notify.Permanent {
		t.Errorf("no urgency: %v", err)
	}
	m = msg
	m.Data = map[string]string{"padding": strings.Repeat("x", webpush.MaxPayload)}
	if _, err := s.Send(ctxT(t), sub.Device(), m); notify.Classify(err).Code != notify.CodePayloadTooLarge ||
		!errors.Is(err, notify.ErrPayloadTooLarge) {
		t.Errorf("large: %v", err)
	}
	if n := len(push.Received()); n != 0 {
		t.Errorf("%d messages reached the push service", n)
	}
}

func TestLargestPayloadFits(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{})
	m := msg
	base, err := webpush.Payload(m)
	if err != nil {
		t.Fatal(err)
	}
	m.Data = map[string]string{"alert_id": msg.CollapseID, "p": ""}
	m.Data["p"] = strings.Repeat("x", webpush.MaxPayload-len(base)-len(`,"p":""`))
	if b, _ := webpush.Payload(m); len(b) != webpush.MaxPayload {
		t.Fatalf("payload is %d bytes, want %d", len(b), webpush.MaxPayload)
	}
	if _, err := s.Send(ctxT(t), push.NewSubscription().Device(), m); err != nil {
		t.Fatalf("Send of %d bytes: %v (rejected %+v)", webpush.MaxPayload, err, push.Rejected())
	}
	got, err := push.Wait(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := got[0]; r.BodySize != 4096 || r.RecordSize != 4096 || len(r.Payload) != webpush.MaxPayload {
		t.Errorf("body %d bytes, rs %d, plaintext %d bytes; want 4096, 4096, %d", r.BodySize, r.RecordSize, len(r.Payload), webpush.MaxPayload)
	}
}

// TestSendSizesBodyToPayload: a typical payload travels in a body sized to
// it, not to webpush-go's default 4096-byte record, so a push service that
// refuses bodies over 3 KB takes it, and it decrypts intact.
func TestSendSizesBodyToPayload(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	push.LimitBody(3000) // as strict as the strictest push services
	s := newSender(t, webpush.Config{})
	sub := push.NewSubscription()
	if _, err := s.Send(ctxT(t), sub.Device(), msg); err != nil {
		t.Fatalf("Send: %v (rejected %+v)", err, push.Rejected())
	}
	got, err := push.Wait(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := webpush.Payload(msg)
	if err != nil {
		t.Fatal(err)
	}
	r := got[0]
	if string(r.Payload) != string(want) {
		t.Errorf("decrypted %q\nwant      %q", r.Payload, want)
	}
	if r.BodySize != 614 || r.RecordSize != r.BodySize || r.BodySize != webpush.BodySize(len(want)) {
		t.Errorf("body %d bytes with rs %d for a %d-byte payload; want 614 and 614", r.BodySize, r.RecordSize, len(want))
	}
}

// TestPaddingHidesLength: payloads of different lengths (a low alert, a
// critical one, a safety message) travel in bodies of the same size.
func TestPaddingHidesLength(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{})
	sub := push.NewSubscription()
	low, safety := msg, msg
	low.Urgency, low.Title = notify.Low, "New low alert"
	safety.Type, safety.Title = "safety", "Your care team has been alerted"
	safety.Body = "If you have chest pain or trouble breathing, call emergency services."
	lengths := map[int]bool{}
	for i, m := range []notify.Message{msg, low, safety} {
		p, _ := webpush.Payload(m)
		lengths[len(p)] = true
		if _, err := s.Send(ctxT(t), sub.Device(), m); err != nil {
			t.Fatal(err)
		}
		got, err := push.Wait(ctxT(t), i+1)
		if err != nil {
			t.Fatal(err)
		}
		if n := got[i].BodySize; n != got[0].BodySize {
			t.Errorf("message %d: body %d bytes, the first %d", i, n, got[0].BodySize)
		}
	}
	if len(lengths) != 3 {
		t.Fatalf("payload lengths %v are not all different; the test proves nothing", lengths)
	}
}

func TestBodySize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]int{
		0:                       614, // at least MinPadded (512) of plaintext
		245:                     614,
		510:                     614,  // 510 + delimiter = 511
		511:                     614,  // 512
		512:                     870,  // 513 rounds up to 768
		3839:                    3942, // 3840 = 15 blocks
		3840:                    4096, // 16 blocks would pass the limit: pad to the limit
		webpush.MaxPayload:      4096,
		webpush.MaxPayload - 1:  4096,
		webpush.MaxPayload - 99: 4096,
	} {
		if got := webpush.BodySize(n); got != want {
			t.Errorf("BodySize(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestSendTooLargeIsASizingError: a 413 is Tend's sizing error, told apart
// from a dead subscription and from other permanent failures, whether the
// push service answers it for a body over its limit or for its own reasons.
func TestSendTooLargeIsASizingError(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{})

	scripted := push.NewSubscription()
	push.Script(scripted.Endpoint, notifytest.Response{Status: http.StatusRequestEntityTooLarge})
	_, errScripted := s.Send(ctxT(t), scripted.Device(), msg)

	push.LimitBody(600) // below the 614 bytes of msg's body
	limited := push.NewSubscription()
	_, errLimited := s.Send(ctxT(t), limited.Device(), msg)
	if rj := push.Rejected(); len(rj) != 1 || rj[0].Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("rejected %+v, want one 413", rj)
	}

	for name, err := range map[string]error{"scripted": errScripted, "over the limit": errLimited} {
		ne := notify.Classify(err)
		if !errors.Is(err, notify.ErrPayloadTooLarge) || ne.Code != notify.CodePayloadTooLarge ||
			ne.Kind != notify.Permanent || ne.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %v (kind %v, code %q, status %d), want a permanent payload_too_large", name, err, ne.Kind, ne.Code, ne.Status)
		}
		if !strings.Contains(err.Error(), "614 bytes") {
			t.Errorf("%s: %v does not say how large the body was", name, err)
		}
		if strings.Contains(err.Error(), push.URL) {
			t.Errorf("%s: error leaks the endpoint: %v", name, err)
		}
	}
	// Other refusals do not pass for sizing errors.
	other := push.NewSubscription()
	push.LimitBody(0)
	push.Script(other.Endpoint, notifytest.Response{Status: http.StatusBadRequest})
	if _, err := s.Send(ctxT(t), other.Device(), msg); errors.Is(err, notify.ErrPayloadTooLarge) {
		t.Errorf("400: %v is classified as a sizing error", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, _ := webpush.GenerateVAPIDKeys()
	rawPub, _ := base64.RawURLEncoding.DecodeString(pub)
	cases := []struct {
		name string
		cfg  webpush.Config
		ok   bool
	}{
		{"valid", webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:a@example.org"}, true},
		{"padded keys", webpush.Config{PublicKey: base64.URLEncoding.EncodeToString(rawPub), PrivateKey: priv + "=", Subject: "a@example.org"}, true},
		{"std base64 public key", webpush.Config{PublicKey: base64.StdEncoding.EncodeToString(rawPub), PrivateKey: priv, Subject: "https://example.org"}, true},
		{"mismatched keys", webpush.Config{PublicKey: otherPub, PrivateKey: priv, Subject: "mailto:a@example.org"}, false},
		{"swapped keys", webpush.Config{PublicKey: priv, PrivateKey: pub, Subject: "mailto:a@example.org"}, false},
		{"no public key", webpush.Config{PrivateKey: priv, Subject: "mailto:a@example.org"}, false},
		{"no subject", webpush.Config{PublicKey: pub, PrivateKey: priv}, false},
		{"http subject", webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "http://example.org"}, false},
		{"negative timeout", webpush.Config{PublicKey: pub, PrivateKey: priv, Subject: "mailto:a@example.org", Timeout: -1}, false},
	}
	for _, c := range cases {
		_, err := webpush.New(c.cfg)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if err != nil && (strings.Contains(err.Error(), priv) || strings.Contains(err.Error(), pub)) {
			t.Errorf("%s: error leaks a key: %v", c.name, err)
		}
	}
}

func TestValidateSubscription(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	sub := push.NewSubscription()
	rawKey, _ := base64.RawURLEncoding.DecodeString(sub.P256dh)
	rawAuth, _ := base64.RawURLEncoding.DecodeString(sub.Auth)
	offCurve := append([]byte{4}, make([]byte, 64)...)
	cases := []struct {
		name, endpoint, p256dh, auth string
		field                        string // "" for valid
	}{
		{"valid", sub.Endpoint, sub.P256dh, sub.Auth, ""},
		{"padded", "https://fcm.googleapis.com/fcm/send/abc", base64.URLEncoding.EncodeToString(rawKey), base64.URLEncoding.EncodeToString(rawAuth), ""},
		{"std base64", "https://fcm.googleapis.com/fcm/send/abc", base64.StdEncoding.EncodeToString(rawKey), base64.StdEncoding.EncodeToString(rawAuth), ""},
		{"relative endpoint", "/push/1", sub.P256dh, sub.Auth, "endpoint"},
		{"ftp endpoint", "ftp://example.org/x", sub.P256dh, sub.Auth, "endpoint"},
		{"empty endpoint", "", sub.P256dh, sub.Auth, "endpoint"},
		{"p256dh not base64", sub.Endpoint, "!!!", sub.Auth, "p256dh"},
		{"p256dh compressed", sub.Endpoint, base64.RawURLEncoding.EncodeToString(append([]byte{2}, rawKey[1:33]...)), sub.Auth, "p256dh"},
		{"p256dh off curve", sub.Endpoint, base64.RawURLEncoding.EncodeToString(offCurve), sub.Auth, "p256dh"},
		{"auth short", sub.Endpoint, sub.P256dh, base64.RawURLEncoding.EncodeToString(rawAuth[:8]), "auth"},
		{"auth empty", sub.Endpoint, sub.P256dh, "", "auth"},
	}
	for _, c := range cases {
		err := webpush.ValidateSubscription(c.endpoint, c.p256dh, c.auth)
		var se *webpush.SubscriptionError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.field != "" && (!errors.As(err, &se) || se.Field != c.field):
			t.Errorf("%s: err = %v, want field %s", c.name, err, c.field)
		}
	}
}

func TestGenerateVAPIDKeys(t *testing.T) {
	t.Parallel()
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := base64.RawURLEncoding.DecodeString(pub)
	k, _ := base64.RawURLEncoding.DecodeString(priv)
	if len(p) != 65 || p[0] != 4 || len(k) != 32 {
		t.Errorf("public %d bytes, private %d bytes", len(p), len(k))
	}
	pub2, _, _ := webpush.GenerateVAPIDKeys()
	if pub2 == pub {
		t.Error("two calls returned the same key")
	}
}

func TestTopic(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                     "",
		"not-a-uuid":                           "",
		"0191e6a2-7b3c-7def-8a12-3456789abcde": "AZHmons8fe-KEjRWeJq83g",
		"00000000-0000-0000-0000-000000000000": "AAAAAAAAAAAAAAAAAAAAAA",
	} {
		if got := webpush.Topic(in); got != want {
			t.Errorf("Topic(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSendAcceptsKeySpellings(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	s := newSender(t, webpush.Config{})
	sub := push.NewSubscription()
	key, _ := base64.RawURLEncoding.DecodeString(sub.P256dh)
	auth, _ := base64.RawURLEncoding.DecodeString(sub.Auth)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
		d := sub.Device()
		d.P256dh, d.Auth = enc.EncodeToString(key), enc.EncodeToString(auth)
		if _, err := s.Send(ctxT(t), d, msg); err != nil {
			t.Errorf("%v", err)
		}
	}
	if rj := push.Rejected(); len(rj) != 0 {
		t.Errorf("rejected %+v", rj)
	}
}
