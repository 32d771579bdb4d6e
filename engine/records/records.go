// Package records is a patient's record as a whole: everything Tend holds
// about one patient, exported for the patient's right of access and to data
// portability (GDPR articles 15 and 20, HIPAA's right of access). It reads
// the tables of every use case in one snapshot and writes one audit entry.
package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/readings"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/sealed"
)

// OpenAttachment returns an attachment's bytes, checked against its
// recorded size and SHA-256; failed names what did not hold ("" when all
// did). The messaging use case owns the attachment store, so the engine
// passes its opener.
type OpenAttachment func(ctx context.Context, tx pgx.Tx, a Attachment) (data []byte, failed string, err error)

// Config wires a Service.
type Config struct {
	Pool           *pgxpool.Pool
	Now            func() time.Time
	Audit          audit.Writer
	Keys           *sealed.Keyring
	OpenAttachment OpenAttachment
}

// Service exports patients' records.
type Service struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	audit audit.Writer
	keys  *sealed.Keyring
	open  OpenAttachment
}

// New builds a Service.
func New(cfg Config) *Service {
	return &Service{pool: cfg.Pool, now: cfg.Now, audit: cfg.Audit, keys: cfg.Keys, open: cfg.OpenAttachment}
}

// Record is everything Tend holds about one patient, as of one snapshot.
type Record struct {
	Patient   Patient
	CareTeam  CareTeam
	Readings  []readings.Reading
	Alerts    []Alert
	Messages  []Message
	Schedules []Schedule
	Doses     []Dose
	// Accesses are the audit entries of who read or exported the patient's
	// data (reads, lists and exports), oldest first.
	Accesses []audit.Stored
	// StaffThreads says whether the staff-only discussion about the patient
	// is included: for an admin's export, not for the patient's own.
	StaffThreads bool
	ExportedAt   time.Time
}

// Patient is the patient as stored.
type Patient struct {
	ID          uuid.UUID
	DisplayName string
	ExternalID  string
	TimeZone    string
	Programs    []string
	EnrolledAt  time.Time
	CreatedAt   time.Time
}

// CareTeam is the patient's care team and its members.
type CareTeam struct {
	ID      uuid.UUID
	Name    string
	Members []Member
}

// Member is a member of a care team and their role in it.
type Member struct {
	UserID uuid.UUID
	Name   string
	Role   string // clinician, lead, scheduler
}

// Alert is an alert raised about the patient.
type Alert struct {
	ID         uuid.UUID
	RuleID     string
	Urgency    rpm.Urgency
	Status     string
	Title      string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ResolvedAt *time.Time
}

// Message is a message of one of the patient's threads, its body opened.
type Message struct {
	ID         uuid.UUID
	ThreadID   uuid.UUID
	ThreadKind string // patient (with the care team) or staff_patient
	CareTeamID uuid.UUID
	Seq        int64
	SenderID   *uuid.UUID
	SenderRole string
	Kind       string // text, symptom_report, encrypted
	// Body is the opened text; empty for an encrypted message (the server
	// cannot read it: tend records export opens it with the record key) and,
	// with Unreadable set, when the stored body does not open.
	Body        string
	Unreadable  string
	Urgent      bool
	Attachments []Attachment
	SentAt      time.Time
}

// Attachment is a file of a message; its bytes go to the Sink.
type Attachment struct {
	ID          uuid.UUID
	ThreadID    uuid.UUID
	ContentType string
	Size        int64
	SHA256      string // hex
	DurationMS  *int64
	CreatedAt   time.Time
	// Failed, when the Sink receives no bytes, says why: the stored bytes
	// are missing, do not open, or do not match their recorded SHA-256.
	Failed string
}

