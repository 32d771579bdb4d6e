package api

import "net/http"

// getMe answers GET /v1/me: the caller's user, role, care teams with their
// team role, and capabilities. Clients decide what to offer from it.
func (s *Server) getMe(w http.ResponseWriter, r *http.Request) {
	me, err := s.eng.Me(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, me)
}
