package notifytest

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tendhealth/tend/notify"
)

// WebPush is a fake RFC 8030 push service. Subscriptions come from
// NewSubscription; a POST to one must carry a valid VAPID Authorization
// (RFC 8292), a TTL header, Content-Encoding: aes128gcm and a body that
// decrypts with the subscription's keys (RFC 8291) as exactly one record
// shorter than its declared record size. A body over the size limit
// (4096 bytes, the least RFC 8030 lets a push service accept; see
// LimitBody) is answered 413. Accepted messages are answered 201 Created
// with a Location.
type WebPush struct {
	// URL is the service's base URL (http://127.0.0.1:port).
	URL string

	srv      *httptest.Server
	received journal[WebPushRequest]
	rejected journal[Rejection]
	script   script
	onRecv   callback[WebPushRequest]

	mu      sync.Mutex
	subs    map[string]*pushSubscription // by URL path
	vapid   string                       // required VAPID public key, raw base64url; "" accepts any
	maxBody int                          // largest body accepted, in bytes
	counter int
	tokens  verifiedTokens[vapidClaims] // by Authorization and audience
}

type pushSubscription struct {
	endpoint     string
	priv         *ecdh.PrivateKey
	auth         []byte
	unsubscribed bool
}

// Subscription is what a browser's PushSubscription would hand the server.
type Subscription struct {
	// Endpoint is the capability URL to POST messages to.
	Endpoint string
	// P256dh is the subscription's P-256 public key, unpadded base64url.
	P256dh string
	// Auth is the 16-byte authentication secret, unpadded base64url.
	Auth string
}

// Device returns the subscription as a notify.Device.
func (s Subscription) Device() notify.Device {
	return notify.Device{Platform: notify.WebPush, Endpoint: s.Endpoint, P256dh: s.P256dh, Auth: s.Auth}
}

// WebPushRequest is a message the fake push service verified and decrypted.
type WebPushRequest struct {
	// Endpoint is the subscription the message was posted to.
	Endpoint string
	// Header holds the request's TTL, Urgency, Topic, Content-Encoding and
	// Content-Type headers (Authorization is checked, not kept).
	Header http.Header
	// Subject is the VAPID "sub" claim and VAPIDKey the "k" parameter.
	Subject  string
	VAPIDKey string
	// Payload is the decrypted message.
	Payload []byte
	// BodySize is the length of the encrypted body as posted, and
	// RecordSize the record size ("rs") its aes128gcm header declares.
	BodySize   int
	RecordSize int
	// Status is what the fake answered: 201, or a scripted status.
	Status int
	// Time is when the request arrived.
	Time time.Time
}

// NewWebPush starts a fake push service on 127.0.0.1 (plain HTTP). Close it
// when done.
func NewWebPush() *WebPush {
	w := &WebPush{subs: map[string]*pushSubscription{}, maxBody: DefaultMaxBody}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	w.URL = w.srv.URL
	return w
}

// Close shuts the server down.
func (w *WebPush) Close() { w.srv.Close() }

// NewSubscription creates a subscription with a fresh P-256 key pair and
// authentication secret; the fake keeps the private key to decrypt.
func (w *WebPush) NewSubscription() Subscription {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic("notifytest: generate P-256 key: " + err.Error()) // crypto/rand does not fail
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)

	w.mu.Lock()
	w.counter++
	path := fmt.Sprintf("/push/%d-%s", w.counter, base64.RawURLEncoding.EncodeToString(auth[:6]))
	sub := &pushSubscription{endpoint: w.URL + path, priv: priv, auth: auth}
	w.subs[path] = sub
	w.mu.Unlock()

	return Subscription{
		Endpoint: sub.endpoint,
		P256dh:   base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		Auth:     base64.RawURLEncoding.EncodeToString(auth),
	}
}

// Unsubscribe makes every later message to endpoint answer 410 Gone, as
// when the user revokes the permission.
func (w *WebPush) Unsubscribe(endpoint string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.subs {
		if s.endpoint == endpoint {
			s.unsubscribed = true
		}
	}
}

// DefaultMaxBody is the largest body the fake accepts unless LimitBody
// says otherwise: the 4096 bytes every push service must accept.
const DefaultMaxBody = 4096

// LimitBody makes the service answer 413 Request Entity Too Large to bodies
// over n bytes, as some push services do from about 3 KB; n <= 0 restores
// DefaultMaxBody. Such a request is recorded in Rejected.
func (w *WebPush) LimitBody(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n <= 0 {
		n = DefaultMaxBody
	}
	w.maxBody = n
}

