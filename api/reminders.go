package api

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// createSchedule stores a medication or measurement schedule for the patient
// (schedulers and clinicians in scope).
func (s *Server) createSchedule(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, in *rpm.Schedule) (any, int, error) {
		out, err := s.eng.CreateSchedule(r.Context(), actor(r), id, *in)
		return out, http.StatusCreated, err
	})
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		out, err := s.eng.ListSchedules(r.Context(), actor(r), id)
		return newList(out, ""), http.StatusOK, err
	})
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		out, err := s.eng.GetSchedule(r.Context(), actor(r), id)
		return out, http.StatusOK, err
	})
}

// patchSchedule edits, pauses or resumes a schedule with a JSON merge
// patch. The body is checked as strictly as any other (types, text, unknown
// fields) before the engine merges it, field by field, into the schedule.
func (s *Server) patchSchedule(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		if err := checkContentType(r, "application/json"); err != nil {
			return nil, 0, err
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			return nil, 0, decodeError(err, s.cfg.MaxBodyBytes, nil)
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
			return nil, 0, err
		}
		out, err := s.eng.UpdateSchedule(r.Context(), actor(r), id, body)
		return out, http.StatusOK, err
	})
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
	withBody(s, w, r, func(id uuid.UUID, in *engine.DoseConfirmation) (any, int, error) {
		out, err := s.eng.ConfirmDose(r.Context(), actor(r), id, *in)
		return out, http.StatusOK, err
	})
}

// listDoses lists the patient's doses due in [since, until), optionally of
// one status.
func (s *Server) listDoses(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		q := r.URL.Query()
		var v rpm.ValidationError
		f := engine.DoseFilter{PatientID: id, Status: q.Get("status")}
		f.Since = queryTime(&v, q.Get("since"), "since")
		f.Until = queryTime(&v, q.Get("until"), "until")
		f.Limit = queryLimit(&v, q.Get("limit"))
		if err := v.OrNil(); err != nil {
			return nil, 0, err
		}
		out, err := s.eng.ListDoses(r.Context(), actor(r), f)
		return newList(out, ""), http.StatusOK, err
	})
}

// getAdherence summarises the patient's doses since a time, per schedule.
func (s *Server) getAdherence(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		var v rpm.ValidationError
		since := queryTime(&v, r.URL.Query().Get("since"), "since")
		if err := v.OrNil(); err != nil {
			return nil, 0, err
		}
		out, err := s.eng.GetAdherence(r.Context(), actor(r), id, since)
		return out, http.StatusOK, err
	})
}
