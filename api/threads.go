package api

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// threadBody is the body of POST /v1/threads: today only a direct thread
// with another staff member.
type threadBody struct {
	Kind   string `json:"kind"`
	UserID string `json:"user_id"`
}

func (s *Server) createThread(w http.ResponseWriter, r *http.Request) {
	var in threadBody
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	var v rpm.ValidationError
	switch in.Kind {
	case "direct":
	case "":
		v.Add("kind", `is required: "direct"`)
	default:
		v.Add("kind", `must be "direct" (patient, staff and team threads are created with their patient or care team)`)
	}
	user, err := uuid.Parse(in.UserID)
	switch {
	case in.UserID == "":
		v.Add("user_id", "is required")
	case err != nil || len(in.UserID) != 36:
		v.Add("user_id", "must be a UUID")
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, created, err := s.eng.DirectThread(r.Context(), actor(r), user)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, t)
}

func (s *Server) listThreads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.ThreadFilter{Cursor: q.Get("cursor"), Limit: queryLimit(&v, q.Get("limit"))}
	if p := q.Get("patient_id"); p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("patient_id", "must be a UUID")
		}
		f.PatientID = id
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListThreads(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, next))
}

func (s *Server) getThread(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.GetThread(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.MessageFilter{Before: q.Get("before"), After: q.Get("after"), Limit: queryLimit(&v, q.Get("limit"))}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.eng.ListMessages(r.Context(), actor(r), id, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// messageBody is the body of POST /v1/threads/{id}/messages. attachment_ids
// are read as strings so that a malformed one is a 422 naming it.
type messageBody struct {
	Body          *string  `json:"body"`
	Urgent        bool     `json:"urgent"`
	AttachmentIDs []string `json:"attachment_ids"`
	ClientID      string   `json:"client_id"`
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in messageBody
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	msg := engine.NewMessage{Urgent: in.Urgent, ClientID: in.ClientID}
	if in.Body != nil {
		msg.Body = *in.Body
	}
	var v rpm.ValidationError
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		switch {
		case in.ClientID != "" && in.ClientID != key:
			v.Add("Idempotency-Key", "differs from client_id: send one, or the same value in both")
		default:
			msg.ClientID = key
		}
	}
	for i, a := range in.AttachmentIDs {
		u, err := uuid.Parse(a)
		if err != nil || len(a) != 36 {
			v.Add(fmt.Sprintf("attachment_ids[%d]", i), "is not a UUID")
			continue
		}
		msg.AttachmentIDs = append(msg.AttachmentIDs, u)
	}
	if len(v.Fields) > 0 {
		s.writeError(w, r, mergeValidation(&v, msg.Validate()))
		return
	}
	m, err := s.eng.PostMessage(r.Context(), actor(r), id, msg)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if !m.Created {
		status = http.StatusOK
	}
	writeJSON(w, status, m.Message)
}

// readBody is the body of POST /v1/threads/{id}/read.
type readBody struct {
	UpTo string `json:"up_to"`
}

func (s *Server) markRead(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in readBody
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	upTo, perr := uuid.Parse(in.UpTo)
	switch {
	case in.UpTo == "":
		s.writeError(w, r, upToError("up_to", "is required: the id of the last message read"))
		return
	case perr != nil || len(in.UpTo) != 36:
		s.writeError(w, r, upToError("up_to", "is not a message id (UUID)"))
		return
	}
	st, err := s.eng.MarkRead(r.Context(), actor(r), id, upTo)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) typing(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.ContentLength > 0 {
		var in struct{}
		if err := s.decode(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	sent, err := s.eng.Typing(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]bool{"sent": sent})
}

func upToError(field, reason string) error {
	return &rpm.ValidationError{Fields: []rpm.FieldError{{Field: field, Reason: reason}}}
}
