// Package fcm delivers notifications through Firebase Cloud Messaging (HTTP
// v1 API) with firebase.google.com/go/v4/messaging. It is the only package
// of Tend that imports Firebase, which keeps the rest of the tree quick to
// build.
//
//	s, err := fcm.New(ctx, fcm.Config{CredentialsFile: "/etc/tend/fcm.json"})
//	res, err := s.Send(ctx, device, msg) // err is a *notify.Error
//
// One FCM message carries the generic notification for every platform the
// token may belong to: an android block (priority, TTL, collapse key and a
// notification channel per urgency), an apns block (apns-priority,
// apns-push-type, apns-expiration, apns-collapse-id and the
// interruption-level) and a webpush block (Urgency, TTL, Topic headers).
// Data holds the message's ids plus "id", "type" and "urgency".
//
// Retries are River's job, not Firebase's: the Firebase client would retry
// 503s and network errors up to 4 times over about 7 seconds inside one Send.
// The Sender's transport stops a request after its first retryable failure
// and reports it as Transient (with the provider's Retry-After), so one Send
// is one HTTP request and the job's backoff decides what happens next.
package fcm

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/google/uuid"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/tendhealth/tend/notify"
)

// DefaultTimeout bounds one Send when Config.HTTPClient has no timeout.
const DefaultTimeout = 10 * time.Second

// messagingScope is the OAuth scope of the FCM v1 API.
const messagingScope = "https://www.googleapis.com/auth/firebase.messaging"

// Android notification channels, one per urgency. The Android app must
// create them (with its own importance and sound settings) before the
// first notification arrives.
const (
	ChannelCritical = "tend_critical"
	ChannelHigh     = "tend_high"
	ChannelDefault  = "tend_default"
	ChannelLow      = "tend_low"
)

// Config configures a Sender. At least one of CredentialsFile and Endpoint
// is required.
type Config struct {
	// CredentialsFile is a Google service-account JSON key with permission to
	// send FCM messages. Empty means requests carry no OAuth token, which
	// only a local gateway or a test server accepts (Endpoint is then
	// required).
	CredentialsFile string
	// ProjectID is the Firebase project. Defaults to the credentials file's
	// project_id; required without a credentials file.
	ProjectID string
	// Endpoint overrides the FCM API base URL, with or without its trailing
	// "/v1" (e.g. "http://127.0.0.1:9099" or "http://127.0.0.1:9099/v1").
	// Defaults to https://fcm.googleapis.com/v1.
	Endpoint string
	// HTTPClient's Transport and Timeout are used for the requests; its other
	// settings are not. Defaults to http.DefaultTransport and a 10 second
	// timeout (DefaultTimeout); a zero Timeout also means 10 seconds.
	HTTPClient *http.Client
	// CriticalEntitled says the iOS app reached through FCM holds Apple's
	// critical-alerts entitlement: critical messages then carry the
	// interruption-level "critical", otherwise "time-sensitive". Defaults to
	// false.
	CriticalEntitled bool
}

// Sender delivers notify.Messages to FCM registration tokens. It implements
// notify.Sender and is safe for concurrent use.
type Sender struct {
	client           *messaging.Client
	criticalEntitled bool
	now              func() time.Time
}

var _ notify.Sender = (*Sender)(nil)