// Schedule is a medication or measurement reminder schedule.
type Schedule struct {
	ID        uuid.UUID
	Spec      rpm.Schedule
	Paused    bool
	Deleted   bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Dose is one occurrence of a schedule that has been decided (taken,
// skipped, missed or cancelled); doses still pending are not history.
type Dose struct {
	ID         uuid.UUID
	ScheduleID uuid.UUID
	DueAt      time.Time
	Status     string
	DecidedAt  *time.Time
	TakenAt    *time.Time
}

// Sink receives an export: the record first, then each attachment's bytes
// in turn (one in memory at a time; nil with Attachment.Failed set when they
// fail their integrity check). An error from it ends the export.
type Sink interface {
	Record(r Record) error
	Attachment(a Attachment, data []byte) error
}

// Export reads the patient's whole record in one snapshot and hands it to
// sink. Admins export any patient, with the staff-only threads about them;
// a patient exports their own record (their thread with the care team).
// Anyone else gets ErrForbidden, and a patient asking for another patient,
// or an unknown patient, ErrNotFound.
//
// The audit entry (patient.export, with the counts) commits with the
// snapshot's reading, before the first byte reaches sink: an export that
// is cut short is still on record. Attachments are read afterwards, each in
// a short transaction of its own, so no transaction waits on the network.
func (s *Service) Export(ctx context.Context, a access.Actor, patientID uuid.UUID, sink Sink) error {
	if err := access.Require(a, access.RoleAdmin, access.RolePatient); err != nil {
		return err
	}
	if a.Role == access.RolePatient && a.PatientID != patientID {
		return fmt.Errorf("patient: %w", access.ErrNotFound)
	}
	var rec Record
	err := pg.InTxOpts(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var err error
		if rec, err = s.read(ctx, tx, patientID, a.Org(), a.Role == access.RoleAdmin); err != nil {
			return err
		}
		return s.audit.Write(ctx, tx, a, audit.Entry{Action: "patient.export", PatientID: patientID, ObjectType: "patient",
			ObjectID: patientID.String(), Detail: map[string]any{"readings": len(rec.Readings), "alerts": len(rec.Alerts),
				"messages": len(rec.Messages), "attachments": rec.attachments(), "doses": len(rec.Doses),
				"staff_threads": rec.StaffThreads}})
	})
	if err != nil {
		return err
	}
	if err := sink.Record(rec); err != nil {
		return err
	}
	for _, m := range rec.Messages {
		for _, att := range m.Attachments {
			if err := s.attachment(ctx, att, sink); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r Record) attachments() int {
	n := 0
	for _, m := range r.Messages {
		n += len(m.Attachments)
	}
	return n
}

func (s *Service) attachment(ctx context.Context, att Attachment, sink Sink) error {
	var data []byte
	var failed string
	err := pg.ReadTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		data, failed, err = s.open(ctx, tx, att)
		return err
	})
	if err != nil {
		return fmt.Errorf("export attachment %s: %w", att.ID, err)
	}
	if failed != "" {
		// The rest of the record is still the patient's: the file is
		// named as failed rather than the export refused.
		att.Failed, data = failed, nil
	}
	return sink.Attachment(att, data)
}

// read loads the record. The patient's row comes first: an unknown
// patient is ErrNotFound before anything else is read.
func (s *Service) read(ctx context.Context, tx pgx.Tx, id uuid.UUID, org *uuid.UUID, staff bool) (Record, error) {
	rec := Record{StaffThreads: staff, ExportedAt: s.now()}
	p := &rec.Patient
	err := tx.QueryRow(ctx, patientSQL, id, org).Scan(&p.ID, &p.DisplayName, &p.ExternalID, &p.TimeZone, &p.Programs,
		&p.EnrolledAt, &p.CreatedAt, &rec.CareTeam.ID, &rec.CareTeam.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("patient: %w", access.ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("export patient: %w", err)
	}
	steps := []func() error{
		func() (err error) {
			rec.CareTeam.Members, err = collect(ctx, tx, membersSQL, scanMember, rec.CareTeam.ID)
			return
		},
		func() (err error) { rec.Readings, err = collect(ctx, tx, readingsSQL, readings.Scan, id); return },
		func() (err error) { rec.Alerts, err = collect(ctx, tx, alertsSQL, scanAlert, id); return },
		func() (err error) { rec.Messages, err = s.messages(ctx, tx, id, staff); return },
		func() (err error) { rec.Schedules, err = collect(ctx, tx, schedulesSQL, scanSchedule, id); return },
		func() (err error) { rec.Doses, err = collect(ctx, tx, dosesSQL, scanDose, id); return },
		func() (err error) { rec.Accesses, err = collect(ctx, tx, accessesSQL, scanAccess, id); return },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return Record{}, fmt.Errorf("export patient: %w", err)
		}
	}
	return rec, nil
}

// messages loads the messages of the patient's threads with their
// attachments, bodies opened.
func (s *Service) messages(ctx context.Context, tx pgx.Tx, patient uuid.UUID, staff bool) ([]Message, error) {
	kinds := []string{"patient"}
	if staff {
		kinds = append(kinds, "staff_patient")
	}
	atts, err := collect(ctx, tx, attachmentsSQL, scanAttachment, patient, kinds)
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]Attachment, len(atts))
	for _, a := range atts {
		byID[a.ID] = a
	}
	o := thread.NewOpener(s.keys, tx)
	if err := o.Load(ctx, patient); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, messagesSQL, patient, kinds)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Message, error) {
		var m Message
		var keyID string
		var body []byte
		var ids []uuid.UUID
		if err := row.Scan(&m.ID, &m.ThreadID, &m.ThreadKind, &m.CareTeamID, &m.Seq, &m.SenderID, &m.SenderRole, &m.Kind,
			&keyID, &body, &m.Urgent, &ids, &m.SentAt); err != nil {
			return Message{}, err
		}
		for _, id := range ids {
			if a, ok := byID[id]; ok {
				m.Attachments = append(m.Attachments, a)
			}
		}
		if m.Kind == "encrypted" {
			return m, nil
		}
		pt, err := o.Open(ctx, keyID, body, thread.BodyAAD(m.ThreadID, m.ID))
		switch {
		case errors.Is(err, thread.ErrNoKeys):
			return Message{}, err
		case errors.Is(err, thread.ErrErased):
			m.Unreadable = "the body was erased with the patient's data"
		case err != nil:
			m.Unreadable = "the stored body does not open with the server's keys"
		default:
			m.Body = string(pt)
		}
		return m, nil
	})
}

