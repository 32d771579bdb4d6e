// Package apns delivers notifications through the Apple Push Notification
// service (HTTP/2 provider API, token authentication) with
// github.com/sideshow/apns2.
//
//	s, err := apns.New(apns.Config{
//		KeyFile: "/etc/tend/AuthKey_ABC123DEFG.p8",
//		KeyID:   "ABC123DEFG",
//		TeamID:  "DEF123GHIJ",
//		Topic:   "org.example.tend",
//	})
//	res, err := s.Send(ctx, device, msg) // err is a *notify.Error
//
// Urgency mapping (apns-priority, interruption-level):
//
//	critical  10  "critical" with Config.CriticalEntitled, else "time-sensitive"
//	high      10  "time-sensitive"
//	medium    10  "active"
//	low        5  "passive"
//
// Every notification is an alert push with the generic title and body, the
// "default" sound (never a critical-alert sound dictionary, which needs
// Apple's entitlement) and, beside "aps", the keys "id", "type", "urgency"
// and "data" (the message's ids). apns-expiration is now + Urgency.TTL,
// apns-collapse-id the CollapseID, and apns-id the message ID when it is a
// UUID, so APNs and the app can recognise a re-sent job.
package apns

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"

	"github.com/tendhealth/tend/notify"
)

// DefaultTimeout bounds one Send when Config.HTTPClient is nil or has no
// timeout.
const DefaultTimeout = 10 * time.Second

// Config configures a Sender.
type Config struct {
	// KeyFile is the provider token signing key downloaded from Apple
	// (AuthKey_<KeyID>.p8, PKCS#8 PEM). Exactly one of KeyFile and Key is
	// required.
	KeyFile string
	// Key is the same key's PEM bytes, an alternative to KeyFile.
	Key []byte
	// KeyID is the key's 10-character identifier. Required.
	KeyID string
	// TeamID is the Apple developer team that owns the key. Required.
	TeamID string
	// Topic is the default apns-topic (the app's bundle id), used for
	// devices registered without one. Optional when every device has a
	// Topic.
	Topic string
	// Endpoint overrides the APNs base URL (https only, HTTP/2) for every
	// device. Defaults to api.push.apple.com, or api.sandbox.push.apple.com
	// for a Sandbox device.
	Endpoint string
	// CriticalEntitled says the app holds Apple's critical-alerts
	// entitlement: critical messages then carry the interruption-level
	// "critical", otherwise "time-sensitive". Defaults to false.
	CriticalEntitled bool
	// HTTPClient sends the requests; it must speak HTTP/2. Defaults to an
	// HTTP/2 client trusting the system roots (SSL_CERT_FILE included) with
	// a 10 second timeout (DefaultTimeout); a zero Timeout also means 10
	// seconds.
	HTTPClient *http.Client
}

// Sender delivers notify.Messages to APNs device tokens. It implements
// notify.Sender and is safe for concurrent use: its clients share one
// provider token, renewed before its hour runs out.
type Sender struct {
	production, development *apns2.Client
	topic                   string
	criticalEntitled        bool
	now                     func() time.Time
}

var _ notify.Sender = (*Sender)(nil)

// New validates cfg, checks the key signs, and returns a Sender.
func New(cfg Config) (*Sender, error) {
	keyPEM := cfg.Key
	switch {
	case cfg.KeyFile != "" && len(cfg.Key) > 0:
		return nil, errors.New("apns: set KeyFile or Key, not both")
	case cfg.KeyFile != "":
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("apns: read key: %w", err)
		}
		keyPEM = b
	case len(cfg.Key) == 0:
		return nil, errors.New("apns: KeyFile or Key is required")
	}
	key, err := token.AuthKeyFromBytes(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("apns: key is not a .p8 (PKCS#8 PEM, P-256): %w", err)
	}
	if cfg.KeyID == "" || cfg.TeamID == "" {
		return nil, errors.New("apns: KeyID and TeamID are required")
	}
	tok := &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
	if _, err := tok.Generate(); err != nil {
		return nil, fmt.Errorf("apns: sign provider token: %w", err)
	}

	prodHost, devHost := apns2.HostProduction, apns2.HostDevelopment
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, errors.New("apns: Endpoint must be an absolute https URL")
		}
		prodHost = strings.TrimRight(cfg.Endpoint, "/")
		devHost = prodHost
	}

	// APNs speaks HTTP/2 only; pings detect dead connections.
	var h2 http.Protocols
	h2.SetHTTP2(true)
	hc := &http.Client{
		Transport: &http.Transport{
			Protocols:           &h2,
			HTTP2:               &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 15 * time.Second},
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
		},
		Timeout: DefaultTimeout,
	}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
		hc.Timeout = cmp.Or(hc.Timeout, DefaultTimeout)
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = retryAfterTransport{base}

	client := func(host string) *apns2.Client {
		return &apns2.Client{Host: host, Token: tok, HTTPClient: hc}
	}
	return &Sender{
		production:       client(prodHost),
		development:      client(devHost),
		topic:            cfg.Topic,
		criticalEntitled: cfg.CriticalEntitled,
		now:              time.Now,
	}, nil
}

