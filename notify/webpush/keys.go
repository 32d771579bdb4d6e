package webpush

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// GenerateVAPIDKeys returns a new VAPID key pair in unpadded base64url: the
// public key is the 65-byte uncompressed P-256 point browsers take as
// applicationServerKey, the private key the 32-byte scalar. Note the order,
// public first (webpush-go's own GenerateVAPIDKeys returns private first).
func GenerateVAPIDKeys() (public, private string, err error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("webpush: generate VAPID keys: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		base64.RawURLEncoding.EncodeToString(k.Bytes()), nil
}

// SubscriptionError reports which field of a Web Push subscription is
// invalid. It never holds the value itself.
type SubscriptionError struct {
	// Field is "endpoint", "p256dh" or "auth".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *SubscriptionError) Error() string {
	return "webpush subscription: " + e.Field + ": " + e.Reason
}

// ValidateSubscription checks a browser's PushSubscription: endpoint must be
// an absolute http or https URL; p256dh the browser's P-256 public key (65
// bytes, uncompressed) and auth its 16-byte secret, both in base64url, padded
// or not (standard base64 is accepted too). A failure is a *SubscriptionError
// naming the field. Which hosts an endpoint may point at is the caller's
// policy (SSRF), not checked here.
func ValidateSubscription(endpoint, p256dh, auth string) error {
	_, _, err := parseSubscription(endpoint, p256dh, auth)
	return err
}

// parseSubscription validates a subscription and decodes its keys.
func parseSubscription(endpoint, p256dh, auth string) (key *ecdh.PublicKey, secret []byte, err error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, nil, &SubscriptionError{Field: "endpoint", Reason: "must be an absolute http or https URL"}
	}
	raw, err := decodeBase64(p256dh)
	if err != nil {
		return nil, nil, &SubscriptionError{Field: "p256dh", Reason: "is not base64url"}
	}
	if len(raw) != 65 || raw[0] != 4 {
		return nil, nil, &SubscriptionError{Field: "p256dh", Reason: "is not an uncompressed P-256 public key (65 bytes)"}
	}
	if key, err = ecdh.P256().NewPublicKey(raw); err != nil {
		return nil, nil, &SubscriptionError{Field: "p256dh", Reason: "is not a point on P-256"}
	}
	secret, err = decodeBase64(auth)
	if err != nil {
		return nil, nil, &SubscriptionError{Field: "auth", Reason: "is not base64url"}
	}
	if len(secret) != 16 {
		return nil, nil, &SubscriptionError{Field: "auth", Reason: fmt.Sprintf("must decode to 16 bytes, got %d", len(secret))}
	}
	return key, secret, nil
}

// decodeBase64 decodes base64url or standard base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func decodePublicKey(s string) (*ecdh.PublicKey, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	k, err := ecdh.P256().NewPublicKey(b)
	if err != nil || len(b) != 65 {
		return nil, errors.New("not an uncompressed P-256 point (65 bytes)")
	}
	return k, nil
}

func decodePrivateKey(s string) (*ecdh.PrivateKey, error) {
	b, err := decodeBase64(s)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	if len(b) > 32 || len(b) == 0 {
		return nil, errors.New("not a P-256 private key (32 bytes)")
	}
	// Some generators drop leading zero bytes of the scalar.
	if len(b) < 32 {
		b = append(make([]byte, 32-len(b)), b...)
	}
	k, err := ecdh.P256().NewPrivateKey(b)
	if err != nil {
		return nil, errors.New("not a valid P-256 private key")
	}
	return k, nil
}