// RequireVAPIDKey makes the service refuse (403) messages signed with any
// VAPID public key but publicKey (base64url), as a push service does for a
// subscription made with that applicationServerKey.
func (w *WebPush) RequireVAPIDKey(publicKey string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.vapid = strings.TrimRight(publicKey, "=")
}

// Script queues responses for messages to endpoint, answered in order
// after verification and before the fallback 201. Responses queued for ""
// apply to any endpoint once its own queue is empty.
func (w *WebPush) Script(endpoint string, responses ...Response) {
	w.script.add(endpoint, responses...)
}

// OnReceive sets a function called with every verified message, after it is
// recorded and before the response is written (so it returns before the
// sender's Send does; keep it short); nil removes it. It runs on the
// server's goroutine.
func (w *WebPush) OnReceive(f func(WebPushRequest)) { w.onRecv.set(f) }

// Received returns the verified messages so far.
func (w *WebPush) Received() []WebPushRequest { return w.received.all() }

// Rejected returns the requests that failed verification.
func (w *WebPush) Rejected() []Rejection { return w.rejected.all() }

// Wait returns the verified messages once there are at least n, or ctx's
// error with those received so far.
func (w *WebPush) Wait(ctx context.Context, n int) ([]WebPushRequest, error) {
	return w.received.wait(ctx, n)
}

func (w *WebPush) serve(rw http.ResponseWriter, r *http.Request) {
	now := time.Now()
	w.mu.Lock()
	sub := w.subs[r.URL.Path]
	wantKey := w.vapid
	maxBody := w.maxBody
	var gone bool
	if sub != nil {
		gone = sub.unsubscribed
	}
	w.mu.Unlock()

	reject := func(status int, reason string) {
		key := ""
		if sub != nil {
			key = sub.endpoint
		}
		w.rejected.add(Rejection{Key: key, Status: status, Reason: reason, Time: now})
		http.Error(rw, reason, status)
	}
	if r.Method != http.MethodPost {
		reject(http.StatusMethodNotAllowed, "method must be POST")
		return
	}
	if sub == nil {
		reject(http.StatusNotFound, "unknown subscription")
		return
	}
	subject, vapidKey, status, err := w.verifyVAPID(r.Header.Get("Authorization"), "http://"+r.Host, now)
	if err != nil {
		reject(status, err.Error())
		return
	}
	if wantKey != "" && vapidKey != wantKey {
		reject(http.StatusForbidden, "VAPID key does not match the subscription's applicationServerKey")
		return
	}
	if err := checkPushHeaders(r.Header); err != nil {
		reject(http.StatusBadRequest, err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(maxBody)+1))
	if err != nil {
		reject(http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if len(body) > maxBody {
		reject(http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxBody))
		return
	}
	rs, err := singleRecord(body)
	if err != nil {
		reject(http.StatusBadRequest, err.Error())
		return
	}
	plain, err := Decrypt(sub.priv, sub.auth, body)
	if err != nil {
		reject(http.StatusBadRequest, err.Error())
		return
	}

	resp, ok := w.script.next(sub.endpoint)
	if !ok {
		resp = Response{Status: http.StatusCreated}
	}
	if gone {
		resp = Response{Status: http.StatusGone}
	}
	req := WebPushRequest{
		Endpoint:   sub.endpoint,
		Header:     http.Header{},
		Subject:    subject,
		VAPIDKey:   vapidKey,
		Payload:    plain,
		BodySize:   len(body),
		RecordSize: rs,
		Status:     resp.Status,
		Time:       now,
	}
	for _, h := range []string{"TTL", "Urgency", "Topic", "Content-Encoding", "Content-Type"} {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[http.CanonicalHeaderKey(h)] = append([]string(nil), v...)
		}
	}
	w.received.add(req)
	if resp.Status == http.StatusCreated {
		w.mu.Lock()
		w.counter++
		id := w.counter
		w.mu.Unlock()
		rw.Header().Set("Location", fmt.Sprintf("%s/message/%d", w.URL, id))
	}
	w.onRecv.call(req)
	resp.hold(r.Context())
	resp.write(rw, "application/json")
}

