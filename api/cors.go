package api

import (
	"net/http"
	"slices"
	"strings"
)

// Cross-origin use of the API, for a patient app (or any browser client)
// hosted on another origin than tend: only origins listed in
// Config.AllowedOrigins get CORS headers, and only on /v1/. Credentials
// (cookies) are never allowed: browsers send the bearer token themselves.

const (
	corsMethods = "GET, POST, PUT, PATCH, DELETE"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id"
	corsExpose  = "Location, Retry-After, X-Request-Id, ETag, Repr-Digest"
)

// cors answers preflight requests from allowed origins and marks their
// responses readable; everything else passes through unchanged.
func (s *Server) cors(h http.Handler) http.Handler {
	if len(s.cfg.AllowedOrigins) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/v1/") {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if !slices.Contains(s.cfg.AllowedOrigins, origin) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", corsMethods)
			w.Header().Set("Access-Control-Allow-Headers", corsHeaders)
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Access-Control-Expose-Headers", corsExpose)
		h.ServeHTTP(w, r)
	})
}
