// Package webpush delivers notifications to browsers through the Web Push
// protocol: RFC 8030 delivery, RFC 8291 message encryption (aes128gcm) and
// RFC 8292 VAPID authentication.
//
// A Sender is safe for concurrent use:
//
//	s, err := webpush.New(webpush.Config{
//		PublicKey:  os.Getenv("TEND_VAPID_PUBLIC_KEY"),
//		PrivateKey: os.Getenv("TEND_VAPID_PRIVATE_KEY"),
//		Subject:    "mailto:ops@example.org",
//	})
//	res, err := s.Send(ctx, device, msg) // err is a *notify.Error
//
// The encrypted payload is the JSON object
// {"id","type","title","body","urgency","data"} and nothing else: the browser's
// service worker fetches details over the API.
// It is padded to a few fixed sizes (see PadBlock and BodySize), far below
// the 4096 bytes every push service accepts.
//
// A push costs one key agreement with the subscription's key and no
// signature: the VAPID token is signed once per push service origin and
// reused until an hour before it expires (it is valid for 12 hours).
package webpush

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/notify"
)

// DefaultTimeout bounds one delivery when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// MaxPayload is the largest payload, in bytes of JSON, that fits the
// 4096-byte body every push service must accept (RFC 8030 §7.2): 4096 less
// the aes128gcm header (86), the padding delimiter (1) and the GCM tag (16).
const MaxPayload = 3993

// Record sizing. The body is one aes128gcm record (RFC 8291 §4) whose
// plaintext — the payload, the 0x02 delimiter and zero padding — is padded up
// to a multiple of PadBlock bytes, and to at least MinPadded, so the push
// service and the network see one of a few lengths, not the payload's.
// Every message Tend sends today (about 240 to 320 bytes of JSON) pads to
// 512, a body of 614 bytes: an observer cannot tell an alert from a
// catch-up, or a critical alert from a low one, by its size. A padded
// plaintext never exceeds MaxPayload+1, so no body exceeds 4096 bytes.
const (
	PadBlock  = 256
	MinPadded = 512
)

// bodyOverhead is what the body adds to the padded plaintext: the aes128gcm
// header (salt 16, rs 4, idlen 1, the sender's P-256 key 65) and the GCM tag
// (16).
const bodyOverhead = 16 + 4 + 1 + 65 + 16

// BodySize returns the size in bytes of the encrypted body Send posts for a
// payload of n bytes (n at most MaxPayload). It is also the record size
// ("rs") Send declares: the body is exactly rs bytes, so the single record
// (rs less the 86-byte header) is shorter than rs as RFC 8291 §4 requires.
func BodySize(n int) int {
	padded := max(MinPadded, (n+1+PadBlock-1)/PadBlock*PadBlock)
	return min(padded, MaxPayload+1) + bodyOverhead
}

// Config configures a Sender.
type Config struct {
	// PublicKey is the VAPID application server public key: an uncompressed
	// P-256 point in base64url (padded or not), as printed by
	// GenerateVAPIDKeys. Required.
	PublicKey string
	// PrivateKey is the matching VAPID private key: the 32-byte P-256 scalar
	// in base64url. Required; it must match PublicKey.
	PrivateKey string
	// Subject is the VAPID "sub" claim push services use to contact the
	// operator: a "mailto:" or "https:" URL. A bare e-mail address is taken
	// as mailto. Required.
	Subject string
	// HTTPClient sends the requests. Defaults to a client that does not follow
	// redirects (an endpoint may only point at an allowed host) and whose
	// timeout is Timeout.
	HTTPClient *http.Client
	// Timeout bounds each Send, connection and response included. Defaults to
	// 10 seconds (DefaultTimeout).
	Timeout time.Duration
}

// Sender delivers notify.Messages to Web Push subscriptions. It implements
// notify.Sender.
type Sender struct {
	vapid   *vapidSigner
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

var _ notify.Sender = (*Sender)(nil)

// New validates cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	pub, err := decodePublicKey(cfg.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("webpush: VAPID public key: %w", err)
	}
	priv, err := decodePrivateKey(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("webpush: VAPID private key: %w", err)
	}
	if !priv.PublicKey().Equal(pub) {
		return nil, errors.New("webpush: VAPID private key does not match the public key")
	}
	sub, err := vapidSubject(cfg.Subject)
	if err != nil {
		return nil, fmt.Errorf("webpush: VAPID subject: %w", err)
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("webpush: negative Timeout")
	}
	timeout := cmp.Or(cfg.Timeout, DefaultTimeout)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{
			Timeout: timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv.Bytes())
	if err != nil {
		return nil, fmt.Errorf("webpush: VAPID private key: %w", err)
	}
	return &Sender{
		vapid: &vapidSigner{key: key, public: base64.RawURLEncoding.EncodeToString(pub.Bytes()), subject: sub,
			tokens: map[string]vapidToken{}},
		client:  client,
		timeout: timeout,
		now:     time.Now,
	}, nil
}

// vapidSubject returns the VAPID "sub" claim for a configured subject: a
// "mailto:" or "https:" URL, a bare e-mail address taken as mailto.
func vapidSubject(subject string) (string, error) {
	switch {
	case strings.HasPrefix(subject, "https:"):
		u, err := url.Parse(subject)
		if err != nil || u.Host == "" {
			return "", errors.New(`must be a "mailto:" or "https:" URL`)
		}
		return subject, nil
	case strings.HasPrefix(subject, "mailto:"):
		addr := strings.TrimPrefix(subject, "mailto:")
		if !strings.Contains(addr, "@") {
			return "", errors.New("mailto: needs an e-mail address")
		}
		return subject, nil
	case strings.Contains(subject, "@") && !strings.Contains(subject, ":"):
		return "mailto:" + subject, nil
	}
	return "", errors.New(`must be a "mailto:" or "https:" URL`)
}

