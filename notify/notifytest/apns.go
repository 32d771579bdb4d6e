package notifytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// APNs is a fake APNs provider API over HTTP/2 and TLS. It checks token
// authentication (an ES256 JWT whose kid is KeyID, iss TeamID, issued within
// the hour, signed by the key in KeyPEM), the path /3/device/<hex token> and
// the apns-* headers, and answers 200 with an apns-id, or APNs's
// {"reason":…} errors.
type APNs struct {
	// URL is the base URL (https://127.0.0.1:port), for the sender's
	// Endpoint.
	URL string
	// KeyPEM is the provider token signing key, an Apple-style .p8 (PKCS#8
	// PEM, P-256); KeyID and TeamID are what its tokens must name. Topic is
	// the accepted bundle id. Read them, do not change them.
	KeyPEM []byte
	KeyID  string
	TeamID string
	Topic  string

	srv      *httptest.Server
	pub      *ecdsa.PublicKey
	received journal[APNsRequest]
	rejected journal[Rejection]
	script   script
	onRecv   callback[APNsRequest]

	mu     sync.Mutex
	topics map[string]bool
	// tokens holds the issue time of each provider token verified.
	tokens verifiedTokens[time.Time]
}

// APNsOpts sets an APNs fake's credentials. Zero fields get defaults.
type APNsOpts struct {
	// Key is the public half of the provider key tokens must be signed with.
	// Defaults to a fresh key, whose private half is in APNs.KeyPEM.
	Key *ecdsa.PublicKey
	// KeyID defaults to "NOTIFYTEST", TeamID to "TEAMTEST00", Topic to
	// "org.tendhealth.tend".
	KeyID, TeamID, Topic string
}

// APNsRequest is a notification the fake APNs accepted as well formed.
type APNsRequest struct {
	// Token is the device token of the path.
	Token string
	// Header holds the apns-* request headers (authorization is checked, not
	// kept).
	Header http.Header
	// Payload is the JSON body.
	Payload []byte
	// Status is what the fake answered: 200, or a scripted status.
	Status int
	// ApnsID is the apns-id answered.
	ApnsID string
	// Time is when the request arrived.
	Time time.Time
}

// NewAPNs starts a fake APNs on 127.0.0.1 over TLS with HTTP/2. opts may be
// nil. Close it when done; use Client for an HTTP client that trusts it.
func NewAPNs(opts *APNsOpts) *APNs {
	var o APNsOpts
	if opts != nil {
		o = *opts
	}
	a := &APNs{
		KeyID:  defaultString(o.KeyID, "NOTIFYTEST"),
		TeamID: defaultString(o.TeamID, "TEAMTEST00"),
		Topic:  defaultString(o.Topic, "org.tendhealth.tend"),
		pub:    o.Key,
	}
	if a.pub == nil {
		pemKey, key, err := GenerateAPNsKey()
		if err != nil {
			panic("notifytest: " + err.Error()) // crypto/rand does not fail
		}
		a.KeyPEM, a.pub = pemKey, &key.PublicKey
	}
	a.topics = map[string]bool{a.Topic: true}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.EnableHTTP2 = true
	a.srv.StartTLS()
	a.URL = a.srv.URL
	return a
}

func defaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// GenerateAPNsKey returns a new provider token key as Apple hands it out: a
// .p8 file, PKCS#8 PEM of a P-256 key.
func GenerateAPNsKey() (pemBytes []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate APNs key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal APNs key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), key, nil
}

// Close shuts the server down.
func (a *APNs) Close() { a.srv.Close() }

// Client returns an HTTP/2 client that trusts the fake's certificate.
func (a *APNs) Client() *http.Client { return a.srv.Client() }

// AllowTopic makes the fake accept another apns-topic.
func (a *APNs) AllowTopic(topic string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.topics[topic] = true
}

// Script queues responses for notifications to the device token, answered
// in order before the fallback 200. Responses queued for "" apply to any
// token once its own queue is empty.
func (a *APNs) Script(token string, responses ...Response) { a.script.add(token, responses...) }

// OnReceive sets a function called with every well-formed notification,
// after it is recorded and before the response is written (so it returns
// before the sender's Send does; keep it short); nil removes it.
func (a *APNs) OnReceive(f func(APNsRequest)) { a.onRecv.set(f) }

// Received returns the well-formed notifications so far.
func (a *APNs) Received() []APNsRequest { return a.received.all() }

// Rejected returns the requests refused, with APNs's reason.
func (a *APNs) Rejected() []Rejection { return a.rejected.all() }

// Wait returns the well-formed notifications once there are at least n, or
// ctx's error with those received so far.
func (a *APNs) Wait(ctx context.Context, n int) ([]APNsRequest, error) {
	return a.received.wait(ctx, n)
}

// APNsError returns APNs's error response for a status and reason
// ("BadDeviceToken", "TooManyRequests", …). A 410 carries the timestamp,
// in milliseconds, since which the token is invalid (now).
func APNsError(status int, reason string) Response {
	body := map[string]any{"reason": reason}
	if status == http.StatusGone {
		body["timestamp"] = time.Now().UnixMilli()
	}
	b, _ := json.Marshal(body)
	return Response{Status: status, Body: string(b)}
}

