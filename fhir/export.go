package fhir

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/tendhealth/tend/rpm"
)

// Systems of a patient's export.
const (
	// AuditActionSystem codes an AuditEvent's subtype with Tend's audit
	// action (reading.read, patient.export, …).
	AuditActionSystem = "https://tend.health/fhir/audit-action"
	// ScheduleSystem identifies a reminder schedule by its id.
	ScheduleSystem = "https://tend.health/fhir/schedule"
	// TeamRoleSystem codes a care team member's role in the team.
	TeamRoleSystem = "https://tend.health/fhir/team-role"
)

// TeamMember is a member of a patient's care team.
type TeamMember struct {
	UserID uuid.UUID
	Name   string
	Role   string // clinician, lead, scheduler
}

// CareTeamOf maps a patient's care team to a FHIR CareTeam: its members as
// Practitioner references by identifier (Tend serves no Practitioner).
func CareTeamOf(id uuid.UUID, name string, patient uuid.UUID, members []TeamMember, updated time.Time) r4.CareTeam {
	status := r4.CareTeamStatusActive
	ct := r4.CareTeam{Id: ptr(id.String()), Meta: meta(updated), Status: &status, Name: ptr(name),
		Identifier: []r4.Identifier{{System: ptr(CareTeamSystem), Value: ptr(id.String())}},
		Subject:    &r4.Reference{Reference: ptr("Patient/" + patient.String())}}
	for _, m := range members {
		ct.Participant = append(ct.Participant, r4.CareTeamParticipant{
			Role: []r4.CodeableConcept{{Coding: []r4.Coding{{System: ptr(TeamRoleSystem), Code: ptr(m.Role)}}, Text: ptr(m.Role)}},
			Member: &r4.Reference{Type: ptr("Practitioner"), Display: ptr(m.Name),
				Identifier: &r4.Identifier{System: ptr(UserSystem), Value: ptr(m.UserID.String())}}})
	}
	return ct
}

