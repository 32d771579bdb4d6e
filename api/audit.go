package api

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.AuditFilter{Limit: queryLimit(&v, q.Get("limit"))}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			v.Add("cursor", "is not a cursor returned by this endpoint")
		}
		f.After = n
	}
	if p := q.Get("patient_id"); p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("patient_id", "must be a UUID")
		}
		f.PatientID = id
	}
	if p := q.Get("actor_id"); p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("actor_id", "must be a UUID")
		}
		f.ActorID = id
	}
	if act := q.Get("action"); act != "" {
		if len(act) > 64 {
			v.Add("action", "is longer than 64 characters")
		}
		f.Action = act
	}
	switch q.Get("order") {
	case "", "oldest":
	case "newest":
		f.Newest = true
	default:
		v.Add("order", "must be oldest or newest")
	}
	f.Since = queryTime(&v, q.Get("since"), "since")
	f.Until = queryTime(&v, q.Get("until"), "until")
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListAudit(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, next))
}
