package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestJobDashboard serves River's UI the way tend serve does and checks who
// reaches it: nobody without credentials (401), no one but an admin (404),
// an admin by bearer token or by the session cookie POST /v1/session sets;
// the cookie is Secure, HttpOnly, SameSite=Strict and scoped to the
// dashboard, the /v1 API ignores it, a cross-origin change through it is
// refused, and it stops working when its user is disabled or its token
// revoked.
func TestJobDashboard(t *testing.T) {
	ctx := context.Background()
	pool := enginetest.NewPool(t)
	s, err := loadSettings(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	sys, err := startSystem(ctx, s, pool, slog.New(slog.DiscardHandler), systemOpts{withAPI: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.stop()
	srv := httptest.NewServer(sys.api)
	defer srv.Close()

	root, err := sys.engine.CreateUser(ctx, engine.System("test"), engine.NewUser{Name: "Ops", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	rootTok, err := sys.engine.CreateToken(ctx, engine.System("test"), root.ID)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		status int
		header http.Header
		body   string
	}
	call := func(method, path, bearer string, cookie *http.Cookie, body any, header ...string) answer {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, string(b)}
	}
	// newUser creates a user with a token; it returns the user's id, the
	// token's id and the token.
	newUser := func(name, role string) (id, tokenID, token string) {
		t.Helper()
		var u struct{ ID string }
		a := call("POST", "/v1/users", rootTok, nil, map[string]any{"name": name, "role": role})
		if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), &u) != nil {
			t.Fatalf("create user: %d %s", a.status, a.body)
		}
		var tk struct{ ID, Token string }
		a = call("POST", "/v1/users/"+u.ID+"/tokens", rootTok, nil, map[string]any{})
		if a.status != http.StatusCreated || json.Unmarshal([]byte(a.body), &tk) != nil {
			t.Fatalf("create token: %d %s", a.status, a.body)
		}
		return u.ID, tk.ID, tk.Token
	}
	signIn := func(token string) *http.Cookie {
		t.Helper()
		a := call("POST", "/v1/session", token, nil, nil)
		if a.status != http.StatusCreated {
			t.Fatalf("POST /v1/session: %d %s", a.status, a.body)
		}
		resp := http.Response{Header: a.header}
		for _, c := range resp.Cookies() {
			if c.Name == "tend_session" {
				return c
			}
		}
		t.Fatalf("POST /v1/session set no session cookie: %v", a.header)
		return nil
	}

	_, _, docTok := newUser("Dr Ada Osei", "clinician")
	opsID, opsTokID, opsTok := newUser("Night operator", "admin")
	_, _, opsTok2 := newUser("Day operator", "admin")

	// Without credentials: 401, for the page and for its API.
	for _, p := range []string{"/riverui/", "/riverui/api/queues"} {
		if a := call("GET", p, "", nil, nil); a.status != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", p, a.status)
		}
		if a := call("GET", p, "", &http.Cookie{Name: "tend_session", Value: "tend_not-a-token"}, nil); a.status != http.StatusUnauthorized {
			t.Errorf("GET %s with a forged cookie: %d, want 401", p, a.status)
		}
	}
	// A clinician neither gets a session nor sees the dashboard.
	if a := call("POST", "/v1/session", docTok, nil, nil); a.status != http.StatusForbidden || a.header.Get("Set-Cookie") != "" {
		t.Errorf("clinician POST /v1/session: %d, cookie %q", a.status, a.header.Get("Set-Cookie"))
	}
	for _, p := range []string{"/riverui/", "/riverui/api/queues"} {
		if a := call("GET", p, docTok, nil, nil); a.status != http.StatusNotFound {
			t.Errorf("clinician GET %s: %d, want 404", p, a.status)
		}
		if a := call("GET", p, "", &http.Cookie{Name: "tend_session", Value: docTok}, nil); a.status != http.StatusNotFound {
			t.Errorf("clinician's token as a cookie, GET %s: %d, want 404", p, a.status)
		}
	}

	// An admin signs in: the cookie's attributes.
	cookie := signIn(opsTok)
	if !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/riverui" || cookie.MaxAge <= 0 {
		t.Errorf("session cookie attributes: %+v", cookie)
	}
	// With the cookie alone (a browser's navigation), the UI and its API answer.
	a := call("GET", "/riverui/", "", cookie, nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, "<html") {
		t.Fatalf("GET /riverui/ as admin: %d %.200s", a.status, a.body)
	}
	if a.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the dashboard may be framed: %v", a.header)
	}
	a = call("GET", "/riverui/api/queues", "", cookie, nil)
	var queues struct {
		Data []struct {
			Name string `json:"name"`
		} `json:"data"`
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &queues) != nil {
		t.Fatalf("GET /riverui/api/queues as admin: %d %.300s", a.status, a.body)
	}
	a = call("GET", "/riverui/api/states", "", cookie, nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, "available") {
		t.Errorf("GET /riverui/api/states as admin: %d %.300s", a.status, a.body)
	}
	// The bearer token works as well (scripts).
	if a := call("GET", "/riverui/api/states", opsTok2, nil, nil); a.status != http.StatusOK {
		t.Errorf("GET /riverui/api/states with a bearer token: %d", a.status)
	}
	// The /v1 API never takes the cookie.
	if a := call("GET", "/v1/users", "", cookie, nil); a.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/users with the cookie only: %d, want 401", a.status)
	}
	// A change through the cookie from another origin is refused; from the
	// dashboard's own origin it reaches River's UI.
	if a := call("PUT", "/riverui/api/queues/notify/pause", "", cookie, map[string]any{}, "Origin", "https://evil.example"); a.status != http.StatusForbidden {
		t.Errorf("cross-origin PUT with the cookie: %d, want 403", a.status)
	}
	if a := call("PUT", "/riverui/api/queues/notify/pause", "", cookie, map[string]any{}, "Origin", srv.URL); a.status >= 300 {
		t.Errorf("same-origin PUT with the cookie: %d %.200s", a.status, a.body)
	}
	if a := call("PUT", "/riverui/api/queues/notify/resume", "", cookie, map[string]any{}, "Origin", srv.URL); a.status >= 300 {
		t.Errorf("resume the queue: %d %.200s", a.status, a.body)
	}

	// Signing out clears the cookie.
	out := call("DELETE", "/v1/session", opsTok, nil, nil)
	if out.status != http.StatusNoContent || !strings.Contains(out.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("DELETE /v1/session: %d %q", out.status, out.header.Get("Set-Cookie"))
	}

	// Disabling the user ends the cookie's access (after the short
	// authentication cache); so does revoking the token.
	waitRefused := func(what string, c *http.Cookie) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			a := call("GET", "/riverui/api/states", "", c, nil)
			if a.status == http.StatusUnauthorized {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: the cookie still answers %d", what, a.status)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if a := call("PATCH", "/v1/users/"+opsID, rootTok, nil, map[string]any{"disabled": true}); a.status != http.StatusOK {
		t.Fatalf("disable: %d %s", a.status, a.body)
	}
	waitRefused("disabled user", cookie)
	if a := call("PATCH", "/v1/users/"+opsID, rootTok, nil, map[string]any{"disabled": false}); a.status != http.StatusOK {
		t.Fatalf("enable: %d %s", a.status, a.body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for call("GET", "/riverui/api/states", "", cookie, nil).status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the re-enabled user's cookie does not work again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := call("DELETE", "/v1/tokens/"+opsTokID, rootTok, nil, nil); a.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	waitRefused("revoked token", cookie)
}
