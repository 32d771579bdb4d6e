package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// Stored messages as readers see them: their bodies opened under the server's
// keys or their patient's data key, and that key made on first need.

// stored is a message row.
type stored struct {
	id, thread    uuid.UUID
	seq           int64
	sender        *uuid.UUID
	senderRole    string
	kind          string
	keyID         string
	body          []byte
	urgent        bool
	clientID      *string
	attachments   []uuid.UUID
	symptomReport *uuid.UUID
	createdAt     time.Time
}

func scanStored(r pgx.Row) (stored, error) {
	var s stored
	err := r.Scan(&s.id, &s.thread, &s.seq, &s.sender, &s.senderRole, &s.kind, &s.keyID, &s.body, &s.urgent, &s.clientID,
		&s.attachments, &s.symptomReport, &s.createdAt)
	return s, err
}

// open decrypts a stored message into what a reader sees, under the server's
// keys or its thread's patient's (o loads them).
func (ms *Service) open(ctx context.Context, o *thread.Opener, s stored) Message {
	m := Message{ID: s.id, ThreadID: s.thread, Seq: s.seq, SenderID: s.sender, SenderRole: s.senderRole, Kind: s.kind,
		Urgent: s.urgent, ClientID: s.clientID, AttachmentIDs: s.attachments, Attachments: []AttachmentInfo{},
		CreatedAt: s.createdAt}
	if m.AttachmentIDs == nil {
		m.AttachmentIDs = []uuid.UUID{}
	}
	pt, err := o.Open(ctx, s.keyID, s.body, thread.BodyAAD(s.thread, s.id))
	if errors.Is(err, thread.ErrErased) {
		m.Error = erased
		return m
	}
	if err != nil {
		ms.log.Error("message does not decrypt", "message_id", s.id, "thread_id", s.thread, "key_id", s.keyID)
		m.Error = unreadable(err)
		return m
	}
	if s.kind == thread.Encrypted {
		m.Envelope = pt
		return m
	}
	if s.kind == thread.SymptomReport {
		var r SymptomReport
		if err := json.Unmarshal(pt, &r); err != nil {
			m.Error = "the stored symptom report is not readable"
			return m
		}
		m.SymptomReport, m.Body = &r, r.Note
		return m
	}
	m.Body = string(pt)
	return m
}

// patientKey is the data key that seals the records of a thread about
// patient (nil for a thread about no patient): created on first need;
// access.ErrConflict once the patient was erased.
func (ms *Service) patientKey(ctx context.Context, tx pgx.Tx, patient *uuid.UUID, now time.Time) (*thread.PatientKey, error) {
	if patient == nil {
		return nil, nil
	}
	k, err := thread.EnsureKey(ctx, tx, ms.keys, now, *patient)
	if errors.Is(err, thread.ErrErased) {
		return nil, fmt.Errorf("%w: %w", err, access.ErrConflict)
	}
	return k, err
}

// erased is the reader's explanation of a body whose patient was erased.
const erased = "the body was erased with the patient's data"

// unreadable is the reader's explanation of a body that does not decrypt.
func unreadable(err error) string {
	if errors.Is(err, thread.ErrNoKeys) {
		return "the body cannot be decrypted: no encryption keys are configured"
	}
	return "the body does not decrypt: its key is not configured, or the stored ciphertext was altered or moved"
}
