package webpush

import (
	"crypto/ecdsa"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// vapidLifetime is how long a VAPID token is valid (RFC 8292 §2: at most
// 24 hours); vapidRenew is how long before its end a new one is signed.
const (
	vapidLifetime = 12 * time.Hour
	vapidRenew    = time.Hour
)

// maxVAPIDTokens bounds the cache: one token per push service origin, of
// which there are a handful (the browsers' push services).
const maxVAPIDTokens = 256

// vapidToken is a signed Authorization header and when to sign a new one.
type vapidToken struct {
	header string
	renew  time.Time
}

// vapidSigner signs VAPID tokens (RFC 8292) and keeps one per audience: a
// push service's origin sees the same token until it nears its end, so a
// push costs no signature.
type vapidSigner struct {
	key     *ecdsa.PrivateKey
	public  string // raw base64url of the uncompressed public key
	subject string // "mailto:…" or "https:…"

	mu     sync.Mutex
	tokens map[string]vapidToken
}

// header returns the Authorization header for a request to endpoint at now.
func (v *vapidSigner) header(endpoint string, now time.Time) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("webpush: endpoint: %w", err)
	}
	aud := u.Scheme + "://" + u.Host
	v.mu.Lock()
	t, ok := v.tokens[aud]
	v.mu.Unlock()
	if ok && now.Before(t.renew) {
		return t.header, nil
	}
	exp := now.Add(vapidLifetime)
	signed, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"aud": aud,
		"exp": exp.Unix(),
		"sub": v.subject,
	}).SignedString(v.key)
	if err != nil {
		return "", fmt.Errorf("webpush: sign VAPID token: %w", err)
	}
	t = vapidToken{header: "vapid t=" + signed + ", k=" + v.public, renew: exp.Add(-vapidRenew)}
	v.mu.Lock()
	if len(v.tokens) >= maxVAPIDTokens {
		clear(v.tokens)
	}
	v.tokens[aud] = t
	v.mu.Unlock()
	return t.header, nil
}