// ValidToken reports whether s looks like an APNs device token: at least 64
// hexadecimal digits (32 bytes today; Apple allows them to grow), at most
// 200.
func ValidToken(s string) bool {
	if len(s) < 64 || len(s) > 200 || len(s)%2 != 0 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Priority returns the apns-priority and interruption-level for u; ok is
// false for an unknown urgency.
func Priority(u notify.Urgency, criticalEntitled bool) (priority int, level string, ok bool) {
	switch u {
	case notify.Critical:
		if criticalEntitled {
			return apns2.PriorityHigh, string(payload.InterruptionLevelCritical), true
		}
		return apns2.PriorityHigh, string(payload.InterruptionLevelTimeSensitive), true
	case notify.High:
		return apns2.PriorityHigh, string(payload.InterruptionLevelTimeSensitive), true
	case notify.Medium:
		return apns2.PriorityHigh, string(payload.InterruptionLevelActive), true
	case notify.Low:
		return apns2.PriorityLow, string(payload.InterruptionLevelPassive), true
	}
	return 0, "", false
}

// apnsPayload is the JSON body of a push, encoded once and handed to apns2
// as bytes (its map-based payload builder costs a push several times the
// allocations of a struct).
type apnsPayload struct {
	Aps     apsDictionary     `json:"aps"`
	ID      string            `json:"id"`
	Type    string            `json:"type"`
	Urgency string            `json:"urgency"`
	Data    map[string]string `json:"data"`
}

type apsDictionary struct {
	Alert             apsAlert `json:"alert"`
	Sound             string   `json:"sound"`
	InterruptionLevel string   `json:"interruption-level"`
}

type apsAlert struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// notification builds the APNs request for m to d at now.
func (s *Sender) notification(d notify.Device, m notify.Message, now time.Time) (*apns2.Notification, error) {
	priority, level, ok := Priority(m.Urgency, s.criticalEntitled)
	if !ok {
		return nil, fmt.Errorf("unknown urgency %q", m.Urgency)
	}
	topic := cmp.Or(d.Topic, s.topic)
	if topic == "" {
		return nil, errors.New("no topic: neither the device nor the sender has one")
	}
	if len(m.CollapseID) > 64 {
		return nil, errors.New("collapse id longer than 64 bytes")
	}
	data := m.Data
	if data == nil {
		data = map[string]string{}
	}
	p, err := json.Marshal(apnsPayload{
		Aps: apsDictionary{Alert: apsAlert{Title: m.Title, Body: m.Body}, Sound: "default", InterruptionLevel: level},
		ID:  m.ID, Type: m.Type, Urgency: string(m.Urgency), Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	n := &apns2.Notification{
		DeviceToken: d.Token,
		Topic:       topic,
		CollapseID:  m.CollapseID,
		Expiration:  now.Add(m.Urgency.TTL()),
		Priority:    priority,
		PushType:    apns2.PushTypeAlert,
		Payload:     p,
	}
	if u, err := uuid.Parse(m.ID); err == nil {
		n.ApnsID = u.String()
	}
	return n, nil
}

// Send posts m to the device token d.Token, on the development host for a
// Sandbox device (unless Config.Endpoint overrides both). A failure is a
// *notify.Error: 410 and BadDeviceToken are Unregistered; 429, 5xx and
// network errors Transient, with any Retry-After; the rest
// (InvalidProviderToken, ExpiredProviderToken, BadTopic,
// DeviceTokenNotForTopic, PayloadTooLarge, …) Permanent. A 413
// PayloadTooLarge also wraps notify.ErrPayloadTooLarge.
// DeviceTokenNotForTopic is usually a misconfigured topic, which would
// otherwise disable every iOS device at once.
func (s *Sender) Send(ctx context.Context, d notify.Device, m notify.Message) (notify.Result, error) {
	if !ValidToken(d.Token) {
		return notify.Result{}, &notify.Error{Kind: notify.Unregistered, Code: apns2.ReasonBadDeviceToken, Err: errors.New("apns: malformed device token")}
	}
	now := s.now()
	n, err := s.notification(d, m, now)
	if err != nil {
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: "invalid_message", Err: fmt.Errorf("apns: %w", err)}
	}
	client := s.production
	if d.Sandbox {
		client = s.development
	}
	meta := &responseMeta{}
	res, err := client.PushWithContext(context.WithValue(ctx, metaKey{}, meta), n)
	if status, retry := meta.get(); err != nil && status != 0 && status != http.StatusOK {
		// An answer apns2 could not decode (a proxy's HTML error page):
		// classify it by its status.
		return notify.Result{Status: status}, classify(&apns2.Response{StatusCode: status}, retry, now)
	}
	if err != nil {
		err = notify.RedactURL(err)
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return notify.Result{}, &notify.Error{Kind: notify.Transient, Err: notify.RedactToken("apns: push: ", err, d.Token)}
	}
	if res.Sent() {
		return notify.Result{ProviderID: res.ApnsID, Status: res.StatusCode}, nil
	}
	_, retry := meta.get()
	return notify.Result{Status: res.StatusCode}, classify(res, retry, now)
}

// classify turns an APNs rejection into a *notify.Error.
func classify(res *apns2.Response, retryAfterHeader string, now time.Time) *notify.Error {
	e := &notify.Error{Kind: notify.Permanent, Status: res.StatusCode, Code: res.Reason}
	msg := fmt.Sprintf("apns: status %d", res.StatusCode)
	if res.Reason != "" {
		msg += " " + res.Reason
	}
	switch {
	case res.StatusCode == http.StatusGone || res.Reason == apns2.ReasonUnregistered ||
		res.Reason == apns2.ReasonBadDeviceToken:
		e.Kind = notify.Unregistered
		if !res.Timestamp.IsZero() {
			// The app may have registered the token again after this time.
			msg += " since " + res.Timestamp.UTC().Format(time.RFC3339)
		}
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		e.Kind = notify.Transient
		e.RetryAfter = notify.RetryAfter(retryAfterHeader, now)
	case res.StatusCode == http.StatusRequestEntityTooLarge || res.Reason == apns2.ReasonPayloadTooLarge:
		e.Code = cmp.Or(e.Code, notify.CodePayloadTooLarge)
		e.Err = fmt.Errorf("%s: %w", msg, notify.ErrPayloadTooLarge)
		return e
	}
	e.Err = errors.New(msg)
	return e
}

// metaKey carries a *responseMeta in a push's request context.
type metaKey struct{}

// responseMeta keeps what apns2.Response drops: the Retry-After header, and
// the status of a response whose body apns2 could not decode.
type responseMeta struct {
	mu         sync.Mutex
	status     int
	retryAfter string
}

func (m *responseMeta) set(status int, retryAfter string) {
	m.mu.Lock()
	m.status, m.retryAfter = status, retryAfter
	m.mu.Unlock()
}

func (m *responseMeta) get() (status int, retryAfter string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status, m.retryAfter
}

// retryAfterTransport records each response's status and Retry-After in
// the request's responseMeta.
type retryAfterTransport struct{ base http.RoundTripper }

func (t retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if m, ok := req.Context().Value(metaKey{}).(*responseMeta); ok && resp != nil {
		m.set(resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	return resp, err
}

// CloseIdleConnections closes the base transport's idle connections.
func (t retryAfterTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
