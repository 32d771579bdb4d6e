package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name      string    `json:"name"`
		Role      string    `json:"role"`
		PatientID uuid.UUID `json:"patient_id"`
		OrgID     uuid.UUID `json:"org_id"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.eng.CreateUser(r.Context(), actor(r), engine.NewUser{Name: in.Name, Role: engine.Role(in.Role), PatientID: in.PatientID,
		OrgID: in.OrgID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

// createToken issues a token: {expires_in?: "24h"} (absent: no expiry).
// The answer carries the secret, once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		ExpiresIn string `json:"expires_in"`
	}
	if r.ContentLength != 0 {
		if err := s.decode(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	var lifetime time.Duration
	if in.ExpiresIn != "" {
		d, err := parseLifetime(in.ExpiresIn)
		if err != nil {
			s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "expires_in",
				Reason: "must be a duration such as 12h, 30d or 8784h (from 1m to 8784h)"}}})
			return
		}
		lifetime = d
	}
	t, secret, err := s.eng.IssueToken(r.Context(), actor(r), id, lifetime)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "user_id": id.String(), "id": t.ID, "expires_at": t.ExpiresAt})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	listPage(s, w, r, func(q url.Values, v *rpm.ValidationError) engine.UserFilter {
		return engine.UserFilter{Role: engine.Role(q.Get("role")), Query: q.Get("q"), Cursor: q.Get("cursor"), Limit: queryLimit(v, q.Get("limit"))}
	}, s.eng.ListUsers)
}

// directory answers GET /v1/directory: the staff by name, role and team.
func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	listPage(s, w, r, func(q url.Values, v *rpm.ValidationError) engine.DirectoryFilter {
		return engine.DirectoryFilter{Query: q.Get("q"), Cursor: q.Get("cursor"), Limit: queryLimit(v, q.Get("limit"))}
	}, s.eng.Directory)
}

// updateUser changes what an admin may change of a user: {disabled}.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Disabled    *bool   `json:"disabled"`
		OIDCSubject *string `json:"oidc_subject"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Disabled == nil && in.OIDCSubject == nil {
		s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "disabled", Reason: "is required (true or false) unless oidc_subject is given"}}})
		return
	}
	var u engine.User
	var err2 error
	if in.OIDCSubject != nil {
		u, err2 = s.eng.SetOIDCSubject(r.Context(), actor(r), id, *in.OIDCSubject)
	}
	if err2 == nil && in.Disabled != nil {
		u, err2 = s.eng.SetUserDisabled(r.Context(), actor(r), id, *in.Disabled)
	}
	if err2 != nil {
		s.writeError(w, r, err2)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	items, err := s.eng.ListTokens(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.RevokeToken(r.Context(), actor(r), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseLifetime reads a token's expires_in: whole days and a rest ("30d",
// "1d12h") or a Go duration ("8784h", "90m"). Rule durations stop at 90
// days; a token may live up to 366, which the engine checks.
func parseLifetime(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 0 || n > 100_000 {
		return 0, errors.New("invalid number of days")
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, errors.New("invalid duration after the days")
		}
		d += r
	}
	return d, nil
}
