// Package retention deletes what each organisation keeps no longer: its
// readings, messages, attachments and delivery records (notifications and
// their delivery attempts) older than the organisation's period for each
// (organisations.retain_*_days; NULL keeps them for ever).
//
// A run walks every organisation and kind. Rows go in batches of a bounded
// size, each its own short transaction with one audit entry (counts only):
// a crash or a cancel between batches leaves consistent data, and the next
// run carries on from what is left. A periodic River job runs it
// (AddWorkers); `tend retention run` runs it by hand.
package retention

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/metrics"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// DefaultBatch is how many rows one batch deletes by default.
const DefaultBatch = 1000

// ownerPage is how many owners (patients, threads, users) one batch
// statement looks through.
const ownerPage = 500

// Kind is what a retention period applies to.
type Kind string

// The kinds of data with a retention period, in the order a run takes them.
const (
	Readings    Kind = "readings"
	Messages    Kind = "messages"
	Attachments Kind = "attachments"
	Deliveries  Kind = "deliveries"
)

// Kinds lists every Kind in the order a run takes them.
var Kinds = []Kind{Readings, Messages, Attachments, Deliveries}

// Config configures a Service.
type Config struct {
	Pool    *pgxpool.Pool
	Logger  *slog.Logger
	Now     func() time.Time
	Audit   audit.Writer
	Metrics *metrics.Set
	// Batch is how many rows one transaction deletes. Defaults to
	// DefaultBatch.
	Batch int
	// DeleteBlobs removes attachments' stored bytes in tx before their rows
	// go (the messaging use case owns the attachment store). Required to
	// delete attachments.
	DeleteBlobs func(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error
}

// Service runs retention.
type Service struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	now     func() time.Time
	audit   audit.Writer
	metrics *metrics.Set
	batch   int
	blobs   func(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error
}

// New builds a Service from cfg.
func New(cfg Config) *Service {
	return &Service{pool: cfg.Pool, log: cfg.Logger.With("component", "retention"), now: cfg.Now, audit: cfg.Audit,
		metrics: cfg.Metrics, batch: cmp.Or(cfg.Batch, DefaultBatch), blobs: cfg.DeleteBlobs}
}

// Count is what a run deleted (or, in a dry run, would delete) of one kind
// in one organisation: the rows stored before Before.
type Count struct {
	OrgID  uuid.UUID `json:"org_id"`
	Kind   Kind      `json:"kind"`
	Before time.Time `json:"before"`
	Rows   int64     `json:"rows"`
}

// Options changes a run.
type Options struct {
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
	// Progress, when set, is called after each committed batch with what it
	// deleted.
	Progress func(Count)
}

// Run applies every organisation's retention periods: per organisation and
// kind with a period, the rows older than it are deleted, a batch at a time.
// It returns a Count per organisation and kind with a period (the rows
// deleted so far when it fails or ctx ends; what is deleted stays deleted).
func (s *Service) Run(ctx context.Context, opts Options) ([]Count, error) {
	orgs, err := s.periods(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Count
	for _, o := range orgs {
		for _, kind := range Kinds {
			days := o.days[kind]
			if days == nil {
				continue
			}
			c := Count{OrgID: o.id, Kind: kind, Before: now.Add(-time.Duration(*days) * 24 * time.Hour).UTC()}
			if opts.DryRun {
				c.Rows, err = s.count(ctx, c)
			} else {
				err = s.apply(ctx, &c, opts.Progress)
			}
			out = append(out, c)
			if err != nil {
				return out, fmt.Errorf("retention of %s: %w", kind, err)
			}
		}
	}
	return out, nil
}

// org is an organisation's retention periods in days (nil: for ever).
type org struct {
	id   uuid.UUID
	days map[Kind]*int
}

func (s *Service) periods(ctx context.Context) ([]org, error) {
	rows, err := s.pool.Query(ctx, orgPeriodsSQL)
	if err != nil {
		return nil, fmt.Errorf("retention periods: %w", err)
	}
	orgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (org, error) {
		var o org
		var readings, messages, attachments, deliveries *int
		err := r.Scan(&o.id, &readings, &messages, &attachments, &deliveries)
		o.days = map[Kind]*int{Readings: readings, Messages: messages, Attachments: attachments, Deliveries: deliveries}
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("retention periods: %w", err)
	}
	return orgs, nil
}

// owners is the statement that pages through the owners of kind's rows in
// an organisation.
func owners(kind Kind) string {
	switch kind {
	case Readings:
		return orgPatientsSQL
	case Messages, Attachments:
		return orgThreadsSQL
	}
	return orgUsersSQL
}

// apply deletes c's rows a batch at a time: through the organisation's
// owners a page at a time, and for each page until a batch deletes nothing
// (a batch skips what is not finished yet: a catch-up goes in the batch
// after the notifications it summarised).
func (s *Service) apply(ctx context.Context, c *Count, progress func(Count)) error {
	after := uuid.Nil
	for {
		rows, err := s.pool.Query(ctx, owners(c.Kind), c.OrgID, after, ownerPage)
		if err != nil {
			return fmt.Errorf("owners: %w", err)
		}
		page, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("owners: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		for {
			n, err := s.batchOf(ctx, *c, page)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			c.Rows += n
			if progress != nil {
				progress(Count{OrgID: c.OrgID, Kind: c.Kind, Before: c.Before, Rows: n})
			}
		}
		after = page[len(page)-1]
	}
}

// batchOf deletes one batch of c's kind among owners in its own
// transaction, with its audit entry, and returns how many rows went.
func (s *Service) batchOf(ctx context.Context, c Count, owners []uuid.UUID) (int64, error) {
	var n int64
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		switch c.Kind {
		case Readings:
			err = tx.QueryRow(ctx, deleteReadingsSQL, owners, c.Before, s.batch).Scan(&n)
		case Messages:
			err = tx.QueryRow(ctx, deleteMessagesSQL, owners, c.Before, s.batch).Scan(&n)
		case Attachments:
			n, err = s.deleteAttachments(ctx, tx, owners, c.Before)
		case Deliveries:
			err = tx.QueryRow(ctx, deleteDeliveriesSQL, owners, c.Before, s.batch).Scan(&n)
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", c.Kind, err)
		}
		if n == 0 {
			return nil
		}
		// Tend itself acts, in the organisation whose rows go.
		a := access.System("retention")
		a.OrgID = c.OrgID
		return s.audit.Write(ctx, tx, a, audit.Entry{Action: "retention.delete", ObjectType: "organisation",
			ObjectID: c.OrgID.String(), Detail: map[string]any{"kind": string(c.Kind), "rows": n,
				"before": c.Before.Format(time.RFC3339)}})
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.metrics.RetentionDeleted.WithLabelValues(string(c.Kind)).Add(float64(n))
		s.metrics.RetentionBatches.Inc()
	}
	return n, nil
}

// deleteAttachments deletes one batch of attachments of threads uploaded
// before before: their bytes through the store, then their rows. A message
// that named one keeps its id; reading it describes the attachment no more
// and opening it answers not found.
func (s *Service) deleteAttachments(ctx context.Context, tx pgx.Tx, threads []uuid.UUID, before time.Time) (int64, error) {
	rows, err := tx.Query(ctx, lockAttachmentsSQL, threads, before, s.batch)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	if s.blobs == nil {
		return 0, fmt.Errorf("no attachment store to delete from")
	}
	if err := s.blobs(ctx, tx, ids); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, deleteAttachmentSQL, ids)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// count counts what a run would delete of c's kind now.
func (s *Service) count(ctx context.Context, c Count) (int64, error) {
	sql := map[Kind]string{Readings: countReadingsSQL, Messages: countMessagesSQL, Attachments: countAttachmentsSQL,
		Deliveries: countDeliveriesSQL}[c.Kind]
	var n int64
	if err := s.pool.QueryRow(ctx, sql, c.OrgID, c.Before).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", c.Kind, err)
	}
	return n, nil
}
