package messaging

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
	"github.com/tendhealth/tend/sealed"
)

// BroadcastQueue is the River queue of broadcast fan-out batches.
const BroadcastQueue = "broadcast"

// DefaultBroadcastBatch is how many threads one fan-out job serves.
const DefaultBroadcastBatch = 500

// broadcastAttempts bounds the attempts of a fan-out batch; the last one
// appends thread by thread, so one thread that refuses the message fails
// alone.
const broadcastAttempts = 5

// The states of a broadcast.
const (
	BroadcastRunning   = "running"
	BroadcastCompleted = "completed"
)

// NewBroadcast is the input of Broadcast.
type NewBroadcast struct {
	Body   string
	Urgent bool
}

// Validate checks a broadcast: a *rpm.ValidationError naming the field.
func (in NewBroadcast) Validate() error {
	return NewMessage{Body: in.Body}.Validate()
}

// Broadcast is a broadcast and its progress.
type Broadcast struct {
	ID         uuid.UUID  `json:"id"`
	CareTeamID uuid.UUID  `json:"care_team_id"`
	SenderID   *uuid.UUID `json:"sender_id"`
	Urgent     bool       `json:"urgent"`
	// Status is running until every thread is done or failed, then
	// completed.
	Status string `json:"status"`
	// Total is the number of patient threads of the team when the broadcast
	// was made; Done have their copy; Failed refused it on the last attempt.
	Total     int       `json:"total"`
	Done      int       `json:"done"`
	Failed    int       `json:"failed"`
	CreatedAt time.Time `json:"created_at"`
}

func (b *Broadcast) setStatus() {
	b.Status = BroadcastRunning
	if b.Done+b.Failed >= b.Total {
		b.Status = BroadcastCompleted
	}
}

// broadcastAAD binds a broadcast's sealed body to its team and id.
func broadcastAAD(team, id uuid.UUID) []byte {
	return sealed.AAD("broadcast.body", team.String(), id.String())
}

// broadcastArgs is one batch of a broadcast's fan-out. The kind string is
// stored in the database and must never change.
type broadcastArgs struct {
	BroadcastID uuid.UUID `json:"broadcast_id"`
	Batch       int       `json:"batch"`
}

func (broadcastArgs) Kind() string { return "message.broadcast" }

type broadcastWorker struct {
	river.WorkerDefaults[broadcastArgs]
	ms *Service
}

func (w *broadcastWorker) Work(ctx context.Context, job *river.Job[broadcastArgs]) error {
	_, err := w.ms.BroadcastBatch(ctx, job.Args.BroadcastID, job.Args.Batch, job.Attempt >= job.MaxAttempts)
	return err
}

// AddBroadcastWorkers registers the broadcast fan-out worker.
func (ms *Service) AddBroadcastWorkers(workers *river.Workers) {
	river.AddWorker(workers, &broadcastWorker{ms: ms})
}

// leadRole tells whether the actor may lead care team team's broadcasts
// (an admin, or a member with the lead role); access.ErrNotFound when the
// team is out of their scope (it does not exist, or they are no member and
// no admin).
func leadRole(ctx context.Context, tx pgx.Tx, a access.Actor, team uuid.UUID) (isLead bool, err error) {
	var exists bool
	var role *string
	if err := tx.QueryRow(ctx, teamRoleSQL, team, a.UserID, a.Org()).Scan(&exists, &role); err != nil {
		return false, fmt.Errorf("care team: %w", err)
	}
	switch {
	case !exists:
		return false, fmt.Errorf("care team: %w", access.ErrNotFound)
	case a.Role == access.RoleAdmin:
		return true, nil
	case role == nil || !a.Is(access.RoleClinician, access.RoleScheduler):
		return false, fmt.Errorf("care team: %w", access.ErrNotFound)
	}
	return *role == "lead", nil
}

