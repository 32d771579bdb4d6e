package fhir

import (
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Code systems and extensions of Communication.
const (
	// MessageKindSystem codes a message's kind (Communication.category):
	// text or symptom_report.
	MessageKindSystem = "https://tend.health/fhir/message-kind"
	// UserSystem names a Tend user by id (Reference.identifier of a staff or
	// device sender, who have no FHIR resource of their own here).
	UserSystem = "https://tend.health/fhir/user"
	// CareTeamSystem names a Tend care team by id (Reference.identifier of
	// the recipient of a patient's message).
	CareTeamSystem = "https://tend.health/fhir/care-team"
	// SHA256Extension carries an attachment's SHA-256 (base64, as FHIR's
	// Attachment.hash carries a SHA-1), the digest Tend checks on download.
	SHA256Extension = "https://tend.health/fhir/StructureDefinition/attachment-sha256"
)

// Message is a message of a patient's thread as the engine returns it.
type Message struct {
	ID         uuid.UUID
	PatientID  uuid.UUID
	CareTeamID uuid.UUID
	SenderID   *uuid.UUID
	// SenderRole is the sender's role when they sent it: patient, device,
	// clinician, scheduler or admin.
	SenderRole string
	// Kind is text, symptom_report or encrypted. An encrypted message
	// (docs/e2ee.md) is shown by its metadata only: the server cannot read
	// it, so it has no payload.
	Kind string
	// Body is the decrypted text (a symptom report's note); empty with
	// Unreadable set when the stored body does not decrypt.
	Body        string
	Unreadable  string
	Urgent      bool
	Attachments []MessageAttachment
	SentAt      time.Time
}

// MessageAttachment is what a Communication shows of an attachment: its
// bytes are fetched from the JSON API (GET /v1/attachments/{id}).
type MessageAttachment struct {
	ID          uuid.UUID
	ContentType string
	Size        int64
	SHA256      string // hex
}

// Communication is a FHIR R4 Communication as Tend writes it. It is its own
// type rather than the models' one, whose payload writes all three content[x]
// choices at once.
type Communication struct {
	ResourceType string               `json:"resourceType"`
	ID           string               `json:"id"`
	Meta         *r4.Meta             `json:"meta,omitempty"`
	Status       string               `json:"status"`
	Category     []r4.CodeableConcept `json:"category,omitempty"`
	Priority     string               `json:"priority,omitempty"`
	Subject      r4.Reference         `json:"subject"`
	Sent         string               `json:"sent"`
	Recipient    []r4.Reference       `json:"recipient,omitempty"`
	Sender       *r4.Reference        `json:"sender,omitempty"`
	Payload      []CommunicationPart  `json:"payload,omitempty"`
	Note         []CommunicationNote  `json:"note,omitempty"`
}

// CommunicationPart is one payload: a text or an attachment.
type CommunicationPart struct {
	ContentString     *string            `json:"contentString,omitempty"`
	ContentAttachment *ContentAttachment `json:"contentAttachment,omitempty"`
}

// ContentAttachment is an attachment of a message: where to fetch it, its
// type, size and SHA-256.
type ContentAttachment struct {
	Extension   []Base64Extension `json:"extension,omitempty"`
	ContentType string            `json:"contentType"`
	URL         string            `json:"url"`
	Size        int64             `json:"size"`
}

// Base64Extension is an extension with a base64Binary value.
type Base64Extension struct {
	URL               string `json:"url"`
	ValueBase64Binary string `json:"valueBase64Binary"`
}

// CommunicationNote is an annotation: why a body is missing.
type CommunicationNote struct {
	Text string `json:"text"`
}

// CommunicationOf maps a message of a patient thread to a Communication.
// attachmentURL is where an attachment's bytes are fetched.
//
// The patient is referenced (Patient/{id}, which Tend serves). Staff and
// devices have no FHIR resource here, so a staff sender is a reference of
// type Practitioner by identifier (system UserSystem, the user id) with the
// role as display, and a care team recipient one of type CareTeam by
// identifier (CareTeamSystem); a patient's message goes to the care team,
// a staff message to the patient.
func CommunicationOf(m Message, attachmentURL func(uuid.UUID) string) Communication {
	patient := r4.Reference{Reference: ptr("Patient/" + m.PatientID.String())}
	team := careTeamRef(m.CareTeamID)
	c := Communication{
		ResourceType: "Communication",
		ID:           m.ID.String(),
		Meta:         meta(m.SentAt),
		Status:       "completed",
		Category:     []r4.CodeableConcept{{Coding: []r4.Coding{{System: ptr(MessageKindSystem), Code: ptr(m.Kind)}}}},
		Priority:     "routine",
		Subject:      patient,
		Sent:         instant(m.SentAt),
	}
	if m.Urgent {
		c.Priority = "urgent"
	}
	switch {
	case m.SenderRole == "patient":
		c.Sender, c.Recipient = &patient, []r4.Reference{team}
	case m.SenderRole == "device":
		if m.SenderID != nil {
			c.Sender = &r4.Reference{Type: ptr("Device"), Identifier: &r4.Identifier{System: ptr(UserSystem), Value: ptr(m.SenderID.String())},
				Display: ptr("device")}
		}
		c.Recipient = []r4.Reference{team}
	default:
		if m.SenderID != nil {
			c.Sender = &r4.Reference{Type: ptr("Practitioner"), Identifier: &r4.Identifier{System: ptr(UserSystem),
				Value: ptr(m.SenderID.String())}, Display: ptr(m.SenderRole)}
		}
		c.Recipient = []r4.Reference{patient}
	}
	if m.Body != "" {
		c.Payload = append(c.Payload, CommunicationPart{ContentString: ptr(m.Body)})
	}
	for _, a := range m.Attachments {
		if m.Kind == "encrypted" {
			break // metadata only: an encrypted message's attachments are ciphertext its envelope alone describes
		}
		ca := &ContentAttachment{ContentType: a.ContentType, URL: attachmentURL(a.ID), Size: a.Size}
		if sum, err := hex.DecodeString(a.SHA256); err == nil && len(sum) == 32 {
			ca.Extension = []Base64Extension{{URL: SHA256Extension, ValueBase64Binary: base64.StdEncoding.EncodeToString(sum)}}
		}
		c.Payload = append(c.Payload, CommunicationPart{ContentAttachment: ca})
	}
	if m.Unreadable != "" {
		c.Note = []CommunicationNote{{Text: m.Unreadable}}
	}
	if m.Kind == "encrypted" {
		c.Note = append(c.Note, CommunicationNote{Text: "end-to-end encrypted: the content is readable only by the participants' devices and the organisation's record key"})
	}
	return c
}

// careTeamRef references a care team by identifier.
func careTeamRef(id uuid.UUID) r4.Reference {
	return r4.Reference{Type: ptr("CareTeam"), Identifier: &r4.Identifier{System: ptr(CareTeamSystem), Value: ptr(id.String())},
		Display: ptr("care team")}
}

// StaffOnly marks c as a message of the staff-only discussion about the
// patient: it goes to the care team, whoever sent it.
func (c *Communication) StaffOnly(team uuid.UUID) {
	c.Recipient = []r4.Reference{careTeamRef(team)}
	c.Note = append(c.Note, CommunicationNote{Text: "staff-only discussion about the patient"})
}
