package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVAPIDCheckedAgainOnlyForExpiry: an Authorization seen before is
// accepted without its signature being checked again, but still refused
// once it has expired, and a tampered one is checked (and refused) afresh.
func TestVAPIDCheckedAgainOnlyForExpiry(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const aud = "http://127.0.0.1:1"
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"aud": aud, "exp": now.Add(time.Hour).Unix(), "sub": "mailto:ops@example.org",
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	authz := "vapid t=" + tok + ", k=" + base64.RawURLEncoding.EncodeToString(pub)
	w := &WebPush{}
	for range 2 {
		if _, _, status, err := w.verifyVAPID(authz, aud, now); err != nil {
			t.Fatalf("status %d: %v", status, err)
		}
	}
	if _, _, status, err := w.verifyVAPID(authz, aud, now.Add(2*time.Hour)); status != http.StatusUnauthorized {
		t.Errorf("expired token: status %d (%v), want 401", status, err)
	}
	if _, _, status, _ := w.verifyVAPID(authz+"x", aud, now); status != http.StatusUnauthorized {
		t.Errorf("tampered token: status %d, want 401", status)
	}
	if _, _, status, _ := w.verifyVAPID(authz, "http://127.0.0.1:2", now); status != http.StatusForbidden {
		t.Errorf("other audience: status %d, want 403", status)
	}
}

// TestAPNsTokenCheckedAgainOnlyForAge: a provider token seen before is
// refused once it is over an hour old.
func TestAPNsTokenCheckedAgainOnlyForAge(t *testing.T) {
	a := NewAPNs(nil)
	defer a.Close()
	key, err := jwt.ParseECPrivateKeyFromPEM(a.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tk := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.TeamID, "iat": now.Unix()})
	tk.Header["kid"] = a.KeyID
	tok, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := a.checkAuth("bearer "+tok, now); r != "" {
			t.Fatalf("fresh token: %s", r)
		}
	}
	if r := a.checkAuth("bearer "+tok, now.Add(61*time.Minute)); r != "ExpiredProviderToken" {
		t.Errorf("old token: %q, want ExpiredProviderToken", r)
	}
	if r := a.checkAuth("bearer "+tok+"x", now); r != "InvalidProviderToken" {
		t.Errorf("tampered token: %q, want InvalidProviderToken", r)
	}
}