// singleRecord checks RFC 8291 §4: the body holds exactly one record, and
// the declared record size is greater than that record (plaintext,
// delimiter, padding and the 16-byte tag). It returns the record size.
func singleRecord(body []byte) (int, error) {
	if len(body) < 21 || len(body) <= 21+int(body[20]) {
		return 0, errors.New("aes128gcm: body has no record")
	}
	header := 21 + int(body[20])
	rs := int(binary.BigEndian.Uint32(body[16:20]))
	if record := len(body) - header; record >= rs {
		return 0, fmt.Errorf("aes128gcm: record of %d bytes is not shorter than rs %d (Web Push allows one record)", record, rs)
	}
	return rs, nil
}

// checkPushHeaders checks the RFC 8030/8291 request headers.
func checkPushHeaders(h http.Header) error {
	ttl := h.Get("TTL")
	if ttl == "" {
		return errors.New("missing TTL header")
	}
	if n, err := strconv.ParseInt(ttl, 10, 64); err != nil || n < 0 {
		return errors.New("TTL is not a non-negative integer")
	}
	if ce := h.Get("Content-Encoding"); ce != "aes128gcm" {
		return errors.New("Content-Encoding must be aes128gcm")
	}
	switch h.Get("Urgency") {
	case "", "very-low", "low", "normal", "high":
	default:
		return errors.New("invalid Urgency header")
	}
	if t := h.Get("Topic"); t != "" {
		if len(t) > 32 {
			return errors.New("topic header longer than 32 characters")
		}
		if _, err := base64.RawURLEncoding.DecodeString(t); err != nil {
			return errors.New("topic header is not base64url")
		}
	}
	return nil
}

// vapidClaims are what a verified VAPID Authorization says.
type vapidClaims struct {
	subject, key string
	exp          time.Time
}

// verifyVAPID checks an RFC 8292 "vapid t=<jwt>, k=<key>" Authorization and
// returns the subject and key, or the status to answer and why. The
// signature of an Authorization seen before is not checked again; its
// expiry is.
func (w *WebPush) verifyVAPID(authz, audience string, now time.Time) (subject, key string, status int, err error) {
	cacheKey := audience + " " + authz
	c, ok := w.tokens.get(cacheKey)
	if !ok {
		if c, status, err = parseVAPID(authz, audience, now); err != nil {
			return "", "", status, err
		}
		w.tokens.put(cacheKey, c)
	}
	switch {
	case !now.Before(c.exp):
		return "", "", http.StatusUnauthorized, errors.New("VAPID JWT: token is expired")
	case c.exp.After(now.Add(24 * time.Hour)):
		return "", "", http.StatusForbidden, errors.New("VAPID exp more than 24 hours ahead")
	}
	return c.subject, c.key, 0, nil
}

// parseVAPID checks the signature and claims of a VAPID Authorization.
func parseVAPID(authz, audience string, now time.Time) (vapidClaims, int, error) {
	scheme, params, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "vapid") {
		return vapidClaims{}, http.StatusUnauthorized, errors.New(`authorization must be "vapid t=…, k=…"`)
	}
	var t, k string
	for p := range strings.SplitSeq(params, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch name {
		case "t":
			t = val
		case "k":
			k = val
		}
	}
	if t == "" || k == "" {
		return vapidClaims{}, http.StatusUnauthorized, errors.New("VAPID Authorization needs t and k")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k, "="))
	if err != nil {
		return vapidClaims{}, http.StatusUnauthorized, errors.New("VAPID k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return vapidClaims{}, http.StatusUnauthorized, errors.New("VAPID k is not an uncompressed P-256 key")
	}
	tok, err := jwt.Parse(t, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return vapidClaims{}, http.StatusUnauthorized, fmt.Errorf("VAPID JWT: %w", err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	aud, _ := claims.GetAudience()
	if len(aud) != 1 || aud[0] != audience {
		return vapidClaims{}, http.StatusForbidden, fmt.Errorf("VAPID aud %q is not the push service origin %q", aud, audience)
	}
	exp, _ := claims.GetExpirationTime()
	sub, _ := claims.GetSubject()
	switch {
	case strings.HasPrefix(sub, "mailto:"):
		if _, err := mail.ParseAddress(strings.TrimPrefix(sub, "mailto:")); err != nil {
			return vapidClaims{}, http.StatusForbidden, fmt.Errorf("VAPID sub %q is not a mailto: address", sub)
		}
	case strings.HasPrefix(sub, "https:"):
	default:
		return vapidClaims{}, http.StatusForbidden, fmt.Errorf("VAPID sub %q is not a mailto or https URL", sub)
	}
	return vapidClaims{subject: sub, key: strings.TrimRight(k, "="), exp: exp.Time}, 0, nil
}