// Broadcast sends one message into every patient thread of a care team:
// the team's leads and admins only (other members: access.ErrForbidden;
// anyone else: access.ErrNotFound). The broadcast, the list of its threads
// (in batches) and one River job per batch commit together; the jobs append
// the copies (BroadcastBatch). The body is sealed at rest.
func (ms *Service) Broadcast(ctx context.Context, a access.Actor, team uuid.UUID, in NewBroadcast) (Broadcast, error) {
	if err := in.Validate(); err != nil {
		return Broadcast{}, err
	}
	if ms.keys == nil {
		return Broadcast{}, thread.ErrNoKeys
	}
	now := ms.now().Truncate(time.Microsecond)
	b := Broadcast{ID: pg.NewID(), CareTeamID: team, Urgent: in.Urgent, CreatedAt: now}
	if a.UserID != uuid.Nil {
		sender := a.UserID
		b.SenderID = &sender
	}
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		lead, err := leadRole(ctx, tx, a, team)
		if err != nil {
			return err
		}
		if !lead {
			return fmt.Errorf("broadcast: only the team's leads and admins may broadcast: %w", access.ErrForbidden)
		}
		keyID, ct := ms.keys.Seal([]byte(in.Body), broadcastAAD(team, b.ID))
		var request *string
		if a.RequestID != "" {
			request = &a.RequestID
		}
		if _, err := tx.Exec(ctx, insertBroadcastSQL, b.ID, team, b.SenderID, string(a.Role), keyID, ct, in.Urgent, request, now); err != nil {
			return fmt.Errorf("insert broadcast: %w", err)
		}
		if err := tx.QueryRow(ctx, broadcastThreadsSQL, b.ID, team, ms.broadcastBatch).Scan(&b.Total); err != nil {
			return fmt.Errorf("broadcast threads: %w", err)
		}
		batches := (b.Total + ms.broadcastBatch - 1) / ms.broadcastBatch
		if batches > 0 {
			jobs := make([]river.InsertManyParams, batches)
			for i := range jobs {
				jobs[i] = river.InsertManyParams{Args: broadcastArgs{BroadcastID: b.ID, Batch: i},
					InsertOpts: &river.InsertOpts{Queue: BroadcastQueue, MaxAttempts: broadcastAttempts}}
			}
			if _, err := ms.jobs().InsertManyFastTx(ctx, tx, jobs); err != nil {
				return fmt.Errorf("schedule broadcast: %w", err)
			}
		}
		return ms.audit.Write(ctx, tx, a, audit.Entry{Action: "broadcast.create", ObjectType: "broadcast", ObjectID: b.ID.String(),
			Detail: map[string]any{"care_team_id": team, "total": b.Total, "urgent": in.Urgent}})
	})
	if err != nil {
		return Broadcast{}, err
	}
	b.setStatus()
	return b, nil
}

// GetBroadcast returns a broadcast's progress to the team's leads and
// admins (other members: access.ErrForbidden; anyone else:
// access.ErrNotFound).
func (ms *Service) GetBroadcast(ctx context.Context, a access.Actor, id uuid.UUID) (Broadcast, error) {
	var b Broadcast
	err := pg.ReadTx(ctx, ms.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, broadcastSQL, id).Scan(&b.ID, &b.CareTeamID, &b.SenderID, &b.Urgent, &b.Total, &b.CreatedAt,
			&b.Done, &b.Failed)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("broadcast: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("broadcast: %w", err)
		}
		lead, err := leadRole(ctx, tx, a, b.CareTeamID)
		if err != nil {
			return err
		}
		if !lead {
			return fmt.Errorf("broadcast: only the team's leads and admins may follow a broadcast: %w", access.ErrForbidden)
		}
		return nil
	})
	if err != nil {
		return Broadcast{}, err
	}
	b.setStatus()
	return b, nil
}

// BatchResult is what one fan-out batch did.
type BatchResult struct {
	Sent, Failed int
}

// pendingThread is a thread of a batch still waiting for its copy.
type pendingThread struct {
	thread, patient uuid.UUID
}

// BroadcastBatch appends a broadcast's copies to the threads of one batch
// that do not have theirs yet: each copy with its audit entry, its
// message.created event and its push job (after the usual hold), and the
// threads marked sent, in one transaction. Re-running it (a crash, a
// rescued job) appends only what is still pending: each thread holds
// exactly one copy. With last set (the job's final attempt) a batch that
// fails is appended thread by thread, and a thread that still refuses is
// marked failed.
func (ms *Service) BroadcastBatch(ctx context.Context, id uuid.UUID, batch int, last bool) (BatchResult, error) {
	res, err := ms.appendBatch(ctx, id, batch, uuid.Nil)
	if err == nil || !last || ctx.Err() != nil {
		return res, err
	}
	ms.log.WarnContext(ctx, "broadcast batch failed: appending thread by thread", "broadcast_id", id, "batch", batch,
		"error", err)
	var threads []uuid.UUID
	if err := pg.ReadTx(ctx, ms.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, pendingBatchSQL, id, batch)
		if err != nil {
			return err
		}
		threads, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		return err
	}); err != nil {
		return res, fmt.Errorf("broadcast batch: %w", err)
	}
	res = BatchResult{}
	for _, th := range threads {
		one, err := ms.appendBatch(ctx, id, batch, th)
		if err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			ms.log.ErrorContext(ctx, "broadcast copy refused", "broadcast_id", id, "thread_id", th, "error", err)
			if _, err := ms.pool.Exec(ctx, failBroadcastThreadSQL, id, th, "append_failed"); err != nil {
				return res, fmt.Errorf("broadcast batch: %w", err)
			}
			res.Failed++
			if ms.metrics != nil {
				ms.metrics.BroadcastMessages.WithLabelValues("failed").Inc()
			}
			continue
		}
		res.Sent += one.Sent
	}
	return res, nil
}

