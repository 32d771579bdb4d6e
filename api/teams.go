package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine"
)

func (s *Server) createCareTeam(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name       string                  `json:"name"`
		MemberIDs  []uuid.UUID             `json:"member_ids"`
		Members    []engine.TeamMember     `json:"members"`
		Escalation *engine.EscalationInput `json:"escalation"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.CreateCareTeam(r.Context(), actor(r), engine.NewCareTeam{
		Name: in.Name, MemberIDs: in.MemberIDs, Members: in.Members, Escalation: in.Escalation})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}
