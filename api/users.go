package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine"
)

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name      string    `json:"name"`
		Role      string    `json:"role"`
		PatientID uuid.UUID `json:"patient_id"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.eng.CreateUser(r.Context(), actor(r), engine.NewUser{Name: in.Name, Role: engine.Role(in.Role), PatientID: in.PatientID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.ContentLength != 0 {
		var in struct{}
		if err := s.decode(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	token, err := s.eng.CreateToken(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": token, "user_id": id.String()})
}