func (a *APNs) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	token, hasPath := strings.CutPrefix(r.URL.Path, "/3/device/")
	apnsID := r.Header.Get("apns-id")
	if apnsID == "" {
		apnsID = uuid.NewString()
	}
	w.Header().Set("apns-id", apnsID)
	reject := func(status int, reason string) {
		a.rejected.add(Rejection{Key: token, Status: status, Reason: reason, Time: now})
		APNsError(status, reason).write(w, "application/json")
	}
	switch {
	case r.ProtoMajor != 2:
		reject(http.StatusBadRequest, "HTTP/2 required")
		return
	case r.Method != http.MethodPost:
		reject(http.StatusMethodNotAllowed, "MethodNotAllowed")
		return
	case !hasPath:
		reject(http.StatusNotFound, "BadPath")
		return
	case token == "":
		reject(http.StatusBadRequest, "MissingDeviceToken")
		return
	}
	if reason := a.checkAuth(r.Header.Get("authorization"), now); reason != "" {
		reject(http.StatusForbidden, reason)
		return
	}
	if status, reason := a.checkHeaders(r.Header); reason != "" {
		reject(status, reason)
		return
	}
	if b, err := hex.DecodeString(token); err != nil || len(b) < 32 {
		reject(http.StatusBadRequest, "BadDeviceToken")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4097))
	if err != nil {
		reject(http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	switch {
	case len(body) == 0:
		reject(http.StatusBadRequest, "PayloadEmpty")
		return
	case len(body) > 4096:
		reject(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
		return
	}
	if reason := checkAPNsPayload(body, r.Header.Get("apns-push-type")); reason != "" {
		reject(http.StatusBadRequest, reason)
		return
	}

	resp, ok := a.script.next(token)
	if !ok {
		resp = Response{Status: http.StatusOK}
	}
	req := APNsRequest{Token: token, Header: http.Header{}, Payload: body, Status: resp.Status, ApnsID: apnsID, Time: now}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "apns-") {
			req.Header[k] = append([]string(nil), v...)
		}
	}
	a.received.add(req)
	a.onRecv.call(req)
	resp.hold(r.Context())
	resp.write(w, "application/json")
}

// checkAuth verifies a provider authentication token and returns the APNs
// reason for a failure, "" for none.
func (a *APNs) checkAuth(authz string, now time.Time) string {
	bearer, ok := strings.CutPrefix(authz, "bearer ")
	if !ok {
		bearer, ok = strings.CutPrefix(authz, "Bearer ")
	}
	if !ok || bearer == "" {
		return "MissingProviderToken"
	}
	if iat, ok := a.tokens.get(bearer); ok {
		return tokenAge(iat, now)
	}
	tok, err := jwt.Parse(bearer, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != a.KeyID {
			return nil, errors.New("kid")
		}
		return a.pub, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithIssuer(a.TeamID), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return "InvalidProviderToken"
	}
	iat, err := tok.Claims.GetIssuedAt()
	if err != nil || iat == nil {
		return "InvalidProviderToken"
	}
	a.tokens.put(bearer, iat.Time)
	return tokenAge(iat.Time, now)
}

// tokenAge is the APNs reason for a verified provider token issued at iat,
// "" for none: a token older than an hour has expired.
func tokenAge(iat, now time.Time) string {
	if now.Sub(iat) > time.Hour {
		return "ExpiredProviderToken"
	}
	return ""
}

// checkHeaders checks the apns-* headers and returns the status and APNs
// reason of a failure.
func (a *APNs) checkHeaders(h http.Header) (int, string) {
	topic := h.Get("apns-topic")
	a.mu.Lock()
	allowed := a.topics[topic]
	a.mu.Unlock()
	switch {
	case topic == "":
		return http.StatusBadRequest, "MissingTopic"
	case !allowed:
		return http.StatusBadRequest, "DeviceTokenNotForTopic"
	}
	switch h.Get("apns-push-type") {
	case "alert", "background", "voip", "complication", "fileprovider", "mdm", "location", "liveactivity", "pushtotalk":
	default:
		return http.StatusBadRequest, "InvalidPushType"
	}
	switch h.Get("apns-priority") {
	case "", "5", "10", "1":
	default:
		return http.StatusBadRequest, "BadPriority"
	}
	if e := h.Get("apns-expiration"); e != "" {
		if _, err := strconv.ParseInt(e, 10, 64); err != nil {
			return http.StatusBadRequest, "BadExpirationDate"
		}
	}
	if c := h.Get("apns-collapse-id"); len(c) > 64 {
		return http.StatusBadRequest, "BadCollapseId"
	}
	if id := h.Get("apns-id"); id != "" {
		if u, err := uuid.Parse(id); err != nil || !strings.EqualFold(u.String(), id) {
			return http.StatusBadRequest, "BadMessageId"
		}
	}
	return 0, ""
}

// checkAPNsPayload checks the JSON body: an object with an "aps" dictionary,
// which for an alert push holds an alert.
func checkAPNsPayload(body []byte, pushType string) string {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(body, &p); err != nil {
		return "BadPayload: not a JSON object"
	}
	var aps map[string]json.RawMessage
	if err := json.Unmarshal(p["aps"], &aps); err != nil || aps == nil {
		return "BadPayload: no aps dictionary"
	}
	if _, ok := aps["alert"]; pushType == "alert" && !ok {
		return "BadPayload: alert push without aps.alert"
	}
	return ""
}
