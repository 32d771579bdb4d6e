package engine

import (
	"crypto/ed25519"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine/internal/presence"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/care"
	"github.com/tendhealth/tend/engine/identity"
	"github.com/tendhealth/tend/engine/ingest"
	"github.com/tendhealth/tend/engine/internal/devicekeys"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/readings"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/engine/messaging"
	"github.com/tendhealth/tend/engine/orgs"
	"github.com/tendhealth/tend/engine/records"
	"github.com/tendhealth/tend/engine/reminder"
	"github.com/tendhealth/tend/engine/retention"
	"github.com/tendhealth/tend/engine/rulestore"
	"github.com/tendhealth/tend/engine/triage"
)

// The use cases' vocabulary, re-exported so that a caller of the composition
// root needs one import. Each name is defined by the package that owns it.

// Who is asking (package access).
type (
	Actor = access.Actor
	Role  = access.Role
)

// Roles and errors (package access).
const (
	RoleAdmin     = access.RoleAdmin
	RoleClinician = access.RoleClinician
	RoleScheduler = access.RoleScheduler
	RolePatient   = access.RolePatient
	RoleDevice    = access.RoleDevice
)

// Errors returned by every use case; api maps them to HTTP statuses.
var (
	ErrNotFound        = access.ErrNotFound
	ErrForbidden       = access.ErrForbidden
	ErrConflict        = access.ErrConflict
	ErrUnauthenticated = access.ErrUnauthenticated
	ErrUnavailable     = pg.ErrUnavailable
	ErrCommitUnknown   = pg.ErrCommitUnknown
	ErrBadCursor       = pg.ErrBadCursor
)

// System returns the actor for work Tend does on its own (jobs, the CLI).
func System(reason string) Actor { return access.System(reason) }

// IsUnavailable reports whether err means the database was unreachable, and
// whether a commit's outcome is unknown.
func IsUnavailable(err error) (unknownOutcome, ok bool) { return pg.IsUnavailable(err) }

// Identity (package identity).
type (
	User       = identity.User
	UserFilter = identity.UserFilter
	// DirectoryEntry and DirectoryFilter are the staff directory's.
	DirectoryEntry  = identity.DirectoryEntry
	DirectoryFilter = identity.DirectoryFilter
	Token           = identity.Token
	NewUser         = identity.NewUser
	Device          = identity.Device
	NewDevice       = identity.NewDevice
	// E2EEDevice is a client device's end-to-end encryption public keys.
	E2EEDevice    = devicekeys.Device
	NewE2EEDevice = identity.NewE2EEDevice
	Preferences   = identity.Preferences
	QuietHours    = identity.QuietHours
)

// Care teams and patients (package care).
type (
	CareTeam         = care.CareTeam
	TeamMember       = care.TeamMember
	NewCareTeam      = care.NewCareTeam
	CareTeamUpdate   = care.CareTeamUpdate
	OnCallSlot       = care.OnCallSlot
	Patient          = care.Patient
	PatientFilter    = care.PatientFilter
	NewPatient       = care.NewPatient
	PatientParams    = care.PatientParams
	PatientUpdate    = care.PatientUpdate
	Membership       = care.Membership
	EscalationInput  = care.EscalationInput
	EscalationPolicy = care.EscalationPolicy
)

// MaxBatch is the largest number of readings one ingest accepts.
const MaxBatch = ingest.MaxBatch

// Readings and symptom reports (package ingest).
type (
	IngestRequest       = ingest.IngestRequest
	IngestResult        = ingest.IngestResult
	ReadingStatus       = ingest.ReadingStatus
	RequestError        = ingest.RequestError
	ReadingFilter       = ingest.ReadingFilter
	MissingDataResult   = ingest.MissingDataResult
	ReportedSymptom     = ingest.ReportedSymptom
	NewSymptomReport    = ingest.NewSymptomReport
	SymptomReportResult = ingest.SymptomReportResult
	SymptomReport       = ingest.SymptomReport
	SymptomReportFilter = ingest.SymptomReportFilter
	Reading             = readings.Reading
	AlertRef            = alerting.AlertRef
	RetakeRef           = alerting.RetakeRef
	PendingRetake       = alerting.PendingRetake
	Retraction          = ingest.Retraction
	RetractedReading    = ingest.RetractedReading
)