// New validates cfg and returns a Sender. ctx is used while loading the
// credentials, not kept.
func New(ctx context.Context, cfg Config) (*Sender, error) {
	if cfg.CredentialsFile == "" && cfg.Endpoint == "" {
		return nil, errors.New("fcm: CredentialsFile or Endpoint is required")
	}
	project := cfg.ProjectID
	var creds []byte
	if cfg.CredentialsFile != "" {
		var err error
		creds, err = os.ReadFile(cfg.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("fcm: read credentials: %w", err)
		}
		var sa struct {
			Type      string `json:"type"`
			ProjectID string `json:"project_id"`
		}
		if err := json.Unmarshal(creds, &sa); err != nil {
			return nil, errors.New("fcm: credentials file is not JSON")
		}
		if sa.Type != "service_account" {
			return nil, fmt.Errorf("fcm: credentials file is of type %q, want a service_account key", sa.Type)
		}
		project = cmp.Or(project, sa.ProjectID)
	}
	if project == "" {
		return nil, errors.New("fcm: ProjectID is required (no project_id in credentials)")
	}

	base := http.DefaultTransport
	timeout := DefaultTimeout
	if cfg.HTTPClient != nil {
		if cfg.HTTPClient.Transport != nil {
			base = cfg.HTTPClient.Transport
		}
		timeout = cmp.Or(cfg.HTTPClient.Timeout, timeout)
	}
	rt := base
	if creds != nil {
		var err error
		rt, err = htransport.NewTransport(ctx, base,
			option.WithAuthCredentialsJSON(option.ServiceAccount, creds),
			option.WithScopes(messagingScope))
		if err != nil {
			return nil, fmt.Errorf("fcm: credentials: %w", err)
		}
	}
	opts := []option.ClientOption{option.WithHTTPClient(&http.Client{Transport: singleAttempt{rt}, Timeout: timeout})}
	if cfg.Endpoint != "" {
		ep, err := endpointV1(cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, option.WithEndpoint(ep))
	}
	if creds == nil {
		opts = append(opts, option.WithoutAuthentication())
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project}, opts...)
	if err != nil {
		return nil, fmt.Errorf("fcm: firebase app: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("fcm: messaging client: %w", err)
	}
	return &Sender{client: client, criticalEntitled: cfg.CriticalEntitled, now: time.Now}, nil
}

// endpointV1 returns the API base with its "/v1".
func endpointV1(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("fcm: Endpoint must be an absolute http or https URL")
	}
	s = strings.TrimRight(s, "/")
	if !strings.HasSuffix(s, "/v1") {
		s += "/v1"
	}
	return s, nil
}

// Channel returns the Android notification channel for u.
func Channel(u notify.Urgency) string {
	switch u {
	case notify.Critical:
		return ChannelCritical
	case notify.High:
		return ChannelHigh
	case notify.Medium:
		return ChannelDefault
	}
	return ChannelLow
}

// message builds the FCM message Send posts for m to token at now.
func (s *Sender) message(token string, m notify.Message, now time.Time) *messaging.Message {
	ttl := m.Urgency.TTL()
	data := make(map[string]string, len(m.Data)+3)
	for k, v := range m.Data {
		data[k] = v
	}
	data["id"], data["type"], data["urgency"] = m.ID, m.Type, string(m.Urgency)

	androidPriority, apnsPriority, wpUrgency, level := "normal", "10", "normal", "active"
	switch m.Urgency {
	case notify.Critical:
		androidPriority, wpUrgency, level = "high", "high", "time-sensitive"
		if s.criticalEntitled {
			level = "critical"
		}
	case notify.High:
		androidPriority, wpUrgency, level = "high", "high", "time-sensitive"
	case notify.Low:
		apnsPriority, wpUrgency, level = "5", "low", "passive"
	}
	apnsHeaders := map[string]string{
		"apns-priority":   apnsPriority,
		"apns-push-type":  "alert",
		"apns-expiration": strconv.FormatInt(now.Add(ttl).Unix(), 10),
	}
	wpHeaders := map[string]string{
		"Urgency": wpUrgency,
		"TTL":     strconv.Itoa(int(ttl / time.Second)),
	}
	if m.CollapseID != "" {
		apnsHeaders["apns-collapse-id"] = m.CollapseID
		if u, err := uuid.Parse(m.CollapseID); err == nil {
			wpHeaders["Topic"] = base64.RawURLEncoding.EncodeToString(u[:])
		}
	}
	return &messaging.Message{
		Token:        token,
		Notification: &messaging.Notification{Title: m.Title, Body: m.Body},
		Data:         data,
		Android: &messaging.AndroidConfig{
			CollapseKey:  m.CollapseID,
			Priority:     androidPriority,
			TTL:          &ttl,
			Notification: &messaging.AndroidNotification{ChannelID: Channel(m.Urgency)},
		},
		APNS: &messaging.APNSConfig{
			Headers: apnsHeaders,
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{
				Sound:      "default",
				CustomData: map[string]any{"interruption-level": level},
			}},
		},
		Webpush: &messaging.WebpushConfig{Headers: wpHeaders},
	}
}

