package notifytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"time"
)

// FCMAccessToken is the OAuth access token the fake's token endpoint issues
// to a ServiceAccountJSON credential.
const FCMAccessToken = "notifytest-access-token"

// FCM is a fake FCM HTTP v1 API: POST /v1/projects/{project}/messages:send
// with {"message":{…}} answers {"name":"projects/{project}/messages/<id>"}.
// A message with fields FCM does not know, no token, or malformed android
// settings is refused with 400 INVALID_ARGUMENT. A request with an
// Authorization header must carry FCMAccessToken; one without is accepted
// (the sender's "endpoint without credentials" mode). POST /token is an
// OAuth token endpoint for ServiceAccountJSON credentials.
type FCM struct {
	// URL is the API base URL (http://127.0.0.1:port); the v1 API is under
	// URL+"/v1".
	URL string

	srv      *httptest.Server
	received journal[FCMRequest]
	rejected journal[Rejection]
	script   script
	onRecv   callback[FCMRequest]

	mu      sync.Mutex
	counter int
}

// FCMRequest is a message the fake FCM accepted as well formed.
type FCMRequest struct {
	// Project is the {project} of the request path.
	Project string
	// Authorized reports whether the request carried the OAuth access token.
	Authorized bool
	// ValidateOnly is the request's validate_only flag.
	ValidateOnly bool
	// Message is the decoded "message" object and Raw its JSON.
	Message FCMMessage
	Raw     json.RawMessage
	// Status is what the fake answered: 200, or a scripted status.
	Status int
	// Name is the message name answered on success.
	Name string
	// Time is when the request arrived.
	Time time.Time
}

// FCMMessage is the FCM v1 message object, as much of it as Tend uses; a
// field outside it is refused like FCM refuses unknown names.
type FCMMessage struct {
	Token        string            `json:"token,omitempty"`
	Topic        string            `json:"topic,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Notification *FCMNotification  `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *FCMAndroid       `json:"android,omitempty"`
	APNS         *FCMAPNS          `json:"apns,omitempty"`
	Webpush      *FCMWebpush       `json:"webpush,omitempty"`
	FCMOptions   map[string]any    `json:"fcm_options,omitempty"`
}

// FCMNotification is the message's cross-platform notification.
type FCMNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

// FCMAndroid is the message's android block.
type FCMAndroid struct {
	CollapseKey           string                  `json:"collapse_key,omitempty"`
	Priority              string                  `json:"priority,omitempty"`
	TTL                   string                  `json:"ttl,omitempty"`
	RestrictedPackageName string                  `json:"restricted_package_name,omitempty"`
	Data                  map[string]string       `json:"data,omitempty"`
	Notification          *FCMAndroidNotification `json:"notification,omitempty"`
	DirectBootOK          bool                    `json:"direct_boot_ok,omitempty"`
	FCMOptions            map[string]any          `json:"fcm_options,omitempty"`
}

// FCMAndroidNotification is the android notification block.
type FCMAndroidNotification struct {
	Title                string `json:"title,omitempty"`
	Body                 string `json:"body,omitempty"`
	ChannelID            string `json:"channel_id,omitempty"`
	Sound                string `json:"sound,omitempty"`
	DefaultSound         bool   `json:"default_sound,omitempty"`
	Tag                  string `json:"tag,omitempty"`
	Icon                 string `json:"icon,omitempty"`
	Color                string `json:"color,omitempty"`
	ClickAction          string `json:"click_action,omitempty"`
	NotificationPriority string `json:"notification_priority,omitempty"`
	Visibility           string `json:"visibility,omitempty"`
	Sticky               bool   `json:"sticky,omitempty"`
	LocalOnly            bool   `json:"local_only,omitempty"`
	Ticker               string `json:"ticker,omitempty"`
	EventTime            string `json:"event_time,omitempty"`
	DefaultVibrate       bool   `json:"default_vibrate_timings,omitempty"`
}

// FCMAPNS is the message's apns block.
type FCMAPNS struct {
	Headers    map[string]string `json:"headers,omitempty"`
	Payload    map[string]any    `json:"payload,omitempty"`
	FCMOptions map[string]any    `json:"fcm_options,omitempty"`
}

// FCMWebpush is the message's webpush block.
type FCMWebpush struct {
	Headers      map[string]string `json:"headers,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Notification map[string]any    `json:"notification,omitempty"`
	FCMOptions   map[string]any    `json:"fcm_options,omitempty"`
}

// NewFCM starts a fake FCM API on 127.0.0.1 (plain HTTP). Close it when done.
func NewFCM() *FCM {
	f := &FCM{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.rejected.add(Rejection{Status: http.StatusNotFound, Reason: "no such method: " + r.Method + " " + r.URL.Path, Time: time.Now()})
		writeFCMError(w, FCMError(http.StatusNotFound, ""))
	})
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	return f
}

// Close shuts the server down.
func (f *FCM) Close() { f.srv.Close() }

// Script queues responses for messages to the registration token, answered
// in order before the fallback success. Responses queued for "" apply to any
// token once its own queue is empty.
// FCMError builds FCM's error bodies.
func (f *FCM) Script(token string, responses ...Response) { f.script.add(token, responses...) }

// OnReceive sets a function called with every well-formed message, after it
// is recorded and before the response is written (so it returns before the
// sender's Send does; keep it short); nil removes it.
func (f *FCM) OnReceive(fn func(FCMRequest)) { f.onRecv.set(fn) }

// Received returns the well-formed messages so far.
func (f *FCM) Received() []FCMRequest { return f.received.all() }

// Rejected returns the requests refused as malformed.
func (f *FCM) Rejected() []Rejection { return f.rejected.all() }

// Wait returns the well-formed messages once there are at least n, or ctx's
// error with those received so far.
func (f *FCM) Wait(ctx context.Context, n int) ([]FCMRequest, error) {
	return f.received.wait(ctx, n)
}

// ServiceAccountJSON returns a service-account credentials file for project
// whose token_uri is this fake, with a fresh RSA key.
func (f *FCM) ServiceAccountJSON(project string) ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "notifytest",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "tend@" + project + ".iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      f.URL + "/token",
	}, "", "  ")
}

// token is an OAuth 2 token endpoint accepting any JWT bearer grant.
func (f *FCM) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("assertion") == "" {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, FCMAccessToken)
}

var durationRE = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,9})?s$`)

