// Package messaging is secure asynchronous messaging: threads between a
// patient and their care team, staff-only threads, care teams' staff
// channels and direct conversations between staff; messages sealed at rest;
// per-recipient receipts; pushes held for an in-app read; typing indicators;
// attachments (sniffed, sealed, hash-checked on download); broadcasts from a
// care team's leads to all its patients, fanned out in River batches; and
// re-sealing under a new key (key rotation).
//
// Threads are created by care (with the patient or team, in the same
// transaction) through engine/internal/thread, which also appends the
// structured messages of symptom reports for ingest.
package messaging

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/check"
	"github.com/tendhealth/tend/engine/internal/metrics"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/presence"
	"github.com/tendhealth/tend/sealed"
)

// Defaults of Config.
const (
	// DefaultPushHold is how long a new message waits for an in-app read
	// before its push is sent.
	DefaultPushHold = 30 * time.Second
	// DefaultTypingInterval is the least time between two typing events of
	// one user in one thread.
	DefaultTypingInterval = 2 * time.Second
)

// Config wires a Service.
type Config struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	Now    func() time.Time
	Audit  audit.Writer
	// Jobs is the River client that schedules message pushes.
	Jobs func() *river.Client[pgx.Tx]
	// Delivery sends the pushes once their hold ends.
	Delivery *delivery.Service
	// Keys seal message bodies. Nil: messages cannot be posted or read
	// (thread.ErrNoKeys).
	Keys *sealed.Keyring
	// PushHold is how long a message's push waits for the recipient to read
	// it in the app. Defaults to DefaultPushHold (30 s); negative sends at
	// once.
	PushHold time.Duration
	// TypingInterval rate-limits typing events per user and thread.
	// Defaults to DefaultTypingInterval (2 s).
	TypingInterval time.Duration
	// CheckAttachments checks that attachment ids may be attached to a
	// message of thread in tx, returning a field error naming
	// attachment_ids[i] for one that may not. Defaults to the attachments
	// stored in that thread (each id once).
	CheckAttachments func(ctx context.Context, tx pgx.Tx, thread uuid.UUID, ids []uuid.UUID) error
	// Transactions bounds the post transactions in flight at once;
	// concurrent posts beyond it share transactions (group commit).
	// Defaults to 2. Envelope posts run one group at a time
	// (envelopeTransactions).
	Transactions int
	// Attachments stores attachments' sealed bytes. Defaults to
	// PostgresStore; with it, CheckAttachments defaults to accepting the
	// thread's own attachments.
	Attachments AttachmentStore
	// AttachmentMaxBytes is the largest attachment accepted. Defaults to
	// DefaultAttachmentMaxBytes (10 MiB).
	AttachmentMaxBytes int64
	// MediaMaxBytes is the largest audio or video attachment accepted.
	// Defaults to DefaultMediaMaxBytes (50 MiB).
	MediaMaxBytes int64
	// BroadcastBatch is how many threads one broadcast fan-out job serves.
	// Defaults to DefaultBroadcastBatch (500).
	BroadcastBatch int
	// Metrics counts broadcast copies and attachments. Nil counts nothing.
	Metrics *metrics.Set
	// Presence shows a thread's participants' presence in GetThread. Nil
	// shows none.
	Presence *presence.Tracker
	// RecordKey is the organisation's record public key (X-Wing, 1,216
	// bytes) every end-to-end encrypted message is also wrapped to; its
	// private half is kept offline (tend records keygen). Nil: no thread can
	// be encrypted.
	RecordKey []byte
}

// Service serves threads and messages.
type Service struct {
	pool        *pgxpool.Pool
	log         *slog.Logger
	now         func() time.Time
	audit       audit.Writer
	jobs        func() *river.Client[pgx.Tx]
	delivery    *delivery.Service
	keys        *sealed.Keyring
	hold        time.Duration
	typingEvery time.Duration
	attachments func(ctx context.Context, tx pgx.Tx, thread uuid.UUID, ids []uuid.UUID) error

	store          AttachmentStore
	maxAttachment  int64
	maxMedia       int64
	broadcastBatch int
	metrics        *metrics.Set
	presence       *presence.Tracker
	recordKey      []byte

	typingMu sync.Mutex
	typing   map[typingKey]time.Time

	poster    *pg.Batcher[postJob]     // group commit of posts (groupcommit.go)
	envelopes *pg.Batcher[envelopeJob] // group commit of envelope posts (envelopegroup.go)
}

type typingKey struct{ user, thread uuid.UUID }

// New builds a Service.
func New(c Config) *Service {
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	c.PushHold = cmp.Or(c.PushHold, DefaultPushHold)
	c.TypingInterval = cmp.Or(c.TypingInterval, DefaultTypingInterval)
	if c.PushHold < 0 {
		c.PushHold = 0
	}
	custom := c.CheckAttachments != nil
	if c.CheckAttachments == nil {
		c.CheckAttachments = noAttachments
	}
	c.Transactions = cmp.Or(c.Transactions, 2)
	c.AttachmentMaxBytes = cmp.Or(c.AttachmentMaxBytes, DefaultAttachmentMaxBytes)
	c.MediaMaxBytes = cmp.Or(c.MediaMaxBytes, DefaultMediaMaxBytes)
	c.BroadcastBatch = cmp.Or(c.BroadcastBatch, DefaultBroadcastBatch)
	ms := &Service{pool: c.Pool, log: c.Logger.With("component", "messaging"), now: c.Now, audit: c.Audit, jobs: c.Jobs,
		delivery: c.Delivery, keys: c.Keys, hold: c.PushHold, typingEvery: c.TypingInterval, attachments: c.CheckAttachments,
		typing: map[typingKey]time.Time{}, store: c.Attachments, maxAttachment: c.AttachmentMaxBytes,
		maxMedia: c.MediaMaxBytes, broadcastBatch: c.BroadcastBatch, metrics: c.Metrics, presence: c.Presence,
		recordKey: c.RecordKey}
	if ms.store == nil {
		ms.store = PostgresStore{}
	}
	if !custom {
		ms.attachments = ms.checkAttachments
	}
	ms.poster = ms.newPoster(c.Transactions)
	ms.envelopes = ms.newEnvelopePoster(envelopeTransactions)
	return ms
}

// noAttachments is the default CheckAttachments: no attachment exists.
func noAttachments(_ context.Context, _ pgx.Tx, _ uuid.UUID, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	return check.FieldError(fmt.Sprintf("attachment_ids[%d]", 0), "no such attachment in this thread")
}

// Keys returns the keyring (nil when none is configured).
func (ms *Service) Keys() *sealed.Keyring { return ms.keys }
