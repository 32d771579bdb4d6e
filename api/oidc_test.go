package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/tendhealth/tend/engine"
)

// Single sign-on over HTTP: an admin maps an OpenID Connect subject to a
// clinician with PATCH /v1/users/{id}; the provider's ID token then works as
// a bearer token with the clinician's scope, and a token for an unmapped
// subject is a 401 like any unknown token.
func TestOIDCSignOnAPI(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: "RS256"}}}
	hs := httptest.NewServer(idp)
	t.Cleanup(hs.Close)
	idp.SetIssuer(hs.URL)
	s := newSetupWith(t, engine.Config{OIDC: &engine.OIDCConfig{Issuer: hs.URL, Audience: "tend-console"}})
	var clinicianID string
	var users struct{ Items []struct{ ID, Role string } }
	s.admin.do("GET", "/v1/users?role=clinician", nil).decode(t, &users)
	if len(users.Items) != 1 {
		t.Fatalf("clinicians: %+v", users.Items)
	}
	clinicianID = users.Items[0].ID
	idToken := func(sub string) string {
		c, _ := json.Marshal(map[string]any{"iss": hs.URL, "aud": "tend-console", "sub": sub,
			"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
		return oidctest.SignIDToken(key, "k1", "RS256", string(c))
	}
	sso := s.admin.as(idToken("ada@idp"))
	wantProblem(t, sso.do("GET", "/v1/patients", nil), http.StatusUnauthorized)
	r := s.admin.do("PATCH", "/v1/users/"+clinicianID, map[string]any{"oidc_subject": "ada@idp"})
	if r.status != http.StatusOK {
		t.Fatalf("map subject: %d %s", r.status, r.body)
	}
	var u struct {
		OIDCSubject string `json:"oidc_subject"`
	}
	r.decode(t, &u)
	if u.OIDCSubject != "ada@idp" {
		t.Fatalf("user after mapping: %s", r.body)
	}
	r = sso.do("GET", "/v1/patients/"+s.patientID, nil)
	if r.status != http.StatusOK {
		t.Fatalf("signed-on clinician reads their patient: %d %s", r.status, r.body)
	}
	// Only admins map subjects; a clinician signed on cannot map themselves elsewhere.
	wantProblem(t, sso.do("PATCH", "/v1/users/"+clinicianID, map[string]any{"oidc_subject": "other"}), http.StatusForbidden)
	wantProblem(t, s.admin.do("PATCH", "/v1/users/"+clinicianID, map[string]any{"oidc_subject": 12}), http.StatusUnprocessableEntity)
	// Another subject of the same provider is nobody.
	wantProblem(t, s.admin.as(idToken("mallory@idp")).do("GET", "/v1/patients", nil), http.StatusUnauthorized)
}
