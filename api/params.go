package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/tendhealth/tend/internal/text"
	"github.com/tendhealth/tend/rpm"
)

func (s *Server) getParams(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.GetPatientParams(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// deleteParams removes every override of the patient (the same as PUT {}).
func (s *Server) deleteParams(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.SetPatientParams(r.Context(), actor(r), id, map[string]map[string]float64{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// putParams replaces the patient's overrides with the body,
// {"<rule id>": {"<param>": value}}; {} removes them all, and so does DELETE.
// A body of null is refused: it is far more often a client bug than an
// intent to wipe a patient's thresholds.
func (s *Server) putParams(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var raw map[string]json.RawMessage
	if err := s.decode(w, r, &raw); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Decoded by hand so that a value of the wrong type is a 422 naming
	// "<rule id>.<param>".
	in := make(map[string]map[string]float64, len(raw))
	var v rpm.ValidationError
	for _, ruleID := range slices.Sorted(maps.Keys(raw)) {
		var params map[string]json.RawMessage
		if err := json.Unmarshal(raw[ruleID], &params); err != nil || params == nil {
			v.Add(text.Truncate(ruleID, 64), "must be an object of param names and numbers")
			continue
		}
		in[ruleID] = make(map[string]float64, len(params))
		for _, name := range slices.Sorted(maps.Keys(params)) {
			var f float64
			if err := json.Unmarshal(params[name], &f); err != nil {
				v.Add(text.Truncate(ruleID, 64)+"."+text.Truncate(name, 64), "must be a number")
				continue
			}
			in[ruleID][name] = f
		}
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.SetPatientParams(r.Context(), actor(r), id, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