// payload is the decrypted body the service worker receives.
type payload struct {
	ID      string            `json:"id"`
	Type    string            `json:"type"`
	Title   string            `json:"title"`
	Body    string            `json:"body"`
	Urgency notify.Urgency    `json:"urgency"`
	Data    map[string]string `json:"data"`
}

// Payload returns the JSON body Send encrypts for m.
func Payload(m notify.Message) ([]byte, error) {
	data := m.Data
	if data == nil {
		data = map[string]string{}
	}
	return json.Marshal(payload{ID: m.ID, Type: m.Type, Title: m.Title, Body: m.Body, Urgency: m.Urgency, Data: data})
}

// Urgency returns the RFC 8030 Urgency header for u: "high" for critical and
// high, "normal" for medium, "low" for low, "" for an unknown urgency.
func Urgency(u notify.Urgency) string {
	switch u {
	case notify.Critical, notify.High:
		return "high"
	case notify.Medium:
		return "normal"
	case notify.Low:
		return "low"
	}
	return ""
}

// Topic returns the RFC 8030 Topic header for a collapse id: the UUID's 16
// bytes in unpadded base64url (22 characters, within the 32 allowed), or ""
// when collapseID is empty or not a UUID.
func Topic(collapseID string) string {
	if collapseID == "" {
		return ""
	}
	u, err := uuid.Parse(collapseID)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// TTL returns the TTL header value, in whole seconds, for u; never 0, which
// would let a push service drop the message at once.
func TTL(u notify.Urgency) int {
	return max(1, int(u.TTL()/time.Second))
}

// Send encrypts m for the subscription in d, padded as BodySize says, and
// posts it to d.Endpoint. A failure is a *notify.Error: 404/410
// Unregistered; 429, 5xx and network errors Transient (with the
// Retry-After); 413 Permanent with Code notify.CodePayloadTooLarge, wrapping
// notify.ErrPayloadTooLarge (a sizing error, not a dead subscription); other
// statuses Permanent.
func (s *Sender) Send(ctx context.Context, d notify.Device, m notify.Message) (notify.Result, error) {
	key, secret, err := parseSubscription(d.Endpoint, d.P256dh, d.Auth)
	if err != nil {
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: "invalid_subscription", Err: err}
	}
	urgency := Urgency(m.Urgency)
	if urgency == "" {
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: "invalid_message", Err: fmt.Errorf("webpush: unknown urgency %q", m.Urgency)}
	}
	body, err := Payload(m)
	if err != nil {
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: "invalid_message", Err: fmt.Errorf("webpush: encode payload: %w", err)}
	}
	if len(body) > MaxPayload {
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: notify.CodePayloadTooLarge,
			Err: fmt.Errorf("webpush: payload of %d bytes exceeds %d: %w", len(body), MaxPayload, notify.ErrPayloadTooLarge)}
	}
	size := BodySize(len(body))
	sealed, err := encrypt(body, key, secret, size)
	if err != nil {
		return notify.Result{}, &notify.Error{Kind: notify.Transient, Err: err}
	}
	authz, err := s.vapid.header(d.Endpoint, s.now())
	if err != nil {
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: "vapid", Err: err}
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint, bytes.NewReader(sealed))
	if err != nil {
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: "invalid_subscription", Err: errors.New("webpush: endpoint is not a request URL")}
	}
	h := req.Header
	h["Authorization"] = []string{authz}
	h["Content-Encoding"] = []string{"aes128gcm"}
	h["Content-Type"] = []string{"application/octet-stream"}
	h["Ttl"] = []string{strconv.Itoa(TTL(m.Urgency))}
	h["Urgency"] = []string{urgency}
	if topic := Topic(m.CollapseID); topic != "" {
		h["Topic"] = []string{topic}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return notify.Result{}, &notify.Error{Kind: notify.Transient, Err: fmt.Errorf("webpush: post: %w", notify.RedactURL(err))}
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body itself is
	// never reported (push services may echo the request).
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	return classify(resp, size, s.now())
}

// classify turns a push service response to a body of size bytes into a
// Result or a *notify.Error.
func classify(resp *http.Response, size int, now time.Time) (notify.Result, error) {
	status := resp.StatusCode
	switch {
	case status == http.StatusCreated || status == http.StatusOK || status == http.StatusAccepted:
		return notify.Result{ProviderID: resp.Header.Get("Location"), Status: status}, nil
	case status == http.StatusNotFound || status == http.StatusGone:
		return notify.Result{Status: status}, &notify.Error{Kind: notify.Unregistered, Status: status, Err: errors.New("webpush: subscription expired or unsubscribed")}
	case status == http.StatusRequestEntityTooLarge:
		return notify.Result{Status: status}, &notify.Error{Kind: notify.Permanent, Status: status, Code: notify.CodePayloadTooLarge,
			Err: fmt.Errorf("webpush: push service refused a body of %d bytes: %w", size, notify.ErrPayloadTooLarge)}
	case status == http.StatusTooManyRequests || status >= 500:
		return notify.Result{Status: status}, &notify.Error{
			Kind:       notify.Transient,
			Status:     status,
			RetryAfter: notify.RetryAfter(resp.Header.Get("Retry-After"), now),
			Err:        fmt.Errorf("webpush: push service answered %d", status),
		}
	}
	return notify.Result{Status: status}, &notify.Error{Kind: notify.Permanent, Status: status, Err: fmt.Errorf("webpush: push service answered %d", status)}
}