// Send posts m to the registration token d.Token. A failure is a
// *notify.Error: UNREGISTERED is Unregistered; QUOTA_EXCEEDED (429),
// UNAVAILABLE, INTERNAL (5xx) and network errors Transient, with the
// Retry-After; INVALID_ARGUMENT, SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR
// and other 4xx Permanent; a 413 also wraps notify.ErrPayloadTooLarge.
func (s *Sender) Send(ctx context.Context, d notify.Device, m notify.Message) (notify.Result, error) {
	if d.Token == "" {
		return notify.Result{}, &notify.Error{Kind: notify.Unregistered, Code: "missing_token", Err: errors.New("fcm: device has no registration token")}
	}
	switch m.Urgency {
	case notify.Critical, notify.High, notify.Medium, notify.Low:
	default:
		return notify.Result{}, &notify.Error{Kind: notify.Permanent, Code: "invalid_message", Err: fmt.Errorf("fcm: unknown urgency %q", m.Urgency)}
	}

	att := &attempt{}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	att.cancel = cancel
	name, err := s.client.Send(context.WithValue(actx, attemptKey{}, att), s.message(d.Token, m, s.now()))
	if err == nil {
		return notify.Result{ProviderID: name, Status: http.StatusOK}, nil
	}
	e := classify(ctx, err, att, d.Token, s.now())
	return notify.Result{Status: e.Status}, e
}

// classify turns a Send error into a *notify.Error. The messaging.Is…
// helpers use type assertions, so they see err before any wrapping.
func classify(ctx context.Context, err error, att *attempt, token string, now time.Time) *notify.Error {
	if f := att.failure(); f != nil {
		if f.err != nil {
			return &notify.Error{Kind: notify.Transient, Err: fmt.Errorf("fcm: send: %w", notify.RedactURL(f.err))}
		}
		return &notify.Error{
			Kind: notify.Transient, Status: f.status, Code: errorCode(f.body),
			RetryAfter: notify.RetryAfter(f.header.Get("Retry-After"), now),
			Err:        fmt.Errorf("fcm: send: status %d", f.status),
		}
	}
	if ctx.Err() != nil {
		return &notify.Error{Kind: notify.Transient, Err: fmt.Errorf("fcm: send: %w", ctx.Err())}
	}

	e := &notify.Error{Kind: notify.Permanent, Err: notify.RedactToken("fcm: ", err, token)}
	if resp := errorutils.HTTPResponse(err); resp != nil {
		e.Status = resp.StatusCode
		e.RetryAfter = notify.RetryAfter(resp.Header.Get("Retry-After"), now)
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		e.Code = errorCode(body)
	}
	switch {
	case messaging.IsUnregistered(err):
		e.Kind = notify.Unregistered
	case messaging.IsQuotaExceeded(err), messaging.IsUnavailable(err), messaging.IsInternal(err):
		e.Kind = notify.Transient
	case messaging.IsInvalidArgument(err), messaging.IsSenderIDMismatch(err), messaging.IsThirdPartyAuthError(err):
		e.Kind = notify.Permanent
	case e.Status == http.StatusTooManyRequests || e.Status >= 500:
		e.Kind = notify.Transient
	case e.Status == 0 && (errorutils.IsUnavailable(err) || errorutils.IsDeadlineExceeded(err) || errorutils.IsUnknown(err)):
		e.Kind = notify.Transient // a transport failure the single-attempt transport did not see
	}
	if e.Status == http.StatusRequestEntityTooLarge {
		// FCM itself answers 400 for an oversize message; a 413 comes from
		// a proxy in between. Either way it is a sizing error.
		e.Kind, e.Code = notify.Permanent, cmp.Or(e.Code, notify.CodePayloadTooLarge)
		e.Err = fmt.Errorf("%w (%w)", e.Err, notify.ErrPayloadTooLarge)
	}
	return e
}

// errorCode returns the FCM error code of an error body (details[].errorCode,
// else the canonical status), "" when there is none.
func errorCode(body []byte) string {
	var b struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	for _, d := range b.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" && d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	return b.Error.Status
}
