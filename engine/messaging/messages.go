package messaging

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/rpm"
)

// Limits of a message.
const (
	// MaxBody bounds a message body, in characters.
	MaxBody = 4000
	// MaxClientID bounds a client_id (or Idempotency-Key).
	MaxClientID = 200
	// MaxAttachments bounds the attachments of one message.
	MaxAttachments = 10
)

// The receipt states of a message for one recipient.
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
)

// Message is a message as its reader sees it.
type Message struct {
	ID         uuid.UUID  `json:"id"`
	ThreadID   uuid.UUID  `json:"thread_id"`
	Seq        int64      `json:"seq"`
	SenderID   *uuid.UUID `json:"sender_id"`
	SenderRole string     `json:"sender_role"`
	// Kind is "text", "symptom_report" or "encrypted".
	Kind string `json:"kind"`
	// Body is the text (for a symptom report, its note, if any). Empty with
	// Error set when the stored ciphertext does not decrypt.
	Body          string      `json:"body"`
	Urgent        bool        `json:"urgent"`
	ClientID      *string     `json:"client_id,omitempty"`
	AttachmentIDs []uuid.UUID `json:"attachment_ids"`
	// Attachments describe the attachments (id, type, size, SHA-256).
	Attachments []AttachmentInfo `json:"attachments"`
	// Envelope is an encrypted message's envelope (kind "encrypted"), which
	// only the recipient devices open (docs/e2ee.md).
	Envelope json.RawMessage `json:"envelope,omitempty"`
	// SymptomReport is the report a symptom_report message shows.
	SymptomReport *SymptomReport `json:"symptom_report,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	// Receipts are, on the reader's own messages, each other participant's
	// state: sent, delivered or read.
	Receipts []Receipt `json:"receipts,omitempty"`
	// Error says why the body is missing: the stored ciphertext does not
	// decrypt (unknown key, or altered or moved). Never garbage instead.
	Error string `json:"error,omitempty"`
}

// SymptomReport is the structured content of a symptom_report message.
type SymptomReport struct {
	ID       uuid.UUID         `json:"id"`
	Symptoms []json.RawMessage `json:"symptoms"`
	Note     string            `json:"note,omitempty"`
}

// Receipt is one recipient's state of a message.
type Receipt struct {
	UserID uuid.UUID `json:"user_id"`
	Status string    `json:"status"`
}

// NewMessage is the input of PostMessage.
type NewMessage struct {
	Body   string
	Urgent bool
	// AttachmentIDs name attachments already uploaded to the thread.
	AttachmentIDs []uuid.UUID
	// ClientID (or the request's Idempotency-Key) makes a retry return the
	// message already posted.
	ClientID string
}

// Validate checks a new message: a *rpm.ValidationError naming the field.
func (in NewMessage) Validate() error {
	var v rpm.ValidationError
	n := utf8.RuneCountInString(in.Body)
	switch {
	case !utf8.ValidString(in.Body):
		v.Add("body", "is not valid UTF-8")
	case n == 0:
		v.Add("body", "is required (1 to 4000 characters)")
	case n > MaxBody:
		v.Add("body", fmt.Sprintf("is longer than %d characters", MaxBody))
	}
	if len(in.AttachmentIDs) > MaxAttachments {
		v.Add("attachment_ids", fmt.Sprintf("at most %d attachments per message", MaxAttachments))
	}
	if len(in.ClientID) > MaxClientID || !utf8.ValidString(in.ClientID) {
		v.Add("client_id", fmt.Sprintf("is longer than %d characters", MaxClientID))
	}
	return v.OrNil()
}

// Posted is the outcome of PostMessage.
type Posted struct {
	Message
	// Created is false when the client id was seen before: Message is the
	// one already posted.
	Created bool `json:"-"`
}

// loadThread reads a thread the actor takes part in (access.ErrNotFound
// otherwise).
func loadThread(ctx context.Context, tx pgx.Tx, a access.Actor, id uuid.UUID) (Thread, error) {
	t, err := scanThread(tx.QueryRow(ctx, threadSQL, a.Role, a.PatientID, a.UserID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Thread{}, fmt.Errorf("thread: %w", access.ErrNotFound)
	}
	if err != nil {
		return Thread{}, fmt.Errorf("thread: %w", err)
	}
	return t, nil
}

// PostMessage posts a message to a thread the actor takes part in: the
// message (sealed), its audit entry, its message.created event and the job
// that pushes it to the other side after the hold commit together. A retry
// with the same client id returns the message already posted. Only staff
// may mark a message urgent.
//
// Concurrent posts share transactions (group commit, groupcommit.go): each
// still commits with its audit entry, event and push job, and fails alone
// when it is out of scope.
func (ms *Service) PostMessage(ctx context.Context, a access.Actor, threadID uuid.UUID, in NewMessage) (Posted, error) {
	if err := in.Validate(); err != nil {
		return Posted{}, err
	}
	if in.Urgent && a.Role == access.RolePatient {
		// Patients never take part in a thread where they could mark one.
		return Posted{}, ms.urgentRefused(ctx, a, threadID)
	}
	if ms.keys == nil {
		return Posted{}, thread.ErrNoKeys
	}
	j := &postJob{actor: a, thread: threadID, in: in}
	if err := ms.poster.Do(ctx, j); err != nil {
		return Posted{}, err
	}
	if j.err != nil {
		return Posted{}, j.err
	}
	return j.out, nil
}

// urgentRefused answers a patient's urgent post: not found when the thread
// is not theirs (existence never leaks), else a field error.
func (ms *Service) urgentRefused(ctx context.Context, a access.Actor, threadID uuid.UUID) error {
	if _, err := ms.GetThread(ctx, a, threadID); err != nil {
		return err
	}
	return check.FieldError("urgent", "only care team staff may mark a message urgent")
}

// postOne posts one message in a transaction of its own: the path of a
// group whose shared transaction failed, so that one bad post fails alone.
func (ms *Service) postOne(ctx context.Context, a access.Actor, threadID uuid.UUID, in NewMessage) (Posted, error) {
	var out Posted
	post := func() error {
		return pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
			t, err := loadThread(ctx, tx, a, threadID)
			if err != nil {
				return err
			}
			if t.Encrypted {
				return ErrEncryptedThread
			}
			if in.ClientID != "" {
				var id uuid.UUID
				err := tx.QueryRow(ctx, clientMessageSQL, threadID, a.UserID, in.ClientID).Scan(&id)
				if err == nil {
					s, err := scanStored(tx.QueryRow(ctx, messageByIDSQL, id))
					if err != nil {
						return fmt.Errorf("message: %w", err)
					}
					one := []Message{ms.open(ctx, thread.NewOpener(ms.keys, tx), s)}
					if err := ms.describeAttachments(ctx, tx, one); err != nil {
						return err
					}
					out = Posted{Message: one[0]}
					return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "message.read", PatientID: pg.Deref(t.PatientID),
						ObjectType: "thread", ObjectID: threadID.String(), Detail: map[string]any{"message_ids": []uuid.UUID{id}}})
				}
				if !errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("message by client id: %w", err)
				}
			}
			if err := ms.attachments(ctx, tx, threadID, in.AttachmentIDs); err != nil {
				return err
			}
			now := ms.now().Truncate(time.Microsecond)
			key, err := ms.patientKey(ctx, tx, t.PatientID, now)
			if err != nil {
				return err
			}
			ap, err := thread.Append(ctx, tx, ms.keys, now, thread.New{ThreadID: threadID, SenderID: a.UserID,
				SenderRole: string(a.Role), Kind: thread.Text, Body: []byte(in.Body), Urgent: in.Urgent, ClientID: in.ClientID,
				AttachmentIDs: in.AttachmentIDs, Key: key})
			if err != nil {
				return err
			}
			if err := ms.audit.Write(ctx, tx, a, audit.Entry{Action: "message.create", PatientID: pg.Deref(t.PatientID),
				ObjectType: "thread", ObjectID: threadID.String(), Detail: map[string]any{"message_ids": []uuid.UUID{ap.ID}}}); err != nil {
				return err
			}
			if _, err := ms.jobs().InsertTx(ctx, tx, pushArgs{MessageID: ap.ID}, ms.pushOpts(now)); err != nil {
				return fmt.Errorf("schedule message push: %w", err)
			}
			one := []Message{newMessage(a, threadID, ap.ID, ap.Seq, in, now)}
			if err := ms.describeAttachments(ctx, tx, one); err != nil {
				return err
			}
			out = Posted{Created: true, Message: one[0]}
			return nil
		})
	}
	err := post()
	if pg.IsUniqueViolation(err) && in.ClientID != "" {
		// A concurrent retry with the same client id won: return its message.
		err = post()
	}
	if err != nil {
		return Posted{}, err
	}
	return out, nil
}

// pushOpts schedules a message's push at the end of its hold.
func (ms *Service) pushOpts(now time.Time) *river.InsertOpts {
	return &river.InsertOpts{Queue: pushQueue, ScheduledAt: now.Add(ms.hold), MaxAttempts: 10}
}

// newMessage is a message just posted, as its sender sees it.
func newMessage(a access.Actor, threadID, id uuid.UUID, seq int64, in NewMessage, now time.Time) Message {
	sender := a.UserID
	var client *string
	if in.ClientID != "" {
		c := in.ClientID
		client = &c
	}
	attachments := in.AttachmentIDs
	if attachments == nil {
		attachments = []uuid.UUID{}
	}
	return Message{ID: id, ThreadID: threadID, Seq: seq, SenderID: &sender, SenderRole: string(a.Role), Kind: thread.Text,
		Body: in.Body, Urgent: in.Urgent, ClientID: client, AttachmentIDs: attachments, Attachments: []AttachmentInfo{},
		CreatedAt: now}
}

// MessageFilter pages a thread's messages. Before and After are cursors
// from a previous page (at most one): without either, the newest page.
type MessageFilter struct {
	Before string
	After  string
	Limit  int
}

// MessagePage is a page of a thread's messages, oldest first.
type MessagePage struct {
	Items []Message `json:"items"`
	// NextCursor continues in the direction asked: older messages (the
	// default, or before), newer ones (after). Null at the end.
	NextCursor *string `json:"next_cursor"`
	// BeforeCursor pages to older messages (null when there are none);
	// AfterCursor to newer ones (always set, so a client can ask for what
	// arrives next).
	BeforeCursor *string `json:"before_cursor"`
	AfterCursor  string  `json:"after_cursor"`
}

func seqCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func parseSeqCursor(field, c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 1 && len(b) < 21 && b[0] == 's' {
		if n, err := strconv.ParseInt(string(b[1:]), 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, check.FieldError(field, "is not a cursor returned by this endpoint")
}

// cursors reads the filter's before and after sequence cursors (-1: not
// given); at most one may be given.
func (f MessageFilter) cursors() (before, after int64, err error) {
	before, after = -1, -1
	if f.Before != "" && f.After != "" {
		return before, after, check.FieldError("after", "give before or after, not both")
	}
	if f.Before != "" {
		if before, err = parseSeqCursor("before", f.Before); err != nil {
			return before, after, err
		}
	}
	if f.After != "" {
		if after, err = parseSeqCursor("after", f.After); err != nil {
			return before, after, err
		}
	}
	return before, after, nil
}

// setCursors sets the page's cursors for the messages got (in order),
// read before or after a sequence number; more: the page is full and
// there are more in the direction read.
func (page *MessagePage) setCursors(got []stored, before, after int64, more bool) {
	switch {
	case len(got) == 0 && after >= 0:
		page.AfterCursor = seqCursor(after)
	case len(got) == 0:
		page.AfterCursor = seqCursor(max(before-1, 0))
	default:
		page.AfterCursor = seqCursor(got[len(got)-1].seq)
		if first := got[0].seq; first > 1 && (after >= 0 || more) { // read backwards, a short page is the oldest (retention)
			c := seqCursor(first)
			page.BeforeCursor = &c
		}
	}
	if more {
		c := page.AfterCursor
		if after < 0 {
			c = seqCursor(got[0].seq)
		}
		page.NextCursor = &c
	}
}

// ListMessages returns a page of a thread's messages, oldest first, to its
// participants. Fetching marks the page delivered to the reader; the
// reader's own messages carry each recipient's receipt. Audited with the
// message ids.
func (ms *Service) ListMessages(ctx context.Context, a access.Actor, threadID uuid.UUID, f MessageFilter) (MessagePage, error) {
	before, after, err := f.cursors()
	if err != nil {
		return MessagePage{}, err
	}
	limit := pg.ClampLimit(f.Limit)
	var page MessagePage
	err = pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		t, err := loadThread(ctx, tx, a, threadID)
		if err != nil {
			return err
		}
		var rows pgx.Rows
		if after >= 0 {
			rows, err = tx.Query(ctx, messagesAfterSQL, threadID, after, limit+1)
		} else {
			if before < 0 {
				before = t.lastSeq + 1
			}
			rows, err = tx.Query(ctx, messagesBeforeSQL, threadID, before, limit+1)
		}
		if err != nil {
			return fmt.Errorf("list messages: %w", err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stored, error) { return scanStored(r) })
		if err != nil {
			return fmt.Errorf("list messages: %w", err)
		}
		more := len(got) > limit
		if more {
			got = got[:limit]
		}
		if after < 0 {
			slices.Reverse(got)
		}
		page.Items = make([]Message, len(got))
		ids := make([]uuid.UUID, len(got))
		o := thread.NewOpener(ms.keys, tx)
		for i, s := range got {
			page.Items[i] = ms.open(ctx, o, s)
			ids[i] = s.id
		}
		if err := ms.receipts(ctx, tx, a, threadID, page.Items); err != nil {
			return err
		}
		if err := ms.describeAttachments(ctx, tx, page.Items); err != nil {
			return err
		}
		page.setCursors(got, before, after, more)
		now := ms.now()
		if len(got) > 0 {
			if err := thread.Mark(ctx, tx, threadID, a.UserID, got[len(got)-1].seq, 0, now); err != nil {
				return err
			}
		}
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "message.list", PatientID: pg.Deref(t.PatientID),
			ObjectType: "thread", ObjectID: threadID.String(), Detail: map[string]any{"message_ids": ids}})
	})
	if err != nil {
		return MessagePage{}, err
	}
	return page, nil
}

// receipts fills in each recipient's state of the reader's own messages.
func (ms *Service) receipts(ctx context.Context, tx pgx.Tx, a access.Actor, threadID uuid.UUID, msgs []Message) error {
	own := false
	for _, m := range msgs {
		if m.SenderID != nil && *m.SenderID == a.UserID {
			own = true
			break
		}
	}
	if !own {
		return nil
	}
	type marks struct {
		user            uuid.UUID
		delivered, read int64
	}
	rows, err := tx.Query(ctx, receiptsSQL, threadID)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (marks, error) {
		var m marks
		err := r.Scan(&m.user, &m.delivered, &m.read)
		return m, err
	})
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	slices.SortFunc(all, func(x, y marks) int { return slices.Compare(x.user[:], y.user[:]) })
	all = slices.CompactFunc(all, func(x, y marks) bool { return x.user == y.user })
	for i := range msgs {
		m := &msgs[i]
		if m.SenderID == nil || *m.SenderID != a.UserID {
			continue
		}
		m.Receipts = []Receipt{}
		for _, p := range all {
			if p.user == a.UserID {
				continue
			}
			st := StatusSent
			switch {
			case p.read >= m.Seq:
				st = StatusRead
			case p.delivered >= m.Seq:
				st = StatusDelivered
			}
			m.Receipts = append(m.Receipts, Receipt{UserID: p.user, Status: st})
		}
	}
	return nil
}

// ReadState is a reader's receipts in a thread after a read mark.
type ReadState struct {
	ThreadID      uuid.UUID `json:"thread_id"`
	ReadUpTo      int64     `json:"read_up_to"`
	DeliveredUpTo int64     `json:"delivered_up_to"`
	UnreadCount   int64     `json:"unread_count"`
}

// MarkRead marks a thread read by the actor up to message upTo (and
// delivered). Read marks only grow: marking an older message changes
// nothing. The thread's participants get a message.read event.
func (ms *Service) MarkRead(ctx context.Context, a access.Actor, threadID, upTo uuid.UUID) (ReadState, error) {
	if upTo == uuid.Nil {
		return ReadState{}, check.FieldError("up_to", "is required: the id of the last message read")
	}
	var st ReadState
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		t, err := loadThread(ctx, tx, a, threadID)
		if err != nil {
			return err
		}
		var seq int64
		err = tx.QueryRow(ctx, seqOfSQL, threadID, upTo).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return check.FieldError("up_to", "no such message in this thread")
		}
		if err != nil {
			return fmt.Errorf("read mark: %w", err)
		}
		now := ms.now()
		if err := thread.Mark(ctx, tx, threadID, a.UserID, seq, seq, now); err != nil {
			return err
		}
		var delivered, read int64
		if err := tx.QueryRow(ctx, receiptOfSQL, threadID, a.UserID).Scan(&delivered, &read); err != nil {
			return fmt.Errorf("read mark: %w", err)
		}
		st = ReadState{ThreadID: threadID, ReadUpTo: read, DeliveredUpTo: delivered, UnreadCount: max(t.lastSeq-read, 0)}
		if read == seq && read > t.readUpTo {
			if err := events.Publish(ctx, tx, now, events.Event{Type: events.MessageRead, ThreadID: threadID,
				CareTeamID: pg.Deref(t.CareTeamID), PatientID: pg.Deref(t.PatientID),
				Payload: map[string]any{"thread_id": threadID, "user_id": a.UserID, "read_up_to": read, "message_id": upTo}}); err != nil {
				return err
			}
		}
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "message.mark_read", PatientID: pg.Deref(t.PatientID),
			ObjectType: "thread", ObjectID: threadID.String(), Detail: map[string]any{"message_ids": []uuid.UUID{upTo}}})
	})
	return st, err
}

// MarkStreamDelivered marks message id delivered to the actor, whose stream
// just sent its message.created event. Nothing happens for a message
// outside the actor's threads.
func (ms *Service) MarkStreamDelivered(ctx context.Context, a access.Actor, id uuid.UUID) error {
	return pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		var threadID uuid.UUID
		var seq int64
		err := tx.QueryRow(ctx, streamDeliveredSQL, id, a.Role, a.PatientID, a.UserID).Scan(&threadID, &seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream delivered: %w", err)
		}
		return thread.Mark(ctx, tx, threadID, a.UserID, seq, 0, ms.now())
	})
}
