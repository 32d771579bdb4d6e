package api

import (
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/fhir"
)

// FHIR Communication: the messages of patient threads (a patient and their
// care team), read-only. Staff-only threads never appear.

func attachmentURL(id uuid.UUID) string { return "/v1/attachments/" + id.String() }

func toFHIRMessage(m engine.PatientMessage) fhir.Message {
	out := fhir.Message{ID: m.ID, PatientID: m.PatientID, CareTeamID: m.CareTeamID, SenderID: m.SenderID, SenderRole: m.SenderRole,
		Kind: m.Kind, Body: m.Body, Unreadable: m.Error, Urgent: m.Urgent, SentAt: m.CreatedAt}
	for _, a := range m.Attachments {
		out.Attachments = append(out.Attachments, fhir.MessageAttachment{ID: a.ID, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256})
	}
	return out
}

func (s *Server) fhirReadCommunication(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	s.fhirRead(w, r, "Communication", err == nil, func() (any, error) {
		m, err := s.eng.GetPatientMessage(r.Context(), actor(r), id)
		if err != nil {
			return nil, err
		}
		return fhir.CommunicationOf(toFHIRMessage(m), attachmentURL), nil
	})
}

func (s *Server) fhirSearchCommunications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a := actor(r)
	if fe := searchParams(q, "patient", "sent"); fe != nil {
		writeOutcome(w, fe)
		return
	}
	f := engine.PatientMessageFilter{Cursor: q.Get("_cursor")}
	var fe *fhir.Error
	if f.PatientID, fe = patientParam(q, a); fe != nil {
		writeOutcome(w, fe)
		return
	}
	if f.PatientID == uuid.Nil {
		writeOutcome(w, fhir.Malformed(fhir.Issue{Code: "required", Diagnostics: "patient is required"}))
		return
	}
	if f.Since, f.Until, fe = rangeParams("sent", q["sent"]); fe != nil {
		writeOutcome(w, fe)
		return
	}
	if f.Limit, fe = searchCount(q); fe != nil {
		writeOutcome(w, fe)
		return
	}
	items, next, err := s.eng.ListPatientMessages(r.Context(), a, f)
	if err != nil {
		s.searchError(w, r, err)
		return
	}
	res := make([]json.RawMessage, 0, len(items))
	urls := make([]string, 0, len(items))
	for _, m := range items {
		raw, err := json.Marshal(fhir.CommunicationOf(toFHIRMessage(m), attachmentURL))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		res, urls = append(res, raw), append(urls, s.publicBase(r)+fhirBase+"/Communication/"+m.ID.String())
	}
	self, nextURL := nextLink(r, next)
	writeFHIR(w, http.StatusOK, fhir.SearchSet(self, nextURL, res, urls, s.cfg.Now()))
}