// Reminder is a medication or measurement reminder schedule.
type Reminder struct {
	ID        uuid.UUID
	PatientID uuid.UUID
	Schedule  rpm.Schedule
	// Active is false for a paused or deleted schedule.
	Active    bool
	TimeZone  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// MedicationRequest is a FHIR R4 MedicationRequest as Tend writes it (its
// own type: the models' one writes both medication[x] choices).
type MedicationRequest struct {
	ResourceType              string             `json:"resourceType"`
	ID                        string             `json:"id"`
	Meta                      *r4.Meta           `json:"meta,omitempty"`
	Identifier                []r4.Identifier    `json:"identifier,omitempty"`
	Status                    string             `json:"status"`
	Intent                    string             `json:"intent"`
	MedicationCodeableConcept r4.CodeableConcept `json:"medicationCodeableConcept"`
	Subject                   r4.Reference       `json:"subject"`
	AuthoredOn                string             `json:"authoredOn,omitempty"`
	DosageInstruction         []r4.Dosage        `json:"dosageInstruction,omitempty"`
}

// ReminderOf maps a schedule: a medication schedule to a MedicationRequest
// (intent plan: Tend reminds, it does not prescribe), a measurement one to a
// ServiceRequest for the vital sign, each with the schedule's timing.
func ReminderOf(r Reminder) any {
	status := "active"
	if !r.Active {
		status = "stopped"
	}
	timing := scheduleTiming(r.Schedule, r.TimeZone)
	id := []r4.Identifier{{System: ptr(ScheduleSystem), Value: ptr(r.ID.String())}}
	subject := r4.Reference{Reference: ptr("Patient/" + r.PatientID.String())}
	if r.Schedule.Type == rpm.MedicationSchedule {
		d := r4.Dosage{Timing: &timing}
		if r.Schedule.Dose != "" {
			d.Text = ptr(r.Schedule.Dose)
		}
		return MedicationRequest{ResourceType: "MedicationRequest", ID: r.ID.String(), Meta: meta(r.UpdatedAt), Identifier: id,
			Status: status, Intent: "plan", MedicationCodeableConcept: r4.CodeableConcept{Text: ptr(r.Schedule.Medication)},
			Subject: subject, AuthoredOn: instant(r.CreatedAt), DosageInstruction: []r4.Dosage{d}}
	}
	rs := r4.RequestStatusActive
	if !r.Active {
		rs = r4.RequestStatusRevoked
	}
	sr := r4.ServiceRequest{Id: ptr(r.ID.String()), Meta: meta(r.UpdatedAt), Identifier: id, Status: rs,
		Intent: r4.RequestIntentPlan, Subject: subject, AuthoredOn: ptr(instant(r.CreatedAt)), OccurrenceTiming: &timing,
		Code: &r4.CodeableConcept{Text: ptr("measure " + string(r.Schedule.Kind))}}
	if spec, ok := rpm.SpecOf(r.Schedule.Kind); ok {
		sr.Code.Coding = []r4.Coding{{System: ptr("http://loinc.org"), Code: ptr(spec.LOINC)}}
	}
	return sr
}

// scheduleTiming is a schedule's times of day and weekdays, bounded by its
// dates.
func scheduleTiming(s rpm.Schedule, tz string) r4.Timing {
	rep := r4.TimingRepeat{}
	for _, t := range s.Times {
		rep.TimeOfDay = append(rep.TimeOfDay, t+":00")
	}
	for _, d := range s.DaysOfWeek {
		if dw, err := enumCode[r4.DaysOfWeek](strings.ToLower(d)); err == nil {
			rep.DayOfWeek = append(rep.DayOfWeek, dw)
		}
	}
	if s.StartDate != "" {
		p := r4.Period{Start: ptr(s.StartDate)}
		if s.EndDate != "" {
			p.End = ptr(s.EndDate)
		}
		rep.BoundsPeriod = &p
	}
	t := r4.Timing{Repeat: &rep}
	if tz != "" {
		t.Code = &r4.CodeableConcept{Text: ptr("local times in " + tz)}
	}
	return t
}

// Dose is a decided occurrence of a medication schedule.
type Dose struct {
	ID         uuid.UUID
	ScheduleID uuid.UUID
	PatientID  uuid.UUID
	Medication string
	Status     string // taken, skipped, missed, cancelled
	DueAt      time.Time
	At         time.Time // when taken, or when decided
}

// MedicationAdministration is a FHIR R4 MedicationAdministration as Tend
// writes it (the models' one writes both effective[x] choices).
type MedicationAdministration struct {
	ResourceType              string               `json:"resourceType"`
	ID                        string               `json:"id"`
	Meta                      *r4.Meta             `json:"meta,omitempty"`
	Status                    string               `json:"status"`
	StatusReason              []r4.CodeableConcept `json:"statusReason,omitempty"`
	MedicationCodeableConcept r4.CodeableConcept   `json:"medicationCodeableConcept"`
	Subject                   r4.Reference         `json:"subject"`
	EffectiveDateTime         string               `json:"effectiveDateTime"`
	Request                   *r4.Reference        `json:"request,omitempty"`
}

// DoseOf maps a decided dose: taken is completed at the time the patient
// gave; skipped, missed and cancelled are not-done, with the reason.
func DoseOf(d Dose) MedicationAdministration {
	out := MedicationAdministration{ResourceType: "MedicationAdministration", ID: d.ID.String(), Meta: meta(d.At),
		Status: "completed", MedicationCodeableConcept: r4.CodeableConcept{Text: ptr(d.Medication)},
		Subject: r4.Reference{Reference: ptr("Patient/" + d.PatientID.String())}, EffectiveDateTime: instant(d.At),
		Request: &r4.Reference{Reference: ptr("MedicationRequest/" + d.ScheduleID.String())}}
	if d.Status != "taken" {
		out.Status = "not-done"
		out.StatusReason = []r4.CodeableConcept{{Text: ptr(d.Status + " (due " + instant(d.DueAt) + ")")}}
	}
	return out
}

// Access is an audit entry of someone reading the patient's data.
type Access struct {
	ID         int64
	At         time.Time
	ActorID    *uuid.UUID
	ActorRole  string
	Action     string
	PatientID  uuid.UUID
	ObjectType string
	ObjectID   string
	Outcome    string
}

// AuditEventOf maps an audit entry to an AuditEvent: a REST read (or
// search, for a list) by the actor, about the patient.
func AuditEventOf(a Access) r4.AuditEvent {
	action, subtype := r4.AuditEventActionR, "read"
	if strings.HasSuffix(a.Action, ".list") {
		action, subtype = r4.AuditEventActionE, "search-type"
	}
	outcome := r4.AuditEventOutcome0
	if a.Outcome != "ok" {
		outcome = r4.AuditEventOutcome4
	}
	agent := r4.AuditEventAgent{Requestor: true, Name: ptr(a.ActorRole),
		Role: []r4.CodeableConcept{{Text: ptr(a.ActorRole)}}}
	if a.ActorID != nil {
		agent.Who = &r4.Reference{Identifier: &r4.Identifier{System: ptr(UserSystem), Value: ptr(a.ActorID.String())}}
	}
	ev := r4.AuditEvent{Id: ptr("audit-" + strconv.FormatInt(a.ID, 10)), Meta: meta(a.At),
		Type: r4.Coding{System: ptr("http://terminology.hl7.org/CodeSystem/audit-event-type"), Code: ptr("rest")},
		Subtype: []r4.Coding{{System: ptr("http://hl7.org/fhir/restful-interaction"), Code: ptr(subtype)},
			{System: ptr(AuditActionSystem), Code: ptr(a.Action)}},
		Action: &action, Recorded: instant(a.At), Outcome: &outcome, Agent: []r4.AuditEventAgent{agent},
		Source: r4.AuditEventSource{Observer: r4.Reference{Display: ptr("Tend")}},
		Entity: []r4.AuditEventEntity{{What: &r4.Reference{Reference: ptr("Patient/" + a.PatientID.String())}}}}
	if a.ObjectID != "" {
		ev.Entity = append(ev.Entity, r4.AuditEventEntity{Name: ptr(a.ObjectType),
			What: &r4.Reference{Identifier: &r4.Identifier{System: ptr("https://tend.health/fhir/" + a.ObjectType), Value: ptr(a.ObjectID)}}})
	}
	return ev
}

// Collection builds a collection Bundle (a patient's export) of resources
// already marshalled, each with its full URL.
func Collection(resources []json.RawMessage, fullURLs []string, now time.Time) r4.Bundle {
	b := r4.Bundle{Type: r4.BundleTypeCollection, Timestamp: ptr(instant(now)), Meta: meta(now)}
	for i, r := range resources {
		b.Entry = append(b.Entry, r4.BundleEntry{FullUrl: ptr(fullURLs[i]), Resource: r})
	}
	return b
}
