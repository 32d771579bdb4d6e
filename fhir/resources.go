package fhir

import (
	"time"

	"github.com/google/uuid"
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/tendhealth/tend/rpm"
)

// Patient is a stored patient as the engine returns it.
type Patient struct {
	ID          uuid.UUID
	DisplayName string
	ExternalID  string
	CreatedAt   time.Time
}

// PatientResource maps a patient to a FHIR Patient. Tend keeps only a
// display name, so it is the name's text.
func PatientResource(p Patient) r4.Patient {
	out := r4.Patient{
		Id:     ptr(p.ID.String()),
		Meta:   meta(p.CreatedAt),
		Active: ptr(true),
		Name:   []r4.HumanName{{Text: ptr(p.DisplayName)}},
	}
	if p.ExternalID != "" {
		out.Identifier = []r4.Identifier{{System: ptr(ExternalIDSystem), Value: ptr(p.ExternalID)}}
	}
	return out
}

// Alert is a stored alert as the engine returns it.
type Alert struct {
	ID         uuid.UUID
	PatientID  uuid.UUID
	RuleID     string
	Urgency    rpm.Urgency
	Status     string // open, acknowledged, snoozed, resolved
	Title      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ResolvedAt *time.Time
}

// Flag maps an alert to a FHIR Flag: a warning on the patient's chart that
// is active until the care team resolves it. (DetectedIssue describes a
// problem with a proposed or ongoing action, such as a drug interaction, and
// has the observation statuses rather than active/inactive; an RPM alert is
// about the patient, not about an order, so Flag fits.)
func Flag(a Alert) r4.Flag {
	status := r4.FlagStatusActive
	if a.Status == "resolved" {
		status = r4.FlagStatusInactive
	}
	f := r4.Flag{
		Id:     ptr(a.ID.String()),
		Meta:   meta(a.UpdatedAt),
		Status: status,
		Category: []r4.CodeableConcept{
			{Coding: []r4.Coding{{System: ptr("http://terminology.hl7.org/CodeSystem/flag-category"), Code: ptr("clinical"), Display: ptr("Clinical")}}},
			{Coding: []r4.Coding{{System: ptr(UrgencySystem), Code: ptr(string(a.Urgency))}}, Text: ptr("urgency " + string(a.Urgency))},
		},
		Code:    r4.CodeableConcept{Coding: []r4.Coding{{System: ptr(RuleSystem), Code: ptr(a.RuleID)}}, Text: ptr(a.Title)},
		Subject: r4.Reference{Reference: ptr("Patient/" + a.PatientID.String())},
		Period:  &r4.Period{Start: ptr(instant(a.CreatedAt))},
	}
	if a.ResolvedAt != nil {
		f.Period.End = ptr(instant(*a.ResolvedAt))
	}
	return f
}

// FlagStatuses maps a Flag search status to the alert statuses it stands for.
func FlagStatuses(status string) ([]string, bool) {
	switch status {
	case "active":
		return []string{"open", "acknowledged", "snoozed"}, true
	case "inactive":
		return []string{"resolved"}, true
	}
	return nil, false
}
