package webpush

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVAPIDTokenPerAudience: a token is signed once per push service origin
// and reused until an hour before its 12 hours end; another origin gets its
// own; each verifies with the sender's key and names its audience.
func TestVAPIDTokenPerAudience(t *testing.T) {
	pub, priv, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{PublicKey: pub, PrivateKey: priv, Subject: "ops@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	h := func(endpoint string, at time.Time) string {
		t.Helper()
		v, err := s.vapid.header(endpoint, at)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a := h("https://push.example.net/send/abc", t0)
	if b := h("https://push.example.net/send/def", t0.Add(10*time.Hour)); b != a {
		t.Error("a second push to the same origin within 11 hours signed a new token")
	}
	if c := h("https://push.example.net/send/abc", t0.Add(11*time.Hour+time.Second)); c == a {
		t.Error("the token was still reused an hour before its end")
	}
	other := h("https://updates.push.example.com/wpush/v2/xyz", t0)
	if other == a {
		t.Error("two origins share a token")
	}
	for header, aud := range map[string]string{a: "https://push.example.net", other: "https://updates.push.example.com"} {
		rest, ok := strings.CutPrefix(header, "vapid t=")
		tok, key, ok2 := strings.Cut(rest, ", k=")
		if !ok || !ok2 {
			t.Fatalf("Authorization %q is not \"vapid t=…, k=…\"", header)
		}
		if key != pub {
			t.Errorf("k = %q, want the public key", key)
		}
		parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &s.vapid.key.PublicKey, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return t0 }), jwt.WithAudience(aud))
		if err != nil {
			t.Fatalf("token for %s: %v", aud, err)
		}
		claims := parsed.Claims.(jwt.MapClaims)
		exp, _ := claims.GetExpirationTime()
		if sub, _ := claims.GetSubject(); sub != "mailto:ops@example.org" || !exp.Equal(t0.Add(12*time.Hour)) {
			t.Errorf("sub %q exp %v", sub, exp)
		}
	}
}