// ErrNoStoredReading: a retraction names no stored reading.
var ErrNoStoredReading = ingest.ErrNoStoredReading

// Alerts (package triage).
type (
	Alert        = triage.Alert
	AlertDetail  = triage.AlertDetail
	AlertFinding = triage.AlertFinding
	AlertEvent   = triage.AlertEvent
	AlertFilter  = triage.AlertFilter
	AlertCounts  = triage.AlertCounts
	// AlertConflict is a transition the alert's state forbids, with the alert as it is.
	AlertConflict = triage.Conflict
)

// Rules (package rulestore).
type (
	Rule            = rulestore.Rule
	RuleVersion     = rulestore.RuleVersion
	BacktestRequest = rulestore.BacktestRequest
	BacktestResult  = rulestore.BacktestResult
	BacktestPatient = rulestore.BacktestPatient
	BacktestExample = rulestore.BacktestExample
	SimulateRequest = rulestore.SimulateRequest
	SimulateResult  = rulestore.SimulateResult
	RuleEvalError   = rulestore.RuleEvalError
	RuleErrorFilter = rulestore.RuleErrorFilter
)

// The audit trail (package audit).
type (
	AuditEntry      = audit.Stored
	AuditFilter     = audit.Filter
	AuditRecord     = audit.Entry
	AuditReport     = audit.Report
	AuditBreak      = audit.Break
	AuditCheckpoint = audit.Checkpoint
)

// OIDCConfig configures single sign-on (package identity).
type OIDCConfig = identity.OIDCConfig

// Reminders (package reminder).
type (
	Schedule         = reminder.Schedule
	SchedulePatch    = reminder.SchedulePatch
	Dose             = reminder.Dose
	DoseFilter       = reminder.DoseFilter
	DoseConfirmation = reminder.Confirmation
	Adherence        = reminder.Adherence
)

// ParseAuditSigningKey reads the Ed25519 key that signs audit checkpoints
// (base64 of a 32-byte seed or a 64-byte private key).
func ParseAuditSigningKey(s string) (ed25519.PrivateKey, error) { return audit.ParseSigningKey(s) }

// ParseAuditPublicKey reads a base64 Ed25519 public key.
func ParseAuditPublicKey(s string) (ed25519.PublicKey, error) { return audit.ParsePublicKey(s) }

// ValidateOIDCConfig checks a single sign-on configuration before start-up.
func ValidateOIDCConfig(c OIDCConfig) error { return identity.ValidateOIDCConfig(c) }

// Messaging (package messaging).
type (
	Thread        = messaging.Thread
	ThreadFilter  = messaging.ThreadFilter
	Message       = messaging.Message
	NewMessage    = messaging.NewMessage
	PostedMessage = messaging.Posted
	MessageFilter = messaging.MessageFilter
	MessagePage   = messaging.MessagePage
	// PatientMessage is a message of a patient thread (FHIR Communication).
	PatientMessage       = messaging.PatientMessage
	PatientMessageFilter = messaging.PatientMessageFilter
	ReadState            = messaging.ReadState
	Receipt              = messaging.Receipt
	Rotated              = messaging.Rotated
	SealedState          = messaging.SealedState
	// End-to-end encrypted threads (docs/e2ee.md).
	ThreadKeys      = messaging.ThreadKeys
	RecordKey       = messaging.RecordKey
	NewEnvelope     = messaging.NewEnvelope
	RecipientsError = messaging.RecipientsError
	RecordEnvelope  = messaging.RecordEnvelope
)

