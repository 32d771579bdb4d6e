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
	withJSON(s, w, r, func(in *threadBody) (any, int, error) {
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
			return nil, 0, err
		}
		t, created, err := s.eng.DirectThread(r.Context(), actor(r), user)
		return t, createdOr200(created), err
	})
}

func (s *Server) listThreads(w http.ResponseWriter, r *http.Request) {
	reply(s, w, r, func() (any, int, error) {
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
			return nil, 0, err
		}
		items, next, err := s.eng.ListThreads(r.Context(), actor(r), f)
		return newList(items, next), http.StatusOK, err
	})
}

func (s *Server) getThread(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		t, err := s.eng.GetThread(r.Context(), actor(r), id)
		return t, http.StatusOK, err
	})
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	withID(s, w, r, func(id uuid.UUID) (any, int, error) {
		q := r.URL.Query()
		var v rpm.ValidationError
		f := engine.MessageFilter{Before: q.Get("before"), After: q.Get("after"), Limit: queryLimit(&v, q.Get("limit"))}
		if err := v.OrNil(); err != nil {
			return nil, 0, err
		}
		page, err := s.eng.ListMessages(r.Context(), actor(r), id, f)
		return page, http.StatusOK, err
	})
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
	withBody(s, w, r, func(id uuid.UUID, in *messageBody) (any, int, error) {
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
			return nil, 0, mergeValidation(&v, msg.Validate())
		}
		m, err := s.eng.PostMessage(r.Context(), actor(r), id, msg)
		return m.Message, createdOr200(m.Created), err
	})
}

// readBody is the body of POST /v1/threads/{id}/read.
type readBody struct {
	UpTo string `json:"up_to"`
}

func (s *Server) markRead(w http.ResponseWriter, r *http.Request) {
	withBody(s, w, r, func(id uuid.UUID, in *readBody) (any, int, error) {
		upTo, err := uuid.Parse(in.UpTo)
		switch {
		case in.UpTo == "":
			return nil, 0, upToError("up_to", "is required: the id of the last message read")
		case err != nil || len(in.UpTo) != 36:
			return nil, 0, upToError("up_to", "is not a message id (UUID)")
		}
		st, err := s.eng.MarkRead(r.Context(), actor(r), id, upTo)
		return st, http.StatusOK, err
	})
}

// idAndEmptyBody reads the path's {id} and an optional body that must be
// {} when present, answering the error itself when either is wrong.
func (s *Server) idAndEmptyBody(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := pathID(r)
	if err == nil && r.ContentLength > 0 {
		var in struct{}
		err = s.decode(w, r, &in)
	}
	if err != nil {
		s.writeError(w, r, err)
		return uuid.Nil, false
	}
	return id, true
}

func (s *Server) typing(w http.ResponseWriter, r *http.Request) {
	id, ok := s.idAndEmptyBody(w, r)
	if !ok {
		return
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
