package api

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tendhealth/tend/engine"
)

// The operators' job dashboard (River's own UI) is a web application a
// browser navigates to, and browsers send no Authorization header on
// navigation. An admin therefore signs in once with POST /v1/session (bearer
// token as usual), which answers with a cookie scoped to the dashboard's
// path. The cookie holds the token itself, so each request under /riverui/
// is authenticated exactly as a bearer request is: a disabled user, a
// revoked or expired token stops working at once. The /v1 API never reads
// the cookie (no cross-site request can act through it there), and
// SameSite=Strict keeps other sites from sending it to the dashboard.

const (
	// sessionCookie names the dashboard's session cookie.
	sessionCookie = "tend_session"
	// jobsPrefix is where the job dashboard is mounted.
	jobsPrefix = "/riverui"
	// sessionLifetime bounds the cookie's life in the browser; the token's
	// own expiry and revocation apply on every request regardless.
	sessionLifetime = 12 * time.Hour
)

// createSession sets the dashboard's session cookie for an admin.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	a := actor(r)
	if !a.Is(engine.RoleAdmin) {
		s.writeError(w, r, engine.ErrForbidden)
		return
	}
	token, _ := bearerToken(r.Header.Get("Authorization"))
	expires := s.cfg.Now().Add(sessionLifetime)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: jobsPrefix, MaxAge: int(sessionLifetime.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"jobs_url": jobsPrefix + "/", "expires_at": expires.UTC()})
}

// deleteSession clears the dashboard's session cookie (signing out).
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: jobsPrefix, MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	w.WriteHeader(http.StatusNoContent)
}

// jobsUI serves the job dashboard to operators and the default
// organisation's admins (its jobs are every organisation's): authenticated by
// the session cookie or a bearer token, exactly like the API. No credentials
// (or refused ones) answer 401; anyone else, or a server without a
// dashboard, gets 404, as if nothing were there.
func (s *Server) jobsUI(w http.ResponseWriter, r *http.Request) {
	token, ok := bearerToken(r.Header.Get("Authorization"))
	fromCookie := false
	if !ok {
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			token, ok, fromCookie = c.Value, true, true
		}
	}
	if !ok {
		s.writeError(w, r, engine.ErrUnauthenticated)
		return
	}
	a, err := s.eng.Authenticate(r.Context(), token)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !engine.SeesJobs(a) || s.cfg.JobsUI == nil {
		writeProblem(w, r, http.StatusNotFound, "Not found", "no such endpoint", nil)
		return
	}
	// A cookie is sent by the browser on its own: a change made with it must
	// come from this origin's pages (SameSite=Strict already keeps other
	// sites' requests from carrying it; this also refuses sibling origins).
	if fromCookie && r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		writeProblem(w, r, http.StatusForbidden, "Forbidden", "cross-origin request", nil)
		return
	}
	if wait := s.allow(a); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		writeProblem(w, r, http.StatusTooManyRequests, "Too many requests", "slow down and retry after the given delay", nil)
		return
	}
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	a.RequestID, _ = r.Context().Value(requestIDKey).(string)
	s.cfg.JobsUI.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey, a)))
}

// sameOrigin reports whether a request's Origin (or, without one, its
// Sec-Fetch-Site) says it came from this server's own pages.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "" || site == "same-origin"
}
