package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

func (s *Server) createPatient(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DisplayName string    `json:"display_name"`
		Timezone    string    `json:"timezone"`
		CareTeamID  uuid.UUID `json:"care_team_id"`
		Programs    []string  `json:"programs"`
		ExternalID  string    `json:"external_id"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.CreatePatient(r.Context(), actor(r), engine.NewPatient{DisplayName: in.DisplayName, Timezone: in.Timezone,
		CareTeamID: in.CareTeamID, Programs: in.Programs, ExternalID: in.ExternalID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) getPatient(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.GetPatient(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) listPatients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.PatientFilter{Query: q.Get("q"), Cursor: q.Get("cursor"), Limit: queryLimit(&v, q.Get("limit"))}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListPatients(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, next))
}

// patientPatch is PATCH /v1/patients/{id}'s body: a field left out keeps its value.
type patientPatch struct {
	DisplayName *string    `json:"display_name"`
	Timezone    *string    `json:"timezone"`
	CareTeamID  *uuid.UUID `json:"care_team_id"`
	Programs    []string   `json:"programs"`
	ExternalID  *string    `json:"external_id"`
}

func (s *Server) updatePatient(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, in *patientPatch) (any, int, error) {
		p, err := s.eng.UpdatePatient(r.Context(), actor(r), id, engine.PatientUpdate{DisplayName: in.DisplayName, Timezone: in.Timezone,
			CareTeamID: in.CareTeamID, Programs: in.Programs, ExternalID: in.ExternalID})
		return p, http.StatusOK, err
	})
}
