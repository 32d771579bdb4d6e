package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.AlertFilter{Cursor: q.Get("cursor"), Limit: queryLimit(&v, q.Get("limit"))}
	f.Statuses = append(f.Statuses, splitList(q["status"])...)
	for _, u := range splitList(q["urgency"]) {
		f.Urgencies = append(f.Urgencies, rpm.Urgency(u))
	}
	if p := q.Get("patient_id"); p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("patient_id", "must be a UUID")
		}
		f.PatientID = id
	}
	if p := q.Get("assignee"); p == "me" {
		f.Assignee = actor(r).UserID
	} else if p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("assignee", "must be a UUID or me")
		}
		f.Assignee = id
	}
	if p := q.Get("care_team_id"); p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("care_team_id", "must be a UUID")
		}
		f.CareTeamID = id
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListAlerts(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	counts, err := s.eng.CountAlerts(r.Context(), actor(r), f.CareTeamID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alertQueue{list: newList(items, next), Counts: counts})
}

// alertQueue is the triage queue's page: the list envelope plus the counts
// of unresolved alerts per urgency and status.
type alertQueue struct {
	list[engine.Alert]
	Counts engine.AlertCounts `json:"counts"`
}

// splitList accepts both ?status=a&status=b and ?status=a,b.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.eng.GetAlert(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Note string `json:"note"`
	}
	if r.ContentLength > 0 {
		if err := s.decode(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	a, err := s.eng.AckAlert(r.Context(), actor(r), id, in.Note)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) resolveAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Disposition string `json:"disposition"`
		Note        string `json:"note"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.eng.ResolveAlert(r.Context(), actor(r), id, in.Disposition, in.Note)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) snoozeAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		Until string `json:"until"`
		Note  string `json:"note"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var until time.Time
	if in.Until != "" {
		if until, err = time.Parse(time.RFC3339, in.Until); err != nil {
			s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "until", Reason: "must be an RFC 3339 time"}}})
			return
		}
	}
	a, err := s.eng.SnoozeAlert(r.Context(), actor(r), id, until, in.Note)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) assignAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in struct {
		UserID string `json:"user_id"`
		Note   string `json:"note"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var user uuid.UUID
	if in.UserID != "" {
		if user, err = uuid.Parse(in.UserID); err != nil {
			s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "user_id", Reason: "must be a UUID"}}})
			return
		}
	}
	a, err := s.eng.AssignAlert(r.Context(), actor(r), id, user, in.Note)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}