// appendBatch appends the copies of one batch (or, when only is set, of
// that one thread of it) in one transaction.
func (ms *Service) appendBatch(ctx context.Context, id uuid.UUID, batch int, only uuid.UUID) (BatchResult, error) {
	if ms.keys == nil {
		return BatchResult{}, thread.ErrNoKeys
	}
	var res BatchResult
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		bc, ok, err := ms.openBroadcast(ctx, tx, id)
		if err != nil || !ok {
			return err // when it is gone, nothing to send
		}
		pending, err := lockPending(ctx, tx, id, batch, only)
		if err != nil || len(pending) == 0 {
			return err
		}
		now := ms.now().Truncate(time.Microsecond)
		ids, seqs, err := ms.insertCopies(ctx, tx, bc, pending, now)
		if err != nil {
			return err
		}
		if err := ms.recordCopies(ctx, tx, bc, pending, ids, seqs, now); err != nil {
			return err
		}
		res.Sent = len(pending)
		return nil
	})
	if err != nil {
		return BatchResult{}, err
	}
	if ms.metrics != nil && res.Sent > 0 {
		ms.metrics.BroadcastMessages.WithLabelValues("sent").Add(float64(res.Sent))
	}
	return res, nil
}

// openedBroadcast is a broadcast as its copies are made: who sent it, to
// which team, and its body opened.
type openedBroadcast struct {
	id, team   uuid.UUID
	sender     *uuid.UUID
	senderRole string
	text       []byte
	urgent     bool
	request    *string
}

// actor is who the copies' audit entries name: the sender, in the request
// that made the broadcast.
func (bc openedBroadcast) actor() access.Actor {
	a := access.Actor{Role: access.Role(bc.senderRole), RequestID: "broadcast:" + bc.id.String()}
	if bc.sender != nil {
		a.UserID = *bc.sender
	}
	if bc.request != nil {
		a.RequestID = *bc.request
	}
	return a
}

// openBroadcast reads a broadcast and opens its body; false when the
// broadcast is gone.
func (ms *Service) openBroadcast(ctx context.Context, tx pgx.Tx, id uuid.UUID) (openedBroadcast, bool, error) {
	bc := openedBroadcast{id: id}
	var keyID string
	var body []byte
	err := tx.QueryRow(ctx, broadcastBodySQL, id).Scan(&bc.team, &bc.sender, &bc.senderRole, &keyID, &body, &bc.urgent, &bc.request)
	if errors.Is(err, pgx.ErrNoRows) {
		return bc, false, nil
	}
	if err != nil {
		return bc, false, fmt.Errorf("broadcast: %w", err)
	}
	if bc.text, err = thread.Open(ms.keys, keyID, body, broadcastAAD(bc.team, id)); err != nil {
		return bc, false, fmt.Errorf("broadcast %s: %w", id, err)
	}
	return bc, true, nil
}

// lockPending locks the batch's pending rows and their threads, in thread
// order: a concurrent run of the same batch waits, then finds nothing
// pending.
func lockPending(ctx context.Context, tx pgx.Tx, id uuid.UUID, batch int, only uuid.UUID) ([]pendingThread, error) {
	rows, err := tx.Query(ctx, lockBatchSQL, id, batch, pg.NilIfZero(only))
	if err != nil {
		return nil, fmt.Errorf("broadcast batch: %w", err)
	}
	pending, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingThread, error) {
		var p pendingThread
		err := r.Scan(&p.thread, &p.patient)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("broadcast batch: %w", err)
	}
	return pending, nil
}

