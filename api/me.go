package api

import (
	"net/http"

	"github.com/tendhealth/tend/engine"
)

// getMe answers GET /v1/me: the caller's user, role, care teams with their
// team role, and capabilities. Clients decide what to offer from it.
func (s *Server) getMe(w http.ResponseWriter, r *http.Request) {
	reply(s, w, r, func() (any, int, error) {
		me, err := s.eng.Me(r.Context(), actor(r))
		return me, http.StatusOK, err
	})
}

// getPresence answers GET /v1/me/presence: the caller's own presence, whether
// they hide it, and the idle time after which their client reports them
// away.
func (s *Server) getPresence(w http.ResponseWriter, r *http.Request) {
	reply(s, w, r, func() (any, int, error) {
		p, err := s.eng.GetPresence(r.Context(), actor(r))
		return p, http.StatusOK, err
	})
}

// setPresence answers POST /v1/me/presence: the client reports its user
// away (idle) or back online, or a staff member hides or shows their
// presence.
func (s *Server) setPresence(w http.ResponseWriter, r *http.Request) {
	withJSON(s, w, r, func(in *engine.PresenceUpdate) (any, int, error) {
		p, err := s.eng.SetPresence(r.Context(), actor(r), *in)
		return p, http.StatusOK, err
	})
}
