package api

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/tendhealth/tend/engine"
)

// authenticated requires a valid bearer token, applies the caller's rate
// limit, and puts the actor in the request context.
func (s *Server) authenticated(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r)
		if wait := s.failedAuthWait(addr); wait > 0 {
			tooMany(w, r, wait)
			return
		}
		token, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			s.failedAuth(addr)
			s.writeError(w, r, engine.ErrUnauthenticated)
			return
		}
		a, err := s.eng.Authenticate(r.Context(), token)
		if err != nil {
			if errors.Is(err, engine.ErrUnauthenticated) {
				s.failedAuth(addr)
			}
			s.writeError(w, r, err)
			return
		}
		if wait := s.allow(a); wait > 0 {
			tooMany(w, r, wait)
			return
		}
		a.RequestID, _ = r.Context().Value(requestIDKey).(string)
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r.WithContext(context.WithValue(r.Context(), actorKey, a)))
		if rec.status == http.StatusNotFound || rec.status == http.StatusForbidden {
			s.auditRefused(r, a, rec.status)
		}
	})
}

// auditRefused records that an authenticated caller was refused (403, or
// 404 for an object that does not exist or is out of their scope): the
// route, the object's id when the path names a well-formed one, and the
// patient when the object is one. The request itself wrote nothing.
func (s *Server) auditRefused(r *http.Request, a engine.Actor, status int) {
	e := engine.AuditRecord{Action: "request.refused", ObjectType: "route",
		Detail: map[string]any{"route": r.Pattern, "status": status}}
	if id, err := uuid.Parse(r.PathValue("id")); err == nil {
		e.ObjectID = id.String()
		switch {
		case strings.HasPrefix(r.Pattern, "GET "+fhirBase+"/Patient/"), strings.Contains(r.Pattern, " /v1/patients/{id}"):
			e.PatientID, e.ObjectType = id, "patient"
		default:
			e.ObjectType = objectType(r.Pattern)
		}
	}
	if err := s.eng.AuditRefused(context.WithoutCancel(r.Context()), a, e); err != nil {
		s.log.ErrorContext(r.Context(), "audit refusal failed", "request_id", a.RequestID, "route", r.Pattern, "error", err)
	}
}

// objectType names what a route's {id} is: the path segment before it, in
// the singular ("/v1/alerts/{id}/ack" → "alert", "/fhir/r4/Flag/{id}" → "Flag").
func objectType(pattern string) string {
	_, path, _ := strings.Cut(pattern, " ")
	before, _, ok := strings.Cut(path, "/{id}")
	if !ok {
		return "route"
	}
	seg := before[strings.LastIndex(before, "/")+1:]
	return strings.TrimSuffix(strings.ReplaceAll(seg, "-", "_"), "s")
}

func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	writeProblem(w, r, http.StatusTooManyRequests, "Too many requests", "slow down and retry after the given delay", nil)
}

// clientAddr is the address a request came from (the TCP peer: behind a
// proxy, the proxy's).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// failedAuthWait is how long a client address must wait before its next
// authentication attempt: each missing, unknown, revoked or expired token
// takes one from the address's bucket (Config.FailedAuthRate), so guessing
// tokens is throttled and an empty bucket answers 429 without a lookup.
func (s *Server) failedAuthWait(addr string) time.Duration {
	if s.cfg.RateLimit < 0 || s.cfg.FailedAuthRate < 0 {
		return 0
	}
	now := s.cfg.Now()
	s.limitersMu.Lock()
	l, ok := s.failed[addr]
	s.limitersMu.Unlock()
	if !ok || l.TokensAt(now) >= 1 {
		return 0
	}
	return time.Duration((1 - l.TokensAt(now)) / float64(l.Limit()) * float64(time.Second))
}

func (s *Server) failedAuth(addr string) {
	if s.cfg.RateLimit < 0 || s.cfg.FailedAuthRate < 0 {
		return
	}
	now := s.cfg.Now()
	s.limitersMu.Lock()
	l, ok := s.failed[addr]
	if !ok {
		if len(s.failed) > 100_000 {
			for k, x := range s.failed {
				if now.Sub(x.seen) > time.Minute {
					delete(s.failed, k)
				}
			}
		}
		l = &limiter{Limiter: rate.NewLimiter(rate.Limit(s.cfg.FailedAuthRate), s.cfg.FailedAuthBurst)}
		s.failed[addr] = l
	}
	l.seen = now
	s.limitersMu.Unlock()
	l.AllowN(now, 1)
}

// bearerToken takes the token from an Authorization header. The scheme is
// case-insensitive (RFC 9110 §11.1).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func actor(r *http.Request) engine.Actor {
	a, _ := r.Context().Value(actorKey).(engine.Actor)
	return a
}

// allow takes one token from the user's bucket; it returns 0 when the request
// may proceed, else how long to wait.
func (s *Server) allow(a engine.Actor) time.Duration {
	if s.cfg.RateLimit < 0 {
		return 0
	}
	now := s.cfg.Now()
	s.limitersMu.Lock()
	l, ok := s.limiters[a.UserID]
	if !ok {
		if len(s.limiters) > 100_000 { // forget idle users rather than grow without bound
			for id, x := range s.limiters {
				if now.Sub(x.seen) > time.Minute {
					delete(s.limiters, id)
				}
			}
		}
		l = &limiter{Limiter: rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst)}
		s.limiters[a.UserID] = l
	}
	l.seen = now
	s.limitersMu.Unlock()
	res := l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}
