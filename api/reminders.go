package api

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// createSchedule stores a medication or measurement schedule for the patient
// (schedulers and clinicians in scope).
func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in rpm.Schedule
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.CreateSchedule(r.Context(), actor(r), id, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.ListSchedules(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(out, ""))
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.GetSchedule(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// patchSchedule edits, pauses or resumes a schedule with a JSON merge
// patch. The body is checked as strictly as any other (types, text, unknown
// fields) before the engine merges it, field by field, into the schedule.
func (s *Server) patchSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkContentType(r, "application/json"); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.writeError(w, r, decodeError(err, s.cfg.MaxBodyBytes, nil))
		return
	}
	var probe engine.SchedulePatch
	if err := decodeBody(body, &probe, s.cfg.MaxBodyBytes); err != nil {
		// The decoder names a field of the embedded schedule "Schedule.times":
		// the client wrote "times".
		var bad *badRequest
		if errors.As(err, &bad) {
			for i := range bad.fields {
				bad.fields[i].Field = strings.TrimPrefix(bad.fields[i].Field, "Schedule.")
			}
		}
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.UpdateSchedule(r.Context(), actor(r), id, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteSchedule deletes a schedule; its pending doses are cancelled.
func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.DeleteSchedule(r.Context(), actor(r), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// confirmDose records a dose as taken or skipped (the patient, or a
// clinician on the patient's behalf).
func (s *Server) confirmDose(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in engine.DoseConfirmation
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.ConfirmDose(r.Context(), actor(r), id, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// listDoses lists the patient's doses due in [since, until), optionally of
// one status.
func (s *Server) listDoses(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.DoseFilter{PatientID: id, Status: q.Get("status")}
	f.Since = queryTime(&v, q.Get("since"), "since")
	f.Until = queryTime(&v, q.Get("until"), "until")
	f.Limit = queryLimit(&v, q.Get("limit"))
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.ListDoses(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(out, ""))
}

// getAdherence summarises the patient's doses since a time, per schedule.
func (s *Server) getAdherence(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var v rpm.ValidationError
	since := queryTime(&v, r.URL.Query().Get("since"), "since")
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.eng.GetAdherence(r.Context(), actor(r), id, since)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
