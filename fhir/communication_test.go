package fhir_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/fhir"
)

func attURL(id uuid.UUID) string { return "/v1/attachments/" + id.String() }

type communicationCase struct {
	name string
	in   fhir.Message
	// want are fragments the JSON must hold; not, fragments it must not.
	want, not []string
}

// communicationCases are one message of each shape: a patient's, a
// clinician's urgent one with attachments, a device's symptom report, one
// whose body does not decrypt.
func communicationCases() []communicationCase {
	p, team, doc, dev := uuid.MustParse(pid), uuid.New(), uuid.New(), uuid.New()
	att := uuid.New()
	return []communicationCase{
		{"patient to team", fhir.Message{ID: uuid.New(), PatientID: p, CareTeamID: team, SenderID: &p, SenderRole: "patient", Kind: "text",
			Body: "Ankles swollen", SentAt: now},
			[]string{`"status":"completed"`, `"priority":"routine"`, `"sender":{"reference":"Patient/` + pid + `"}`,
				`"recipient":[{"type":"CareTeam","identifier":{"system":"https://tend.health/fhir/care-team","value":"` + team.String() + `"},"display":"care team"}]`,
				`"payload":[{"contentString":"Ankles swollen"}]`, `"sent":"2026-11-22T09:00:00Z"`, `"lastUpdated":"2026-11-22T09:00:00Z"`},
			[]string{`"note"`, `contentAttachment`}},
		{"urgent with attachments", fhir.Message{ID: uuid.New(), PatientID: p, CareTeamID: team, SenderID: &doc, SenderRole: "clinician",
			Kind: "text", Body: "Call us", Urgent: true, SentAt: now, Attachments: []fhir.MessageAttachment{
				{ID: att, ContentType: "image/png", Size: 68, SHA256: strings.Repeat("ab", 32)},
				{ID: uuid.New(), ContentType: "application/pdf", Size: 12, SHA256: "not hex"}}},
			[]string{`"priority":"urgent"`, `"recipient":[{"reference":"Patient/` + pid + `"}]`,
				`"sender":{"type":"Practitioner","identifier":{"system":"https://tend.health/fhir/user","value":"` + doc.String() + `"},"display":"clinician"}`,
				`{"contentAttachment":{"extension":[{"url":"https://tend.health/fhir/StructureDefinition/attachment-sha256","valueBase64Binary":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="}],"contentType":"image/png","url":"/v1/attachments/` + att.String() + `","size":68}}`,
				`{"contentAttachment":{"contentType":"application/pdf"`},
			nil},
		{"device symptom report", fhir.Message{ID: uuid.New(), PatientID: p, CareTeamID: team, SenderID: &dev, SenderRole: "device",
			Kind: "symptom_report", Body: "dizzy", SentAt: now},
			[]string{`"code":"symptom_report"`, `"sender":{"type":"Device"`, `"display":"device"`, `"type":"CareTeam"`}, nil},
		{"unreadable", fhir.Message{ID: uuid.New(), PatientID: p, CareTeamID: team, SenderRole: "clinician", Kind: "text",
			Unreadable: "the body does not decrypt", SentAt: now},
			[]string{`"note":[{"text":"the body does not decrypt"}]`}, []string{`"payload"`, `"sender"`}},
		{"end-to-end encrypted", fhir.Message{ID: uuid.New(), PatientID: p, CareTeamID: team, SenderID: &p, SenderRole: "patient",
			Kind: "encrypted", SentAt: now},
			[]string{`"code":"encrypted"`, `"note":[{"text":"end-to-end encrypted`, `"sender":{"reference":"Patient/` + pid + `"}`},
			[]string{`"payload"`}},
		{"end-to-end encrypted with an attachment", fhir.Message{ID: uuid.New(), PatientID: p, CareTeamID: team, SenderID: &doc,
			SenderRole: "clinician", Kind: "encrypted", SentAt: now, Attachments: []fhir.MessageAttachment{
				{ID: att, ContentType: "application/vnd.tend.encrypted", Size: 96, SHA256: strings.Repeat("cd", 32)}}},
			[]string{`"code":"encrypted"`, `"note":[{"text":"end-to-end encrypted`},
			[]string{`"payload"`, `contentAttachment`, att.String()}},
	}
}

// TestCommunicationMapping: sender and recipient by the sender's side,
// priority, payloads (text first, then attachments with their SHA-256 in
// base64 when it is one), a note instead of a body that does not decrypt.
func TestCommunicationMapping(t *testing.T) {
	t.Parallel()
	for _, c := range communicationCases() {
		b, err := json.Marshal(fhir.CommunicationOf(c.in, attURL))
		if err != nil {
			t.Fatal(err)
		}
		got := string(b)
		if !strings.HasPrefix(got, `{"resourceType":"Communication","id":"`+c.in.ID.String()+`"`) {
			t.Errorf("%s: %s", c.name, got)
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: missing %s in %s", c.name, w, got)
			}
		}
		// One content[x] per payload (the validator does not check choices
		// given twice), codes from their required value sets.
		var shape struct {
			Status, Priority string
			Payload          []map[string]json.RawMessage
		}
		if err := json.Unmarshal(b, &shape); err != nil {
			t.Fatal(err)
		}
		if shape.Status != "completed" || (shape.Priority != "routine" && shape.Priority != "urgent") {
			t.Errorf("%s: status %q, priority %q", c.name, shape.Status, shape.Priority)
		}
		for i, p := range shape.Payload {
			if len(p) != 1 {
				t.Errorf("%s: payload[%d] has %d elements, want one content[x]: %s", c.name, i, len(p), got)
			}
		}
		for _, n := range c.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: holds %s: %s", c.name, n, got)
			}
		}
	}
}
