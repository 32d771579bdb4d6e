package api

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// Engine is what the API needs of Tend's engine: one narrow interface per
// resource, so each handler file names exactly the use cases it calls.
// *engine.Engine implements it; tests may substitute any part.
type Engine interface {
	Identity
	Care
	Readings
	Alerts
	Rules
	Audit
	Reminders
	Stream
	Messaging
	Broadcasts
	Attachments
	E2EE
	Organisations
}

// Organisations is organisations and their settings.
type Organisations interface {
	CreateOrganisation(ctx context.Context, a engine.Actor, in engine.NewOrganisation) (engine.Organisation, error)
	ListOrganisations(ctx context.Context, a engine.Actor) ([]engine.Organisation, error)
	GetOrganisation(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.Organisation, error)
	UpdateOrganisation(ctx context.Context, a engine.Actor, id uuid.UUID, in engine.OrganisationUpdate) (engine.Organisation, error)
	SetOrganisationLogo(ctx context.Context, a engine.Actor, id uuid.UUID, contentType string, data []byte) (engine.Organisation, error)
	OrganisationLogo(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.OrganisationLogo, error)
}

// Identity is users, tokens, devices and preferences.
type Identity interface {
	Authenticate(ctx context.Context, token string) (engine.Actor, error)
	// Me is the caller's user, care teams and capabilities (GET /v1/me).
	Me(ctx context.Context, a engine.Actor) (engine.Me, error)
	// GetPresence and SetPresence are the caller's own presence
	// (GET and POST /v1/me/presence).
	GetPresence(ctx context.Context, a engine.Actor) (engine.OwnPresence, error)
	SetPresence(ctx context.Context, a engine.Actor, u engine.PresenceUpdate) (engine.OwnPresence, error)
	CreateUser(ctx context.Context, a engine.Actor, in engine.NewUser) (engine.User, error)
	CreateToken(ctx context.Context, a engine.Actor, userID uuid.UUID) (string, error)
	IssueToken(ctx context.Context, a engine.Actor, userID uuid.UUID, expiresIn time.Duration) (engine.Token, string, error)
	ListTokens(ctx context.Context, a engine.Actor, userID uuid.UUID) ([]engine.Token, error)
	RevokeToken(ctx context.Context, a engine.Actor, id uuid.UUID) error
	ListUsers(ctx context.Context, a engine.Actor, f engine.UserFilter) ([]engine.User, string, error)
	// Directory searches the staff (GET /v1/directory).
	Directory(ctx context.Context, a engine.Actor, f engine.DirectoryFilter) ([]engine.DirectoryEntry, string, error)
	SetUserDisabled(ctx context.Context, a engine.Actor, id uuid.UUID, disabled bool) (engine.User, error)
	SetOIDCSubject(ctx context.Context, a engine.Actor, id uuid.UUID, subject string) (engine.User, error)
	RegisterDevice(ctx context.Context, a engine.Actor, in engine.NewDevice) (engine.Device, bool, error)
	ListDevices(ctx context.Context, a engine.Actor) ([]engine.Device, error)
	DeleteDevice(ctx context.Context, a engine.Actor, id uuid.UUID) error
	GetPreferences(ctx context.Context, a engine.Actor) (engine.Preferences, error)
	SetPreferences(ctx context.Context, a engine.Actor, p engine.Preferences) (engine.Preferences, error)
}

