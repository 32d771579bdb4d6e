package notifytest_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	webpushgo "github.com/SherClockHolmes/webpush-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tendhealth/tend/notify/notifytest"
)

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestDecryptRFC8291Vector decrypts the example message of RFC 8291 §5.
func TestDecryptRFC8291Vector(t *testing.T) {
	t.Parallel()
	priv, err := ecdh.P256().NewPrivateKey(b64(t, "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()); got != "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4" {
		t.Fatalf("ua_public %s", got)
	}
	auth := b64(t, "BTBZMqHH6r4Tts7J_aSIgg")
	body := b64(t, "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
	plain, err := notifytest.Decrypt(priv, auth, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != "When I grow up, I want to be a watermelon" {
		t.Errorf("plaintext %q", plain)
	}

	tampered := bytes.Clone(body)
	tampered[len(tampered)-1] ^= 1
	if _, err := notifytest.Decrypt(priv, auth, tampered); err == nil {
		t.Error("a tampered body decrypted")
	}
	wrongAuth := bytes.Clone(auth)
	wrongAuth[0] ^= 1
	if _, err := notifytest.Decrypt(priv, wrongAuth, body); err == nil {
		t.Error("decrypted with the wrong auth secret")
	}
	if _, err := notifytest.Decrypt(priv, auth, body[:30]); err == nil {
		t.Error("a truncated header decrypted")
	}
}

// doFunc adapts a function to webpush-go's HTTPClient.
type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// sendRaw sends with webpush-go directly, letting edit alter the request.
func sendRaw(t *testing.T, sub notifytest.Subscription, subscriber string, edit func(*http.Request)) int {
	t.Helper()
	priv, pub, err := webpushgo.GenerateVAPIDKeys() // webpush-go returns private first
	if err != nil {
		t.Fatal(err)
	}
	resp, err := webpushgo.SendNotificationWithContext(ctxT(t), []byte(`{"id":"1"}`), &webpushgo.Subscription{
		Endpoint: sub.Endpoint, Keys: webpushgo.Keys{P256dh: sub.P256dh, Auth: sub.Auth},
	}, &webpushgo.Options{
		HTTPClient: doFunc(func(r *http.Request) (*http.Response, error) {
			if edit != nil {
				edit(r)
			}
			return http.DefaultClient.Do(r)
		}),
		Subscriber: subscriber, TTL: 60, VAPIDPublicKey: pub, VAPIDPrivateKey: priv,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestWebPushVerifies(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()

	signed := func(claims jwt.MapClaims) func(*http.Request) {
		return func(r *http.Request) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(k)
			pub, _ := k.PublicKey.Bytes()
			r.Header.Set("Authorization", "vapid t="+tok+", k="+base64.RawURLEncoding.EncodeToString(pub))
		}
	}
	// setRS rewrites the record size of the aes128gcm header (not covered
	// by the AEAD, so the body still decrypts).
	setRS := func(rs uint32) func(*http.Request) {
		return func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			binary.BigEndian.PutUint32(b[16:20], rs)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}
	}
	cases := []struct {
		name       string
		subscriber string
		edit       func(*http.Request)
		status     int
		reason     string
	}{
		{"no authorization", "ops@tend.example", func(r *http.Request) { r.Header.Del("Authorization") }, 401, "Authorization"},
		{"double mailto", "mailto:ops@tend.example", nil, 403, "sub"},
		{"no TTL", "ops@tend.example", func(r *http.Request) { r.Header.Del("TTL") }, 400, "TTL"},
		{"aesgcm", "ops@tend.example", func(r *http.Request) { r.Header.Set("Content-Encoding", "aesgcm") }, 400, "Content-Encoding"},
		{"bad urgency", "ops@tend.example", func(r *http.Request) { r.Header.Set("Urgency", "urgent") }, 400, "Urgency"},
		{"long topic", "ops@tend.example", func(r *http.Request) { r.Header.Set("Topic", strings.Repeat("a", 33)) }, 400, "Topic"},
		{"wrong audience", "", signed(jwt.MapClaims{"aud": "https://elsewhere.example", "sub": "mailto:a@b.example", "exp": time.Now().Add(time.Hour).Unix()}), 403, "aud"},
		{"exp too far", "", signed(jwt.MapClaims{"aud": push.URL, "sub": "mailto:a@b.example", "exp": time.Now().Add(25 * time.Hour).Unix()}), 403, "exp"},
		{"expired", "", signed(jwt.MapClaims{"aud": push.URL, "sub": "mailto:a@b.example", "exp": time.Now().Add(-time.Minute).Unix()}), 401, "expired"},
		{"no exp", "", signed(jwt.MapClaims{"aud": push.URL, "sub": "mailto:a@b.example"}), 401, "exp"},
		{"record as long as rs", "ops@tend.example", setRS(4096 - 86), 400, "rs"},
	}
	for i, c := range cases {
		sub := push.NewSubscription()
		if got := sendRaw(t, sub, c.subscriber, c.edit); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
		rj := push.Rejected()
		if len(rj) != i+1 {
			t.Fatalf("%s: %d rejections", c.name, len(rj))
		}
		if r := rj[i]; r.Key != sub.Endpoint || r.Status != c.status || !strings.Contains(strings.ToLower(r.Reason), strings.ToLower(c.reason)) {
			t.Errorf("%s: rejection %+v, want reason about %q", c.name, r, c.reason)
		}
	}
	if n := len(push.Received()); n != 0 {
		t.Errorf("%d requests recorded as received", n)
	}

	// Valid requests: https subject, and a plain address (webpush-go adds mailto:).
	sub := push.NewSubscription()
	if got := sendRaw(t, sub, "https://tend.example/contact", nil); got != 201 {
		t.Errorf("valid request: %d (%+v)", got, push.Rejected())
	}
	if got := sendRaw(t, sub, "ops@tend.example", nil); got != 201 {
		t.Errorf("valid request: %d", got)
	}
	got, err := push.Wait(ctxT(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Payload) != `{"id":"1"}` || got[1].Subject != "mailto:ops@tend.example" || got[0].Header.Get("TTL") != "60" {
		t.Errorf("received %+v", got)
	}
	if got[0].BodySize != 4096 || got[0].RecordSize != 4096 { // webpush-go's default record
		t.Errorf("body %d bytes, rs %d; want 4096 and 4096", got[0].BodySize, got[0].RecordSize)
	}

	// A body over the limit is refused as too large, before decryption.
	push.LimitBody(4000)
	sub = push.NewSubscription()
	if got := sendRaw(t, sub, "ops@tend.example", nil); got != http.StatusRequestEntityTooLarge {
		t.Errorf("body over LimitBody: %d, want 413", got)
	}
	if rj := push.Rejected(); rj[len(rj)-1].Reason != "body over 4000 bytes" {
		t.Errorf("rejection %+v", rj[len(rj)-1])
	}
}

func TestWebPushUnknownAndUnsubscribed(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	sub := push.NewSubscription()
	unknown := sub
	unknown.Endpoint = push.URL + "/push/nope"
	if got := sendRaw(t, unknown, "ops@tend.example", nil); got != 404 {
		t.Errorf("unknown endpoint: %d", got)
	}
	push.Unsubscribe(sub.Endpoint)
	if got := sendRaw(t, sub, "ops@tend.example", nil); got != 410 {
		t.Errorf("unsubscribed: %d", got)
	}
	if r := push.Received(); len(r) != 1 || r[0].Status != 410 {
		t.Errorf("received %+v", r)
	}
}

func TestWebPushScriptOnReceiveAndWait(t *testing.T) {
	t.Parallel()
	push := notifytest.NewWebPush()
	defer push.Close()
	a, b := push.NewSubscription(), push.NewSubscription()
	push.Script(a.Endpoint, notifytest.Response{Status: 429, RetryAfter: "5"}, notifytest.Response{Status: 503})
	push.Script("", notifytest.Response{Status: 500})
	seen := make(chan int, 10)
	push.OnReceive(func(r notifytest.WebPushRequest) { seen <- r.Status })

	var statuses []int
	for _, s := range []notifytest.Subscription{a, a, a, b, b} {
		statuses = append(statuses, sendRaw(t, s, "ops@tend.example", nil))
	}
	if want := []int{429, 503, 500, 201, 201}; !equalInts(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	for range 5 {
		select {
		case <-seen:
		case <-ctxT(t).Done():
			t.Fatal("OnReceive not called")
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	got, err := push.Wait(ctx, 6)
	if !errors.Is(err, context.DeadlineExceeded) || len(got) != 5 {
		t.Errorf("Wait beyond what arrived: %d, %v", len(got), err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFCMFake(t *testing.T) {
	t.Parallel()
	f := notifytest.NewFCM()
	defer f.Close()
	post := func(path, auth, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, f.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const path = "/v1/projects/p1/messages:send"
	cases := []struct {
		name, path, auth, body string
		status                 int
	}{
		{"ok", path, "", `{"message":{"token":"t1","android":{"priority":"high","ttl":"3600s"}}}`, 200},
		{"authorized", path, "Bearer " + notifytest.FCMAccessToken, `{"message":{"token":"t1"}}`, 200},
		{"bad token", path, "Bearer nope", `{"message":{"token":"t1"}}`, 401},
		{"unknown field", path, "", `{"message":{"token":"t1","priority":"high"}}`, 400},
		{"no target", path, "", `{"message":{"data":{"a":"b"}}}`, 400},
		{"bad ttl", path, "", `{"message":{"token":"t1","android":{"ttl":"1h"}}}`, 400},
		{"non-string data", path, "", `{"message":{"token":"t1","data":{"n":1}}}`, 400},
		{"wrong path", "/v1/messages:send", "", `{"message":{"token":"t1"}}`, 404},
	}
	for _, c := range cases {
		status, body := post(c.path, c.auth, c.body)
		if status != c.status {
			t.Errorf("%s: %d %s", c.name, status, body)
		}
		if status == 200 && !strings.HasPrefix(body, `{"name":"projects/p1/messages/`) {
			t.Errorf("%s: body %s", c.name, body)
		}
	}
	got := f.Received()
	if len(got) != 2 || got[0].Project != "p1" || got[0].Message.Android.TTL != "3600s" || got[0].Authorized || !got[1].Authorized {
		t.Errorf("received %+v", got)
	}
	if n := len(f.Rejected()); n != 6 {
		t.Errorf("%d rejections, want 6", n)
	}

	f.Script("t2", notifytest.FCMError(404, "UNREGISTERED"))
	status, body := post(path, "", `{"message":{"token":"t2"}}`)
	if status != 404 || !strings.Contains(body, `"errorCode":"UNREGISTERED"`) || !strings.Contains(body, `"status":"NOT_FOUND"`) {
		t.Errorf("scripted: %d %s", status, body)
	}
}

func TestAPNsFake(t *testing.T) {
	t.Parallel()
	a := notifytest.NewAPNs(nil)
	defer a.Close()
	key := parseP8(t, a.KeyPEM)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	token := strings.Repeat("ab", 32)

	bearer := func(k *ecdsa.PrivateKey, kid, iss string, iat time.Time) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": iss, "iat": iat.Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return "bearer " + s
	}
	good := bearer(key, a.KeyID, a.TeamID, time.Now())
	post := func(client *http.Client, path, auth string, h map[string]string, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, a.URL+path, strings.NewReader(body))
		req.Header.Set("authorization", auth)
		req.Header.Set("apns-topic", a.Topic)
		req.Header.Set("apns-push-type", "alert")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const alert = `{"aps":{"alert":{"title":"t","body":"b"}}}`
	cases := []struct {
		name, path, auth string
		h                map[string]string
		body             string
		status           int
		reason           string
	}{
		{"ok", "/3/device/" + token, good, map[string]string{"apns-priority": "10", "apns-expiration": strconv.FormatInt(time.Now().Unix(), 10)}, alert, 200, ""},
		{"no token", "/3/device/" + token, "", nil, alert, 403, "MissingProviderToken"},
		{"wrong key", "/3/device/" + token, bearer(other, a.KeyID, a.TeamID, time.Now()), nil, alert, 403, "InvalidProviderToken"},
		{"wrong kid", "/3/device/" + token, bearer(key, "OTHERKEY00", a.TeamID, time.Now()), nil, alert, 403, "InvalidProviderToken"},
		{"wrong team", "/3/device/" + token, bearer(key, a.KeyID, "OTHERTEAM0", time.Now()), nil, alert, 403, "InvalidProviderToken"},
		{"old token", "/3/device/" + token, bearer(key, a.KeyID, a.TeamID, time.Now().Add(-2*time.Hour)), nil, alert, 403, "ExpiredProviderToken"},
		{"wrong topic", "/3/device/" + token, good, map[string]string{"apns-topic": "org.other"}, alert, 400, "DeviceTokenNotForTopic"},
		{"bad priority", "/3/device/" + token, good, map[string]string{"apns-priority": "7"}, alert, 400, "BadPriority"},
		{"bad apns-id", "/3/device/" + token, good, map[string]string{"apns-id": "nope"}, alert, 400, "BadMessageId"},
		{"long collapse id", "/3/device/" + token, good, map[string]string{"apns-collapse-id": strings.Repeat("c", 65)}, alert, 400, "BadCollapseId"},
		{"not hex", "/3/device/" + strings.Repeat("zz", 32), good, nil, alert, 400, "BadDeviceToken"},
		{"no alert", "/3/device/" + token, good, nil, `{"aps":{}}`, 400, "BadPayload"},
		{"bad path", "/2/device/" + token, good, nil, alert, 404, "BadPath"},
	}
	for _, c := range cases {
		status, body := post(a.Client(), c.path, c.auth, c.h, c.body)
		if status != c.status || !strings.Contains(body, c.reason) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.reason)
		}
	}
	if got := a.Received(); len(got) != 1 || got[0].Token != token || got[0].Header.Get("apns-priority") != "10" {
		t.Errorf("received %+v", got)
	}

	// HTTP/1.1 is refused.
	h1 := a.Client()
	tr := h1.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if status, body := post(&http.Client{Transport: tr}, "/3/device/"+token, good, nil, alert); status != 400 || !strings.Contains(body, "HTTP/2") {
		t.Errorf("HTTP/1.1: %d %s", status, body)
	}

	a.Script(token, notifytest.APNsError(410, "Unregistered"))
	if status, body := post(a.Client(), "/3/device/"+token, good, nil, alert); status != 410 || !strings.Contains(body, `"timestamp":`) {
		t.Errorf("scripted: %d %s", status, body)
	}
}

func parseP8(t *testing.T, p8 []byte) *ecdsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(p8)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatal("KeyPEM is not a PKCS#8 PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}