func (f *FCM) send(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	project := r.PathValue("project")
	var token string
	reject := func(status int, code, reason string) {
		f.rejected.add(Rejection{Key: token, Status: status, Reason: reason, Time: now})
		writeFCMError(w, FCMError(status, code))
	}
	authorized := false
	if a := r.Header.Get("Authorization"); a != "" {
		if a != "Bearer "+FCMAccessToken {
			reject(http.StatusUnauthorized, "", "invalid OAuth access token")
			return
		}
		authorized = true
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		reject(http.StatusBadRequest, "INVALID_ARGUMENT", "Content-Type is not application/json")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		reject(http.StatusBadRequest, "INVALID_ARGUMENT", "read body: "+err.Error())
		return
	}
	var envelope struct {
		ValidateOnly bool            `json:"validate_only"`
		Message      json.RawMessage `json:"message"`
	}
	if err := strictJSON(body, &envelope); err != nil {
		reject(http.StatusBadRequest, "INVALID_ARGUMENT", "request: "+err.Error())
		return
	}
	var m FCMMessage
	if err := strictJSON(envelope.Message, &m); err != nil {
		reject(http.StatusBadRequest, "INVALID_ARGUMENT", "message: "+err.Error())
		return
	}
	token = m.Token
	if err := checkFCMMessage(&m); err != nil {
		reject(http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}

	req := FCMRequest{
		Project: project, Authorized: authorized, ValidateOnly: envelope.ValidateOnly,
		Message: m, Raw: envelope.Message, Time: now,
	}
	resp, scripted := f.script.next(m.Token)
	if !scripted {
		f.mu.Lock()
		f.counter++
		req.Name = fmt.Sprintf("projects/%s/messages/%d", project, f.counter)
		f.mu.Unlock()
		body, _ := json.Marshal(map[string]string{"name": req.Name})
		resp = Response{Status: http.StatusOK, Body: string(body)}
	}
	req.Status = resp.Status
	f.received.add(req)
	f.onRecv.call(req)
	resp.hold(r.Context())
	resp.write(w, "application/json; charset=UTF-8")
}

func checkFCMMessage(m *FCMMessage) error {
	targets := 0
	for _, t := range []string{m.Token, m.Topic, m.Condition} {
		if t != "" {
			targets++
		}
	}
	if targets != 1 {
		return errors.New("exactly one of token, topic and condition is required")
	}
	if a := m.Android; a != nil {
		switch a.Priority {
		case "", "normal", "high", "NORMAL", "HIGH":
		default:
			return fmt.Errorf("android.priority %q", a.Priority)
		}
		if a.TTL != "" && !durationRE.MatchString(a.TTL) {
			return fmt.Errorf("android.ttl %q is not a duration", a.TTL)
		}
	}
	if a := m.APNS; a != nil {
		switch a.Headers["apns-priority"] {
		case "", "5", "10", "1":
		default:
			return fmt.Errorf("apns-priority %q", a.Headers["apns-priority"])
		}
		if aps, ok := a.Payload["aps"]; a.Payload != nil && (!ok || aps == nil) {
			return errors.New("apns.payload without aps")
		}
	}
	if wp := m.Webpush; wp != nil {
		switch wp.Headers["Urgency"] {
		case "", "very-low", "low", "normal", "high":
		default:
			return fmt.Errorf("webpush Urgency %q", wp.Headers["Urgency"])
		}
	}
	return nil
}

// strictJSON decodes one JSON value, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	if len(b) == 0 {
		return errors.New("missing")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// FCMError returns FCM's error response for an HTTP status and an FCM error
// code ("UNREGISTERED", "INVALID_ARGUMENT", "QUOTA_EXCEEDED", "UNAVAILABLE",
// "INTERNAL", "SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"; "" for none):
//
//	{"error":{"code":404,"message":"…","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}
func FCMError(status int, errorCode string) Response {
	type detail struct {
		Type      string `json:"@type"`
		ErrorCode string `json:"errorCode"`
	}
	e := struct {
		Code    int      `json:"code"`
		Message string   `json:"message"`
		Status  string   `json:"status"`
		Details []detail `json:"details,omitempty"`
	}{Code: status, Message: http.StatusText(status), Status: grpcStatus(status)}
	if errorCode != "" {
		e.Details = []detail{{Type: "type.googleapis.com/google.firebase.fcm.v1.FcmError", ErrorCode: errorCode}}
	}
	body, _ := json.Marshal(map[string]any{"error": e})
	return Response{Status: status, Body: string(body)}
}

func writeFCMError(w http.ResponseWriter, r Response) { r.write(w, "application/json; charset=UTF-8") }

// grpcStatus is the canonical Google API status for an HTTP status.
func grpcStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ABORTED"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 500:
		return "INTERNAL"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	return "UNKNOWN"
}