// Care is care teams, patients and their rule parameters.
type Care interface {
	CreateCareTeam(ctx context.Context, a engine.Actor, in engine.NewCareTeam) (engine.CareTeam, error)
	ListCareTeams(ctx context.Context, a engine.Actor) ([]engine.CareTeam, error)
	GetCareTeam(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.CareTeam, error)
	UpdateCareTeam(ctx context.Context, a engine.Actor, id uuid.UUID, in engine.CareTeamUpdate) (engine.CareTeam, error)
	CreatePatient(ctx context.Context, a engine.Actor, in engine.NewPatient) (engine.Patient, error)
	GetPatient(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.Patient, error)
	UpdatePatient(ctx context.Context, a engine.Actor, id uuid.UUID, in engine.PatientUpdate) (engine.Patient, error)
	ListPatients(ctx context.Context, a engine.Actor, f engine.PatientFilter) ([]engine.Patient, string, error)
	GetPatientParams(ctx context.Context, a engine.Actor, patientID uuid.UUID) (engine.PatientParams, error)
	SetPatientParams(ctx context.Context, a engine.Actor, patientID uuid.UUID, overrides map[string]map[string]float64) (engine.PatientParams, error)
	// ExportPatient hands the patient's whole record to sink
	// (GET /v1/patients/{id}/export).
	ExportPatient(ctx context.Context, a engine.Actor, patientID uuid.UUID, sink engine.RecordSink) error
	// ErasePatient erases the patient's personal data where no retention
	// duty applies (POST /v1/patients/{id}/erase).
	ErasePatient(ctx context.Context, a engine.Actor, patientID uuid.UUID, reason string) (engine.Erasure, error)
	// RestrictPatient and LiftPatientRestriction set and lift the
	// restriction of processing (/v1/patients/{id}/restriction).
	RestrictPatient(ctx context.Context, a engine.Actor, patientID uuid.UUID, reason string) (engine.Patient, error)
	LiftPatientRestriction(ctx context.Context, a engine.Actor, patientID uuid.UUID) (engine.Patient, error)
}

// Readings is readings and symptom reports in and out (JSON and FHIR).
type Readings interface {
	ValidateReadings(req engine.IngestRequest) error
	Ingest(ctx context.Context, a engine.Actor, req engine.IngestRequest) (engine.IngestResult, error)
	IngestAll(ctx context.Context, a engine.Actor, reqs []engine.IngestRequest) ([]engine.IngestResult, error)
	ListReadings(ctx context.Context, a engine.Actor, f engine.ReadingFilter) ([]engine.Reading, string, error)
	GetReading(ctx context.Context, a engine.Actor, patientID uuid.UUID, observedAt time.Time, id uuid.UUID) (engine.RetractedReading, error)
	RetractReadings(ctx context.Context, a engine.Actor, rs []engine.Retraction) ([]engine.RetractedReading, error)
	ResolveExternalIDs(ctx context.Context, a engine.Actor, externalIDs []string) (map[string]uuid.UUID, error)
	ReportSymptoms(ctx context.Context, a engine.Actor, in engine.NewSymptomReport) (engine.SymptomReportResult, error)
	ListSymptomReports(ctx context.Context, a engine.Actor, f engine.SymptomReportFilter) ([]engine.SymptomReport, string, error)
	PendingRetakes(ctx context.Context, a engine.Actor, patientID uuid.UUID) ([]engine.PendingRetake, error)
}

// Alerts is the triage queue and the alert lifecycle.
type Alerts interface {
	ListAlerts(ctx context.Context, a engine.Actor, f engine.AlertFilter) ([]engine.Alert, string, error)
	CountAlerts(ctx context.Context, a engine.Actor, careTeamID uuid.UUID) (engine.AlertCounts, error)
	GetAlert(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.AlertDetail, error)
	AckAlert(ctx context.Context, a engine.Actor, id uuid.UUID, note string) (engine.Alert, error)
	ResolveAlert(ctx context.Context, a engine.Actor, id uuid.UUID, disposition, note string) (engine.Alert, error)
	SnoozeAlert(ctx context.Context, a engine.Actor, id uuid.UUID, until time.Time, note string) (engine.Alert, error)
	AssignAlert(ctx context.Context, a engine.Actor, id, userID uuid.UUID, note string) (engine.Alert, error)
}

// Rules is rule administration.
type Rules interface {
	ListRules(ctx context.Context, a engine.Actor) ([]engine.Rule, error)
	GetRule(ctx context.Context, a engine.Actor, id string) (engine.Rule, error)
	CreateRule(ctx context.Context, a engine.Actor, src []byte) (engine.Rule, error)
	UpdateRule(ctx context.Context, a engine.Actor, id string, src []byte) (engine.Rule, bool, error)
	Backtest(ctx context.Context, a engine.Actor, req engine.BacktestRequest) (engine.BacktestResult, error)
	Simulate(ctx context.Context, a engine.Actor, req engine.SimulateRequest) (engine.SimulateResult, error)
	ListRuleErrors(ctx context.Context, a engine.Actor, f engine.RuleErrorFilter) ([]engine.RuleEvalError, string, error)
}