func collect[T any](ctx context.Context, tx pgx.Tx, sql string, scan pgx.RowToFunc[T], args ...any) ([]T, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

func scanMember(row pgx.CollectableRow) (Member, error) {
	var m Member
	return m, row.Scan(&m.UserID, &m.Name, &m.Role)
}

func scanAlert(row pgx.CollectableRow) (Alert, error) {
	var a Alert
	return a, row.Scan(&a.ID, &a.RuleID, &a.Urgency, &a.Status, &a.Title, &a.CreatedAt, &a.UpdatedAt, &a.ResolvedAt)
}

func scanAttachment(row pgx.CollectableRow) (Attachment, error) {
	var a Attachment
	return a, row.Scan(&a.ID, &a.ThreadID, &a.ContentType, &a.Size, &a.SHA256, &a.DurationMS, &a.CreatedAt)
}

func scanSchedule(row pgx.CollectableRow) (Schedule, error) {
	var s Schedule
	var spec []byte
	var deleted *time.Time
	if err := row.Scan(&s.ID, &spec, &s.Paused, &deleted, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return Schedule{}, err
	}
	s.Deleted = deleted != nil
	if err := json.Unmarshal(spec, &s.Spec); err != nil {
		return Schedule{}, fmt.Errorf("schedule %s: %w", s.ID, err)
	}
	return s, nil
}

func scanDose(row pgx.CollectableRow) (Dose, error) {
	var d Dose
	return d, row.Scan(&d.ID, &d.ScheduleID, &d.DueAt, &d.Status, &d.DecidedAt, &d.TakenAt)
}

func scanAccess(row pgx.CollectableRow) (audit.Stored, error) {
	var e audit.Stored
	var detail []byte
	if err := row.Scan(&e.ID, &e.At, &e.ActorID, &e.ActorRole, &e.Action, &e.PatientID, &e.ObjectType, &e.ObjectID,
		&e.RequestID, &detail, &e.Outcome); err != nil {
		return audit.Stored{}, err
	}
	if len(detail) > 0 {
		if err := json.Unmarshal(detail, &e.Detail); err != nil {
			return audit.Stored{}, fmt.Errorf("audit entry %d: %w", e.ID, err)
		}
	}
	return e, nil
}
