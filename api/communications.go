package api

import (
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
	q, fe := parseSearch(r.URL.Query(), actor(r), searchSpec{params: []string{"patient", "sent"}, patientRequired: true, dates: "sent"})
	if fe != nil {
		writeOutcome(w, fe)
		return
	}
	items, next, err := s.eng.ListPatientMessages(r.Context(), actor(r), engine.PatientMessageFilter{PatientID: q.Patient,
		Since: q.Since, Until: q.Until, Limit: q.Limit, Cursor: q.Cursor})
	if err != nil {
		s.searchError(w, r, err)
		return
	}
	writeSearchSet(s, w, r, items, next, "Communication", func(m engine.PatientMessage) (any, string) {
		return fhir.CommunicationOf(toFHIRMessage(m), attachmentURL), m.ID.String()
	})
}