// Reminders is medication and measurement schedules, their doses and
// adherence.
type Reminders interface {
	CreateSchedule(ctx context.Context, a engine.Actor, patientID uuid.UUID, in rpm.Schedule) (engine.Schedule, error)
	ListSchedules(ctx context.Context, a engine.Actor, patientID uuid.UUID) ([]engine.Schedule, error)
	GetSchedule(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.Schedule, error)
	UpdateSchedule(ctx context.Context, a engine.Actor, id uuid.UUID, patch []byte) (engine.Schedule, error)
	DeleteSchedule(ctx context.Context, a engine.Actor, id uuid.UUID) error
	ConfirmDose(ctx context.Context, a engine.Actor, id uuid.UUID, c engine.DoseConfirmation) (engine.Dose, error)
	ListDoses(ctx context.Context, a engine.Actor, f engine.DoseFilter) ([]engine.Dose, error)
	GetAdherence(ctx context.Context, a engine.Actor, patientID uuid.UUID, since time.Time) (engine.Adherence, error)
}

// Audit is the audit trail.
type Audit interface {
	ListAudit(ctx context.Context, a engine.Actor, f engine.AuditFilter) ([]engine.AuditEntry, string, error)
	// AuditRefused records a refused request (outcome "refused").
	AuditRefused(ctx context.Context, a engine.Actor, e engine.AuditRecord) error
}

// Stream is the live stream (GET /v1/stream).
type Stream interface {
	Subscribe(ctx context.Context, a engine.Actor, after *int64) (*engine.StreamSubscription, error)
}

// Messaging is threads, messages, receipts and typing.
type Messaging interface {
	ListThreads(ctx context.Context, a engine.Actor, f engine.ThreadFilter) ([]engine.Thread, string, error)
	GetThread(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.Thread, error)
	DirectThread(ctx context.Context, a engine.Actor, userID uuid.UUID) (engine.Thread, bool, error)
	ListMessages(ctx context.Context, a engine.Actor, threadID uuid.UUID, f engine.MessageFilter) (engine.MessagePage, error)
	PostMessage(ctx context.Context, a engine.Actor, threadID uuid.UUID, in engine.NewMessage) (engine.PostedMessage, error)
	MarkRead(ctx context.Context, a engine.Actor, threadID, upTo uuid.UUID) (engine.ReadState, error)
	Typing(ctx context.Context, a engine.Actor, threadID uuid.UUID) (bool, error)
	MarkStreamDelivered(ctx context.Context, a engine.Actor, messageID uuid.UUID) error
	// ListPatientMessages and GetPatientMessage serve FHIR Communication:
	// the messages of patient threads the caller takes part in.
	ListPatientMessages(ctx context.Context, a engine.Actor, f engine.PatientMessageFilter) ([]engine.PatientMessage, string, error)
	GetPatientMessage(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.PatientMessage, error)
}

// E2EE is end-to-end encryption: device keys and encrypted threads
// (docs/e2ee.md).
type E2EE interface {
	RegisterE2EEDevice(ctx context.Context, a engine.Actor, in engine.NewE2EEDevice) (engine.E2EEDevice, error)
	ListE2EEDevices(ctx context.Context, a engine.Actor) ([]engine.E2EEDevice, error)
	RevokeE2EEDevice(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.E2EEDevice, error)
	ThreadKeys(ctx context.Context, a engine.Actor, threadID uuid.UUID) (engine.ThreadKeys, error)
	EncryptThread(ctx context.Context, a engine.Actor, threadID uuid.UUID) (engine.Thread, error)
	PostEnvelope(ctx context.Context, a engine.Actor, threadID uuid.UUID, in engine.NewEnvelope) (engine.PostedMessage, error)
}

// Broadcasts is care-team broadcasts and their progress.
type Broadcasts interface {
	Broadcast(ctx context.Context, a engine.Actor, teamID uuid.UUID, in engine.NewBroadcast) (engine.Broadcast, error)
	GetBroadcast(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.Broadcast, error)
}

// Attachments is files uploaded to threads.
type Attachments interface {
	AttachmentMaxBytes() int64
	// AttachmentLimits are the largest image or document and the largest
	// audio or video file.
	AttachmentLimits() (files, media int64)
	UploadAttachment(ctx context.Context, a engine.Actor, threadID uuid.UUID, contentType string, data []byte) (engine.Attachment, error)
	GetAttachment(ctx context.Context, a engine.Actor, id uuid.UUID) (engine.Attachment, []byte, error)
}

var _ Engine = (*engine.Engine)(nil)
