// Package thread is what the use cases that write to message threads share:
// the kinds of thread and message, creating a patient's and a care team's
// threads (care, in the transaction that creates them), appending a message
// (messaging for posts, ingest for symptom reports, in their transactions),
// and sealing bodies at rest.
//
// A message body is sealed with AES-256-GCM (package sealed) under the
// data key of the thread's patient (keys.go) or, in a thread about no
// patient, the keyring's current key, bound to "message.body", the thread id and the
// message id: a ciphertext copied into another row does not open.
package thread

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/sealed"
)

// The kinds of thread.
const (
	// Patient is a patient's thread with one of their care teams.
	Patient = "patient"
	// StaffPatient is a care team's staff-only thread about one patient.
	StaffPatient = "staff_patient"
	// Team is a care team's staff channel.
	Team = "team"
	// Direct is two staff members' direct conversation.
	Direct = "direct"
)

// The kinds of message.
const (
	Text          = "text"
	SymptomReport = "symptom_report"
	// Encrypted is an end-to-end encrypted message: its body is the
	// envelope (package e2ee), which the server cannot open.
	Encrypted = "encrypted"
)

var (
	// ErrNoKeys: no encryption keys are configured, so nothing can be sealed.
	ErrNoKeys = errors.New("message encryption keys are not configured (TEND_ENCRYPTION_KEYS)")
	// ErrUnreadable: a stored ciphertext did not open — its key is missing,
	// or it was changed or moved to another row. Never garbage instead.
	ErrUnreadable = errors.New("sealed record does not decrypt")
)

// BodyAAD is the associated data of message id's body in thread.
func BodyAAD(thread, id uuid.UUID) []byte {
	return sealed.AAD("message.body", thread.String(), id.String())
}

// NoteAAD is the associated data of symptom report id's note for patient.
func NoteAAD(patient, id uuid.UUID) []byte {
	return sealed.AAD("symptom_report.note", patient.String(), id.String())
}

// Open decrypts a sealed record, or ErrUnreadable (naming the key id, never
// the content).
func Open(keys *sealed.Keyring, keyID string, ct, aad []byte) ([]byte, error) {
	if keys == nil {
		return nil, ErrNoKeys
	}
	pt, err := keys.Open(keyID, ct, aad)
	if err != nil {
		return nil, fmt.Errorf("%w (key %q): %w", ErrUnreadable, keyID, err)
	}
	return pt, nil
}

// CreatePatientThreads creates a patient's threads with team: the patient's
// thread and the team's staff-only thread about the patient.
func CreatePatientThreads(ctx context.Context, tx pgx.Tx, patient, team uuid.UUID, now time.Time) error {
	if _, err := tx.Exec(ctx, insertPatientThreadsSQL, pg.NewID(), pg.NewID(), team, patient, now); err != nil {
		return fmt.Errorf("create patient threads: %w", err)
	}
	return nil
}

// CreateTeamThread creates care team team's staff channel.
func CreateTeamThread(ctx context.Context, tx pgx.Tx, team uuid.UUID, now time.Time) error {
	if _, err := tx.Exec(ctx, insertTeamThreadSQL, pg.NewID(), team, now); err != nil {
		return fmt.Errorf("create team thread: %w", err)
	}
	return nil
}

// New is a message to append.
type New struct {
	ID         uuid.UUID // pg.NewID() when zero
	ThreadID   uuid.UUID
	SenderID   uuid.UUID
	SenderRole string
	Kind       string
	// Body is the plaintext: it is sealed before it leaves this package.
	Body            []byte
	Urgent          bool
	ClientID        string
	AttachmentIDs   []uuid.UUID
	SymptomReportID uuid.UUID
	// Sender is an encrypted message's sender device, sender sequence and
	// ciphertext SHA-256 (docs/e2ee.md); nil for any other message.
	Sender *EnvelopeSender
	// Key is the data key of the thread's patient, which seals the body of
	// a message in a patient's or staff_patient thread; nil seals under the
	// server's current key (team and direct threads).
	Key *PatientKey
}

