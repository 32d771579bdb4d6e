package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
)

// secondServer is another tend process on w's database.
func (w *world) secondServer(t *testing.T) string {
	t.Helper()
	eng, err := engine.New(engine.Config{Pool: w.pool, Keys: testKeys(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

// waitStatus polls until path answers want (at most 2 s) and returns how
// long it took.
func waitStatus(t *testing.T, c client, path string, want int) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		if c.do("GET", path, nil).status == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within 2 s", path, want)
	return 0
}

// Tokens expire, are listed without their secret, and a revocation — or
// disabling the user — takes effect within a second on another process
// that had the token cached.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	other := w.secondServer(t)
	r := w.admin.do("POST", "/v1/users/"+w.clinician["A"]+"/tokens", map[string]any{"expires_in": "720h"})
	if r.status != http.StatusCreated {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tok struct {
		Token, ID string
		ExpiresAt *time.Time `json:"expires_at"`
	}
	r.decode(t, &tok)
	if tok.ExpiresAt == nil || tok.ExpiresAt.Before(time.Now().Add(719*time.Hour)) {
		t.Fatalf("expires_at = %v", tok.ExpiresAt)
	}
	wantProblem(t, w.admin.do("POST", "/v1/users/"+w.clinician["A"]+"/tokens", map[string]any{"expires_in": "soon"}),
		http.StatusUnprocessableEntity, "expires_in")
	// Up to 366 days, written in hours or days; a minute more is refused.
	for in, want := range map[string]time.Duration{"8784h": 8784 * time.Hour, "366d": 8784 * time.Hour, "1d12h": 36 * time.Hour} {
		r := w.admin.do("POST", "/v1/users/"+w.clinician["A"]+"/tokens", map[string]any{"expires_in": in})
		var long struct {
			ExpiresAt *time.Time `json:"expires_at"`
		}
		r.decode(t, &long)
		if r.status != http.StatusCreated || long.ExpiresAt == nil || time.Until(*long.ExpiresAt) < want-time.Minute ||
			time.Until(*long.ExpiresAt) > want {
			t.Errorf("expires_in %s: %d %s", in, r.status, r.body)
		}
	}
	for _, in := range []string{"8784h1m", "367d", "30s", "d", "1dx"} {
		wantProblem(t, w.admin.do("POST", "/v1/users/"+w.clinician["A"]+"/tokens", map[string]any{"expires_in": in}),
			http.StatusUnprocessableEntity, "expires_in")
	}

	r = w.admin.do("GET", "/v1/users/"+w.clinician["A"]+"/tokens", nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), tok.Token) || !strings.Contains(string(r.body), tok.ID) {
		t.Fatalf("token list: %d %s", r.status, r.body)
	}
	doc := client{t: t, base: other, token: tok.Token}
	if s := doc.do("GET", "/v1/patients/"+w.patient["A"], nil).status; s != http.StatusOK {
		t.Fatalf("new token on the other process: %d", s) // now cached there
	}
	if r := w.admin.do("DELETE", "/v1/tokens/"+tok.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if d := waitStatus(t, doc, "/v1/patients/"+w.patient["A"], http.StatusUnauthorized); d > 1500*time.Millisecond {
		t.Errorf("revocation took %v on the other process", d)
	}
	wantProblem(t, w.actors["clinician"].do("DELETE", "/v1/tokens/"+tok.ID, nil), http.StatusForbidden)

	// Disabling a user stops every token of theirs, across processes.
	docB := client{t: t, base: other, token: w.actors["clinicianB"].token}
	if s := docB.do("GET", "/v1/patients/"+w.patient["B"], nil).status; s != http.StatusOK {
		t.Fatalf("B before: %d", s)
	}
	r = w.admin.do("PATCH", "/v1/users/"+w.clinician["B"], map[string]any{"disabled": true})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"disabled_at":"`) {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	waitStatus(t, docB, "/v1/patients/"+w.patient["B"], http.StatusUnauthorized)
	wantProblem(t, w.admin.do("PATCH", "/v1/users/"+w.clinician["B"], map[string]any{}), http.StatusUnprocessableEntity, "disabled")
	if r := w.admin.do("PATCH", "/v1/users/"+w.clinician["B"], map[string]any{"disabled": false}); r.status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	waitStatus(t, docB, "/v1/patients/"+w.patient["B"], http.StatusOK)
	var audits int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries
		WHERE action IN ('token.create', 'token.list', 'token.revoke', 'user.disable', 'user.enable')`).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits < 5 {
		t.Errorf("%d audit entries for the token and account changes", audits)
	}
}

// Users and patients are listed, searched and paged; patients only in scope.
func TestListUsersAndPatients(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var users struct {
		Items      []struct{ Name, Role string }
		NextCursor *string `json:"next_cursor"`
	}
	r := w.admin.do("GET", "/v1/users?role=clinician&limit=1", nil)
	r.decode(t, &users)
	if r.status != http.StatusOK || len(users.Items) != 1 || users.Items[0].Role != "clinician" || users.NextCursor == nil {
		t.Fatalf("users page 1: %d %s", r.status, r.body)
	}
	r = w.admin.do("GET", "/v1/users?role=clinician&limit=1&cursor="+*users.NextCursor, nil)
	var page2 struct{ Items []struct{ Name string } }
	r.decode(t, &page2)
	if len(page2.Items) != 1 || page2.Items[0].Name == users.Items[0].Name {
		t.Fatalf("users page 2: %s", r.body)
	}
	wantProblem(t, w.admin.do("GET", "/v1/users?role=wizard", nil), http.StatusUnprocessableEntity, "role")
	wantProblem(t, w.actors["clinician"].do("GET", "/v1/users", nil), http.StatusForbidden)

	var patients struct {
		Items []struct{ ID, DisplayName string }
	}
	r = w.actors["clinician"].do("GET", "/v1/patients?q=patient", nil)
	r.decode(t, &patients)
	if len(patients.Items) != 1 || patients.Items[0].ID != w.patient["A"] {
		t.Fatalf("clinician A's patients: %s", r.body)
	}
	r = w.admin.do("GET", "/v1/patients?q=PATIENT%20B", nil)
	r.decode(t, &patients)
	if len(patients.Items) != 1 || patients.Items[0].ID != w.patient["B"] {
		t.Fatalf("admin's search: %s", r.body)
	}
	r = w.actors["patientB"].do("GET", "/v1/patients", nil)
	r.decode(t, &patients)
	if len(patients.Items) != 1 || patients.Items[0].ID != w.patient["B"] {
		t.Fatalf("patient B's list: %s", r.body)
	}
}