// ErrNoKeys: no encryption keys are configured (Config.Keys), so messages
// cannot be sealed or opened.
var ErrNoKeys = thread.ErrNoKeys

// ErrBusy: the server is already running a rule simulation, or one ran out
// of time (POST /v1/rules/simulate); retry later or ask for less.
var ErrBusy = rulestore.ErrBusy

// Broadcasts and attachments (package messaging).
type (
	NewBroadcast         = messaging.NewBroadcast
	Broadcast            = messaging.Broadcast
	BroadcastBatchResult = messaging.BatchResult
	Attachment           = messaging.Attachment
	AttachmentInfo       = messaging.AttachmentInfo
	AttachmentStore      = messaging.AttachmentStore
	AttachmentBlob       = messaging.Blob
	AttachmentTypeError  = messaging.TypeError
	KeyRotation          = messaging.Rotation
	// PostgresAttachments is the default AttachmentStore.
	PostgresAttachments = messaging.PostgresStore
)

// Errors of attachments: the bytes are not an accepted type (415), too large
// (413), or the stored attachment failed its integrity check.
var (
	ErrUnsupportedType = messaging.ErrUnsupportedType
	ErrTooLarge        = messaging.ErrTooLarge
	ErrIntegrity       = messaging.ErrIntegrity
	ErrPlainAttachment = messaging.ErrPlainAttachment
)

// EncryptedAttachmentType is the Content-Type of an end-to-end encrypted
// thread's attachments (their ciphertext, docs/e2ee.md).
const EncryptedAttachmentType = messaging.EncryptedType

// Retention (package retention).
type (
	RetentionOptions = retention.Options
	RetentionCount   = retention.Count
	RetentionKind    = retention.Kind
)

// DefaultAttachmentMaxBytes is the default of Config.AttachmentMaxBytes.
const DefaultAttachmentMaxBytes = messaging.DefaultAttachmentMaxBytes

// DefaultMediaMaxBytes is the default of Config.MediaMaxBytes.
const DefaultMediaMaxBytes = messaging.DefaultMediaMaxBytes

// DefaultPresenceIdle is the default of Config.PresenceIdle.
const DefaultPresenceIdle = presence.DefaultIdle

// Presence (package engine/internal/presence).
type (
	// Presence is a user's presence as another may see it.
	Presence = presence.Presence
	// OwnPresence is the caller's own presence and settings.
	OwnPresence = presence.Own
	// Participant is a thread's participant with their presence.
	Participant = presence.Participant
)

// A patient's record (package engine/records).
type (
	// PatientRecord is everything Tend holds about one patient.
	PatientRecord = records.Record
	// RecordMessage is a message of a patient's record, its body opened.
	RecordMessage = records.Message
	// RecordAttachment is a file of a patient's record.
	RecordAttachment = records.Attachment
	// RecordSink receives a patient's record, then its files.
	RecordSink = records.Sink
	// Erasure is what erasing a patient did (counts only).
	Erasure = records.Erasure
)

// Organisations (package engine/orgs).
type (
	// Organisation is an organisation and its settings.
	Organisation = orgs.Organisation
	// NewOrganisation is the input of CreateOrganisation.
	NewOrganisation = orgs.NewOrganisation
	// OrganisationUpdate is the input of UpdateOrganisation.
	OrganisationUpdate = orgs.Update
	// OrganisationLogo is an organisation's logo.
	OrganisationLogo = orgs.Logo
)

// RoleSuperAdmin is an operator: creates organisations, sees no PHI.
const RoleSuperAdmin = access.RoleSuperAdmin

// MaxLogoBytes bounds an organisation's logo.
const MaxLogoBytes = orgs.MaxLogoBytes

// DefaultOrgID is the id of the default organisation (migration 00025).
func DefaultOrgID() uuid.UUID { return access.DefaultOrgID() }
