package api

import "net/http"

// getMe answers GET /v1/me: the caller's user, role, care teams with their
// team role, and capabilities. Clients decide what to offer from it.
func (s *Server) getMe(w http.ResponseWriter, r *http.Request) {
	reply(s, w, r, func() (any, int, error) {
		me, err := s.eng.Me(r.Context(), actor(r))
		return me, http.StatusOK, err
	})
}
