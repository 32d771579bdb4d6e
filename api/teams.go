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
		Timezone   string                  `json:"timezone"`
		OnCall     []engine.OnCallSlot     `json:"on_call"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.CreateCareTeam(r.Context(), actor(r), engine.NewCareTeam{
		Name: in.Name, MemberIDs: in.MemberIDs, Members: in.Members, Escalation: in.Escalation,
		Timezone: in.Timezone, OnCall: in.OnCall})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) listCareTeams(w http.ResponseWriter, r *http.Request) {
	teams, err := s.eng.ListCareTeams(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(teams, ""))
}

func (s *Server) getCareTeam(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.GetCareTeam(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) updateCareTeam(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Name       string                  `json:"name"`
		MemberIDs  []uuid.UUID             `json:"member_ids"`
		Members    []engine.TeamMember     `json:"members"`
		Escalation *engine.EscalationInput `json:"escalation"`
		Timezone   string                  `json:"timezone"`
		OnCall     []engine.OnCallSlot     `json:"on_call"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.UpdateCareTeam(r.Context(), actor(r), id, engine.CareTeamUpdate{
		Name: in.Name, MemberIDs: in.MemberIDs, Members: in.Members, Escalation: in.Escalation,
		Timezone: in.Timezone, OnCall: in.OnCall})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}
