// Package notify delivers push notifications. It defines one small Sender
// interface, implemented per provider in notify/fcm, notify/apns and
// notify/webpush, and the classification of provider failures.
//
// notify knows nothing clinical: a Message carries a generic title and body,
// an urgency and opaque ids. It never imports package rpm.
package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Platform is a push provider.
type Platform string

// The supported push platforms.
const (
	FCM     Platform = "fcm"
	APNs    Platform = "apns"
	WebPush Platform = "webpush"
)

// Valid reports whether p is a known platform.
func (p Platform) Valid() bool { return p == FCM || p == APNs || p == WebPush }

// Urgency mirrors the clinical urgency levels without importing them.
type Urgency string

// Urgency levels, highest first.
const (
	Critical Urgency = "critical"
	High     Urgency = "high"
	Medium   Urgency = "medium"
	Low      Urgency = "low"
)

// TTL is how long a provider should keep trying to deliver a message of this
// urgency before dropping it: it grows as urgency falls.
func (u Urgency) TTL() time.Duration {
	switch u {
	case Critical:
		return 1 * time.Hour
	case High:
		return 4 * time.Hour
	case Medium:
		return 12 * time.Hour
	}
	return 24 * time.Hour
}

// Message is a PHI-free notification: generic words and opaque ids.
type Message struct {
	// ID identifies this notification; providers that support it use it to
	// make re-sends idempotent (APNs apns-id).
	ID string
	// Type tells the app what to fetch: "alert", "message", "reminder", "catchup".
	Type string
	// Title and Body are generic ("New critical alert"); never clinical values.
	Title string
	Body  string
	// Urgency selects priority, interruption level and TTL.
	Urgency Urgency
	// CollapseID is a UUID (usually the alert id): a newer message with the same
	// CollapseID replaces the older banner. Empty means no collapsing.
	CollapseID string
	// Data holds ids for the app to fetch details over the API.
	Data map[string]string
}

// Device is one registered push destination.
type Device struct {
	ID       string
	Platform Platform
	// Token is the FCM registration token or the APNs device token.
	Token string
	// Topic is the APNs topic (bundle id). Empty means the sender's default.
	Topic string
	// Sandbox selects the APNs development environment.
	Sandbox bool
	// Endpoint, P256dh and Auth form a Web Push subscription.
	Endpoint string
	P256dh   string
	Auth     string
}

// Result is a provider's acceptance of a message.
type Result struct {
	// ProviderID is the provider's message id (FCM name, apns-id, Location).
	ProviderID string
	// Status is the HTTP status the provider answered.
	Status int
}

// Sender delivers a message to one device of its platform.
type Sender interface {
	Send(ctx context.Context, d Device, m Message) (Result, error)
}

// Kind classifies a delivery failure.
type Kind int

// Failure kinds.
const (
	// Transient failures are retried with backoff (5xx, 429, network errors).
	Transient Kind = iota
	// Permanent failures are not retried (bad request, auth misconfiguration).
	Permanent
	// Unregistered means the device token is no longer valid: disable the device.
	Unregistered
)

func (k Kind) String() string {
	switch k {
	case Permanent:
		return "permanent"
	case Unregistered:
		return "unregistered"
	}
	return "transient"
}

// Error is a classified delivery failure. Its message never contains tokens,
// endpoints or payloads.
type Error struct {
	Kind Kind
	// Status is the provider's HTTP status, 0 for network errors.
	Status int
	// Code is the provider's error code or reason ("UNREGISTERED", "BadDeviceToken").
	Code string
	// RetryAfter is the provider's requested wait (429/503), 0 when none.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("push %s failure", e.Kind)
	if e.Status != 0 {
		s += fmt.Sprintf(" (status %d)", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Classify returns the failure kind of err: an *Error anywhere in its chain
// decides; any other error is transient.
func Classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Transient, Err: err}
}

// ErrPayloadTooLarge is in the chain of a failure whose request body a
// provider refused as too large (HTTP 413, APNs PayloadTooLarge), or that a
// sender refused to send for the same reason. It is Tend's sizing error, not
// the device's: the failure is Permanent (the same body would be refused
// again), carries the provider's reason as Code or else CodePayloadTooLarge,
// and must never disable the device.
// Test for it with errors.Is.
var ErrPayloadTooLarge = errors.New("push payload too large for the provider")

// CodePayloadTooLarge is the Error.Code of a failure wrapping
// ErrPayloadTooLarge.
const CodePayloadTooLarge = "payload_too_large"

// ErrNotConfigured is returned for a device whose platform has no configured
// sender: the delivery is recorded as undeliverable, never silently skipped.
var ErrNotConfigured = errors.New("push provider not configured")

// Senders routes each device to the sender of its platform.
type Senders map[Platform]Sender

// Send delivers m to d through the sender of d's platform.
func (s Senders) Send(ctx context.Context, d Device, m Message) (Result, error) {
	sender, ok := s[d.Platform]
	if !ok || sender == nil {
		return Result{}, &Error{Kind: Permanent, Code: "not_configured", Err: fmt.Errorf("%s: %w", d.Platform, ErrNotConfigured)}
	}
	return sender.Send(ctx, d, m)
}
