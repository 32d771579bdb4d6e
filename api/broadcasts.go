package api

import (
	"net/http"

	"github.com/tendhealth/tend/engine"
)

// broadcastBody is the body of POST /v1/care-teams/{id}/broadcasts.
type broadcastBody struct {
	Body   string `json:"body"`
	Urgent bool   `json:"urgent"`
}

// createBroadcast sends one message into every patient thread of a care
// team. The fan-out runs in the background: 202 with the broadcast, whose
// progress GET /v1/broadcasts/{id} follows.
func (s *Server) createBroadcast(w http.ResponseWriter, r *http.Request) {
	team, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in broadcastBody
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.eng.Broadcast(r.Context(), actor(r), team, engine.NewBroadcast{Body: in.Body, Urgent: in.Urgent})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/broadcasts/"+b.ID.String())
	writeJSON(w, http.StatusAccepted, b)
}

func (s *Server) getBroadcast(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.eng.GetBroadcast(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}
