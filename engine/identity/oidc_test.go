package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// provider is a local OpenID provider: discovery and JWKS over httptest,
// with keys that can be rotated between requests.
type provider struct {
	mu  sync.Mutex
	srv *oidctest.Server
	hs  *httptest.Server
}

func newProvider(t *testing.T, keys ...oidctest.PublicKey) *provider {
	p := &provider{srv: &oidctest.Server{PublicKeys: keys, Algorithms: []string{"RS256", "ES256"}}}
	p.hs = httptest.NewServer(p.srv)
	p.srv.SetIssuer(p.hs.URL)
	t.Cleanup(p.hs.Close)
	return p
}

func (p *provider) setKeys(keys ...oidctest.PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.srv.PublicKeys = keys
}

func claims(t *testing.T, m map[string]any) string {
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOIDCSignOn: an ID token from the configured provider signs in as the
// user an admin mapped its subject to; every malformed, expired, foreign or
// forged token, an unknown subject and a disabled user are refused, and a
// key rotation at the provider needs no restart.
func TestOIDCSignOn(t *testing.T) {
	ctx := context.Background()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p := newProvider(t, oidctest.PublicKey{PublicKey: rsaKey.Public(), KeyID: "k1", Algorithm: "RS256"})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	pool := pgtest.NewPool(t)
	us := New(Config{Pool: pool, Now: clock, Audit: audit.Writer{Now: clock}, AuthCacheTTL: -1,
		OIDC: &OIDCConfig{Issuer: p.hs.URL, Audience: "tend"}})
	admin := access.System("test")
	clin, err := us.CreateUser(ctx, admin, NewUser{Name: "Dr Ada", Role: access.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := us.SetOIDCSubject(ctx, admin, clin.ID, "sub-ada"); err != nil {
		t.Fatal(err)
	}
	other, err := us.CreateUser(ctx, admin, NewUser{Name: "Dr Off", Role: access.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := us.SetOIDCSubject(ctx, admin, other.ID, "sub-off"); err != nil {
		t.Fatal(err)
	}
	if _, err := us.SetUserDisabled(ctx, admin, other.ID, true); err != nil {
		t.Fatal(err)
	}
	// A subject maps to one user only.
	if _, err := us.SetOIDCSubject(ctx, admin, other.ID, "sub-ada"); err == nil {
		t.Fatal("one subject mapped to two users")
	}
	// Only admins map subjects.
	if _, err := us.SetOIDCSubject(ctx, access.Actor{UserID: clin.ID, Role: access.RoleClinician}, clin.ID, "x"); !errors.Is(err, access.ErrForbidden) {
		t.Fatalf("clinician mapping a subject: %v", err)
	}

	good := map[string]any{"iss": p.hs.URL, "aud": "tend", "sub": "sub-ada", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range good {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	sign := func(m map[string]any) string { return oidctest.SignIDToken(rsaKey, "k1", "RS256", claims(t, m)) }
	b64 := base64.RawURLEncoding.EncodeToString
	none := b64([]byte(`{"alg":"none","kid":"k1"}`)) + "." + b64([]byte(claims(t, good))) + "."
	hs256 := oidctest.SignIDToken([]byte("a shared secret of at least 32 bytes!!"), "k1", "HS256", claims(t, good))

	a, err := us.Authenticate(ctx, sign(good))
	if err != nil || a.UserID != clin.ID || a.Role != access.RoleClinician {
		t.Fatalf("valid token: %+v, %v", a, err)
	}
	refused := []struct {
		name  string
		token string
	}{
		{"expired", sign(with("exp", now.Add(-time.Minute).Unix()))},
		{"no expiry", sign(with("exp", nil))},
		{"not yet valid (nbf beyond the 5-minute leeway)", sign(with("nbf", now.Add(time.Hour).Unix()))},
		{"wrong audience", sign(with("aud", "someone-else"))},
		{"wrong issuer", sign(with("iss", "https://evil.example"))},
		{"signed by a key the provider does not publish, same kid", oidctest.SignIDToken(otherKey, "k1", "RS256", claims(t, good))},
		{"alg none", none},
		{"HS256 (not on the allow-list)", hs256},
		{"payload changed after signing", func() string {
			tok := sign(good)
			parts := splitJWT(tok)
			return parts[0] + "." + b64([]byte(claims(t, with("sub", "sub-admin")))) + "." + parts[2]
		}()},
		{"unknown subject", sign(with("sub", "sub-nobody"))},
		{"matching e-mail but unmapped subject", sign(func() map[string]any { m := with("sub", "sub-new"); m["email"] = "ada@example.org"; return m }())},
		{"disabled user", sign(with("sub", "sub-off"))},
		{"empty subject", sign(with("sub", ""))},
		{"garbage", "a.b.c"},
	}
	for _, c := range refused {
		if a, err := us.Authenticate(ctx, c.token); !errors.Is(err, access.ErrUnauthenticated) {
			t.Errorf("%s: %+v, %v; want unauthenticated", c.name, a, err)
		}
	}

	// Key rotation: the provider publishes a new key (new kid, another
	// algorithm) and drops the old one. A token with the new kid makes Tend
	// fetch the JWKS again; the old key's tokens stop working.
	old := sign(good)
	p.setKeys(oidctest.PublicKey{PublicKey: ecKey.Public(), KeyID: "k2", Algorithm: "ES256"})
	rotated := oidctest.SignIDToken(ecKey, "k2", "ES256", claims(t, good))
	if a, err := us.Authenticate(ctx, rotated); err != nil || a.UserID != clin.ID {
		t.Fatalf("token signed with the rotated key: %+v, %v", a, err)
	}
	if _, err := us.Authenticate(ctx, old); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("token of the retired key: %v", err)
	}
	// Unmapping the subject ends sign-on.
	if _, err := us.SetOIDCSubject(ctx, admin, clin.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := us.Authenticate(ctx, rotated); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("after unmapping: %v", err)
	}
	// Tend's own tokens keep working beside OIDC.
	tok, err := us.CreateToken(ctx, admin, clin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := us.Authenticate(ctx, tok); err != nil || a.UserID != clin.ID {
		t.Fatalf("opaque token with OIDC on: %+v, %v", a, err)
	}
}

// TestOIDCConfigRefusesSymmetricAlgorithms: the allow-list takes only
// asymmetric algorithms, and both issuer and audience are required.
func TestOIDCConfigRefusesSymmetricAlgorithms(t *testing.T) {
	for _, c := range []OIDCConfig{
		{Issuer: "https://id.example", Audience: "tend", Algorithms: []string{"HS256"}},
		{Issuer: "https://id.example", Audience: "tend", Algorithms: []string{"none"}},
		{Issuer: "https://id.example"},
		{Audience: "tend"},
	} {
		if err := ValidateOIDCConfig(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := ValidateOIDCConfig(OIDCConfig{Issuer: "https://id.example", Audience: "tend", Algorithms: []string{"RS256", "ES256"}}); err != nil {
		t.Fatal(err)
	}
}

func splitJWT(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