// EnvelopeSender is what is stored beside an encrypted message's envelope.
type EnvelopeSender struct {
	Device           uuid.UUID
	Seq              int64
	CiphertextSHA256 []byte
}

// Appended is a message as appended.
type Appended struct {
	ID         uuid.UUID
	Seq        int64
	CreatedAt  time.Time
	ThreadKind string
	CareTeamID uuid.UUID
	PatientID  uuid.UUID
}

// Append stores a message at the end of its thread in tx: it takes the
// thread's next sequence number (locking the thread row until commit), seals
// the body, marks it delivered to and read by its sender, and appends a
// message.created event for the thread's participants (ids only).
func Append(ctx context.Context, tx pgx.Tx, keys *sealed.Keyring, now time.Time, n New) (Appended, error) {
	if keys == nil {
		return Appended{}, ErrNoKeys
	}
	if n.ID == uuid.Nil {
		n.ID = pg.NewID()
	}
	if n.AttachmentIDs == nil {
		n.AttachmentIDs = []uuid.UUID{}
	}
	keyID, ct := keys.Seal(n.Body, BodyAAD(n.ThreadID, n.ID))
	if n.Key != nil {
		keyID, ct = n.Key.Seal(n.Body, BodyAAD(n.ThreadID, n.ID))
	}
	var client *string
	if n.ClientID != "" {
		client = &n.ClientID
	}
	out := Appended{ID: n.ID, CreatedAt: now}
	var team, patient *uuid.UUID
	var device *uuid.UUID
	var senderSeq *int64
	var sum []byte
	if n.Sender != nil {
		device, senderSeq, sum = &n.Sender.Device, &n.Sender.Seq, n.Sender.CiphertextSHA256
	}
	err := tx.QueryRow(ctx, appendSQL, n.ThreadID, n.ID, pg.NilIfZero(n.SenderID), n.SenderRole, n.Kind, keyID, ct, n.Urgent,
		client, n.AttachmentIDs, pg.NilIfZero(n.SymptomReportID), now, device, senderSeq, sum).
		Scan(&out.Seq, &out.ThreadKind, &team, &patient)
	if errors.Is(err, pgx.ErrNoRows) {
		return Appended{}, fmt.Errorf("append message: no thread %s", n.ThreadID)
	}
	if err != nil {
		return Appended{}, fmt.Errorf("append message: %w", err)
	}
	out.CareTeamID, out.PatientID = pg.Deref(team), pg.Deref(patient)
	b := &pgx.Batch{}
	if n.SenderID != uuid.Nil {
		b.Queue(markSQL, n.ThreadID, n.SenderID, out.Seq, out.Seq, now)
	}
	events.Queue(b, now, events.Event{Type: events.MessageCreated, ThreadID: n.ThreadID, CareTeamID: out.CareTeamID,
		PatientID: out.PatientID, Payload: map[string]any{"thread_id": n.ThreadID, "message_id": n.ID, "seq": out.Seq,
			"sender_id": n.SenderID, "kind": n.Kind, "urgent": n.Urgent}})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return Appended{}, fmt.Errorf("append message: %w", err)
	}
	return out, nil
}

// Mark raises user's watermarks in thread to at least delivered and read
// (0 leaves one as it is); watermarks never go down.
func Mark(ctx context.Context, tx pgx.Tx, thread, user uuid.UUID, delivered, read int64, now time.Time) error {
	if _, err := tx.Exec(ctx, markSQL, thread, user, max(delivered, read), read, now); err != nil {
		return fmt.Errorf("mark thread: %w", err)
	}
	return nil
}

// MarkSQL is Mark's statement, for callers that batch it: $1 thread, $2
// user, $3 delivered, $4 read, $5 now.
const MarkSQL = markSQL