// insertCopies appends a sealed copy of the body to each pending thread and
// returns the copies' ids (in pending's order) and their sequence numbers.
func (ms *Service) insertCopies(ctx context.Context, tx pgx.Tx, bc openedBroadcast, pending []pendingThread,
	now time.Time) ([]uuid.UUID, map[uuid.UUID]int64, error) {
	n := len(pending)
	ids, threads, cts := make([]uuid.UUID, n), make([]uuid.UUID, n), make([][]byte, n)
	var sealedKey string
	for i, p := range pending {
		ids[i], threads[i] = pg.NewID(), p.thread
		sealedKey, cts[i] = ms.keys.Seal(bc.text, thread.BodyAAD(p.thread, ids[i]))
	}
	rows, err := tx.Query(ctx, insertBroadcastMessagesSQL, ids, threads, cts, now, bc.sender, bc.senderRole, sealedKey, bc.urgent, bc.id)
	if err != nil {
		return nil, nil, fmt.Errorf("broadcast messages: %w", err)
	}
	seqs := map[uuid.UUID]int64{}
	var mid uuid.UUID
	var seq int64
	if _, err := pgx.ForEachRow(rows, []any{&mid, &seq}, func() error { seqs[mid] = seq; return nil }); err != nil {
		return nil, nil, fmt.Errorf("broadcast messages: %w", err)
	}
	if len(seqs) != n {
		return nil, nil, fmt.Errorf("broadcast messages: %d of %d appended", len(seqs), n)
	}
	return ids, seqs, nil
}

// recordCopies marks the threads sent and the sender's receipts, queues
// each copy's message.created event and audit entry in one batch, then
// inserts each copy's push job (after the usual hold).
func (ms *Service) recordCopies(ctx context.Context, tx pgx.Tx, bc openedBroadcast, pending []pendingThread, ids []uuid.UUID,
	seqs map[uuid.UUID]int64, now time.Time) error {
	n := len(pending)
	threads := make([]uuid.UUID, n)
	for i, p := range pending {
		threads[i] = p.thread
	}
	actor := bc.actor()
	b := &pgx.Batch{}
	b.Queue(markBroadcastSentSQL, bc.id, threads, ids)
	if bc.sender != nil {
		seqList := make([]int64, n)
		for i := range ids {
			seqList[i] = seqs[ids[i]]
		}
		b.Queue(markSenderSQL, threads, *bc.sender, seqList, now)
	}
	jobs := make([]river.InsertManyParams, n)
	for i, p := range pending {
		events.Queue(b, now, events.Event{Type: events.MessageCreated, ThreadID: p.thread, CareTeamID: bc.team,
			PatientID: p.patient, Payload: map[string]any{"thread_id": p.thread, "message_id": ids[i], "seq": seqs[ids[i]],
				"sender_id": pg.Deref(bc.sender), "kind": thread.Text, "urgent": bc.urgent, "broadcast_id": bc.id}})
		ms.audit.Queue(b, actor, audit.Entry{Action: "message.create", PatientID: p.patient, ObjectType: "thread",
			ObjectID: p.thread.String(), Detail: map[string]any{"message_ids": []uuid.UUID{ids[i]}, "broadcast_id": bc.id}})
		jobs[i] = river.InsertManyParams{Args: pushArgs{MessageID: ids[i]},
			InsertOpts: &river.InsertOpts{Queue: pushQueue, ScheduledAt: now.Add(ms.hold), MaxAttempts: 10}}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("broadcast batch: %w", err)
	}
	if _, err := ms.jobs().InsertManyFastTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("schedule broadcast pushes: %w", err)
	}
	return nil
}

// rotateBroadcasts re-seals broadcast bodies sealed under keys other than
// current.
func (ms *Service) rotateBroadcasts(ctx context.Context, current string) (resealed, unreadable int, err error) {
	after := uuid.Nil
	for {
		n := 0
		err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, staleBroadcastsSQL, current, after, 500)
			if err != nil {
				return fmt.Errorf("rotate broadcasts: %w", err)
			}
			type row struct {
				id, team uuid.UUID
				keyID    string
				body     []byte
			}
			all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				err := r.Scan(&x.id, &x.team, &x.keyID, &x.body)
				return x, err
			})
			if err != nil {
				return fmt.Errorf("rotate broadcasts: %w", err)
			}
			n = len(all)
			if n == 0 {
				return nil
			}
			after = all[n-1].id
			var ids []uuid.UUID
			var cts [][]byte
			for _, x := range all {
				pt, err := ms.keys.Open(x.keyID, x.body, broadcastAAD(x.team, x.id))
				if err != nil {
					unreadable++
					ms.log.ErrorContext(ctx, "broadcast body does not decrypt: left under its old key", "broadcast_id", x.id,
						"key_id", x.keyID)
					continue
				}
				_, ct := ms.keys.Seal(pt, broadcastAAD(x.team, x.id))
				ids, cts = append(ids, x.id), append(cts, ct)
			}
			if len(ids) == 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, resealBroadcastsSQL, ids, current, cts); err != nil {
				return fmt.Errorf("rotate broadcasts: %w", err)
			}
			resealed += len(ids)
			return nil
		})
		if err != nil {
			return resealed, unreadable, err
		}
		if n < 500 {
			return resealed, unreadable, nil
		}
	}
}
