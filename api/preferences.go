package api

import (
	"net/http"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// preferences is the body of GET and PUT /v1/me/preferences. A PUT replaces
// both fields: an absent or null timezone or quiet_hours clears it.
type preferences struct {
	Timezone   *string            `json:"timezone"`
	QuietHours *engine.QuietHours `json:"quiet_hours"`
}

func toPreferences(p engine.Preferences) preferences {
	out := preferences{QuietHours: p.QuietHours}
	if p.Timezone != "" {
		out.Timezone = &p.Timezone
	}
	return out
}

func (s *Server) getPreferences(w http.ResponseWriter, r *http.Request) {
	p, err := s.eng.GetPreferences(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPreferences(p))
}

func (s *Server) putPreferences(w http.ResponseWriter, r *http.Request) {
	var in preferences
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := engine.Preferences{QuietHours: in.QuietHours}
	if in.Timezone != nil {
		if *in.Timezone == "" {
			s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "timezone",
				Reason: "must be an IANA time zone such as America/Chicago, or null to clear it"}}})
			return
		}
		p.Timezone = *in.Timezone
	}
	p, err := s.eng.SetPreferences(r.Context(), actor(r), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPreferences(p))
}
