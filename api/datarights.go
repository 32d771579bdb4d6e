package api

import (
	"net/http"

	"github.com/google/uuid"
)

// reasonBody is the body of POST /v1/patients/{id}/erase and
// /restriction: why (required; the audit entry keeps its length and
// SHA-256, not its text).
type reasonBody struct {
	Reason string `json:"reason"`
}

func (s *Server) erasePatient(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, in *reasonBody) (any, int, error) {
		out, err := s.eng.ErasePatient(r.Context(), actor(r), id, in.Reason)
		return out, http.StatusOK, err
	})
}

func (s *Server) restrictPatient(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, in *reasonBody) (any, int, error) {
		p, err := s.eng.RestrictPatient(r.Context(), actor(r), id, in.Reason)
		return p, http.StatusOK, err
	})
}

func (s *Server) liftRestriction(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		p, err := s.eng.LiftPatientRestriction(r.Context(), actor(r), id)
		return p, http.StatusOK, err
	})
}
