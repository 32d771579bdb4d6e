package messaging

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/devicekeys"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// Group commit for envelope posts.
//
// An envelope post's own work is a few small statements; its transaction's
// BEGIN, COMMIT and WAL flush, the round trips between them, and the
// thread's row lock held until that commit are what limit posts to one
// thread. So concurrent envelope posts share transactions through a
// batcher, as plain posts do (groupcommit.go), and a group's posts share
// their round trips, whatever their number:
//
//  1. BEGIN; lock the group's threads (in id order, so that concurrent
//     groups cannot deadlock); then, seeing what committed before the locks
//     were granted, read each post's thread, sender device state and the
//     thread's patient key, and the threads' current devices.
//  2. The checks run in Go, post by post in arrival order: a post they
//     refuse (not found, 409, a *RecipientsError) fails alone and writes
//     nothing. Then the numbering, the messages, the senders' receipts, the
//     events and the audit entries (with each ciphertext's SHA-256), and
//     the stored messages that retries ask for, in one round trip.
//  3. The push jobs (a COPY); COMMIT.
//
// A patient key not made yet costs one more round trip, only then. When the
// shared transaction fails anyway, each post is retried in a transaction of
// its own, so one bad post never fails the others.
//
// One group runs at a time (envelopeTransactions). Encrypted posts gather on
// few busy threads (a team channel), and two groups on one thread run one
// after the other anyway, the second waiting for the first's locks: a second
// group in flight only splits the posts into smaller groups. With one, the
// posts that arrive while a group runs all join the next.

// envelopeTransactions bounds the envelope groups in flight at once. With
// ten senders posting to one thread of ten devices (BenchmarkPostEnvelope),
// two in flight formed groups of 3.3 posts on average and one of 5.1, and
// the benchmark went from 385 to 690 messages/s.
const envelopeTransactions = 1

// envelopeJob is one PostEnvelope call and, after its group, its outcome.
type envelopeJob struct {
	actor  access.Actor
	thread uuid.UUID
	in     NewEnvelope
	body   []byte    // the envelope as stored
	device uuid.UUID // the sender device
	sum    [32]byte  // the ciphertext's SHA-256

	out Posted
	err error // this post's own failure
}

func (ms *Service) newEnvelopePoster(maxRunning int) *pg.Batcher[envelopeJob] {
	return groupBatcher(maxRunning, func(ctx context.Context, jobs []*envelopeJob) error {
		err := ms.postEnvelopes(ctx, jobs)
		if err == nil {
			return nil
		}
		if len(jobs) == 1 && !pg.IsUniqueViolation(err) {
			jobs[0].err = err
			return nil
		}
		for _, j := range jobs {
			j.out, j.err = ms.postEnvelopeAlone(ctx, j)
		}
		return nil
	})
}

// postEnvelopeAlone posts j in a transaction of its own; the same envelope
// stored meanwhile by a concurrent post (a unique violation) is answered
// with the stored message.
func (ms *Service) postEnvelopeAlone(ctx context.Context, j *envelopeJob) (Posted, error) {
	err := ms.postEnvelopes(ctx, []*envelopeJob{j})
	if pg.IsUniqueViolation(err) {
		err = ms.postEnvelopes(ctx, []*envelopeJob{j})
	}
	if err != nil {
		return Posted{}, err
	}
	return j.out, j.err
}

// envelopeGroup is a group of envelope posts on its way through
// postEnvelopes.
type envelopeGroup struct {
	jobs    []*envelopeJob
	sc      []envelopeScope // per job, in order
	devices map[uuid.UUID][]devicekeys.Device
	keys    map[uuid.UUID]ThreadKeys // per thread, as checked
	now     time.Time

	fresh  []*envelopeJob // new messages, in arrival order
	seqs   []int64        // and their sequence numbers
	dups   []*envelopeJob // the same envelope already stored: the stored message
	twinOf map[*envelopeJob]*envelopeJob
}

// envelopeScope is what round trip 1 found of one post.
type envelopeScope struct {
	ok      bool
	t       Thread // ID, CareTeamID, PatientID, Encrypted, lastSeq, org, recordKey
	active  bool   // the device is the actor's and unrevoked
	last    int64  // the device's last sender sequence in the thread
	sameID  *uuid.UUID
	sameSum []byte
	wrapped *thread.Wrapped
	key     *thread.PatientKey
}

// postEnvelopes posts a group of envelopes in one transaction; each post's
// own refusal is in its err.
func (ms *Service) postEnvelopes(ctx context.Context, jobs []*envelopeJob) error {
	g := &envelopeGroup{jobs: jobs}
	return pg.InTxBatch(ctx, ms.pool, g.scopeBatch(), func(tx pgx.Tx) error {
		g.now = ms.now().Truncate(time.Microsecond)
		g.sortEnvelopes(ms)
		if err := ms.envelopeKeys(ctx, tx, g); err != nil {
			return err
		}
		b := &pgx.Batch{}
		byID := g.queueDuplicates(b)
		ms.queueEnvelopes(b, g)
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("post envelopes: %w", err)
			}
		}
		o := thread.NewOpener(ms.keys, tx)
		for _, j := range g.dups {
			j.out = Posted{Message: ms.open(ctx, o, *byID[*g.scopeOf(j).sameID])}
		}
		if err := ms.describeEnvelopeFiles(ctx, tx, g); err != nil {
			return err
		}
		for j, first := range g.twinOf {
			j.out, j.err = first.out, first.err
			j.out.Created = false
		}
		ids := make([]uuid.UUID, len(g.fresh))
		for i, j := range g.fresh {
			ids[i] = j.out.ID
		}
		return ms.schedulePushes(ctx, tx, g.now, ids)
	})
}

func (g *envelopeGroup) scopeOf(j *envelopeJob) *envelopeScope {
	for i, k := range g.jobs {
		if k == j {
			return &g.sc[i]
		}
	}
	panic("messaging: a job of another group")
}

// scopeBatch is round trip 1 (after BEGIN): the threads' locks, each
// post's scope and sender state, and the threads' current devices.
func (g *envelopeGroup) scopeBatch() *pgx.Batch {
	n := len(g.jobs)
	var threads []uuid.UUID
	ths, roles, patients, users, devs := make([]uuid.UUID, n), make([]string, n), make([]uuid.UUID, n), make([]uuid.UUID, n),
		make([]uuid.UUID, n)
	sseqs := make([]int64, n)
	for i, j := range g.jobs {
		j.out, j.err = Posted{}, nil
		ths[i], roles[i], patients[i], users[i] = j.thread, string(j.actor.Role), j.actor.PatientID, j.actor.UserID
		devs[i], sseqs[i] = j.device, int64(j.in.Envelope.SenderSeq)
		threads = append(threads, j.thread)
	}
	g.sc, g.devices = make([]envelopeScope, n), map[uuid.UUID][]devicekeys.Device{}
	b := &pgx.Batch{}
	b.Queue(lockThreadsSQL, threads)
	b.Queue(envelopeScopeSQL, ths, roles, patients, users, devs, sseqs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var i int
			var s envelopeScope
			var keyID *string
			var wrapped []byte
			if err := rows.Scan(&i, &s.t.CareTeamID, &s.t.PatientID, &s.t.Encrypted, &s.t.lastSeq, &s.t.org, &s.t.recordKey,
				&s.active, &s.last, &s.sameID, &s.sameSum, &keyID, &wrapped); err != nil {
				return err
			}
			if keyID != nil && s.t.PatientID != nil {
				s.wrapped = &thread.Wrapped{Patient: *s.t.PatientID, KeyID: *keyID, Data: wrapped}
			}
			s.ok, s.t.ID = true, ths[i-1]
			g.sc[i-1] = s
		}
		return rows.Err()
	})
	b.Queue(groupDevicesSQL, threads).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var th uuid.UUID
			d, err := devicekeys.Scan(rows, &th)
			if err != nil {
				return err
			}
			g.devices[th] = append(g.devices[th], d)
		}
		return rows.Err()
	})
	return b
}

// sortEnvelopes runs each post's checks in arrival order, failing those
// they refuse, and sorts the others into new messages, duplicates of
// stored ones and twins of another post of the group. A device's posts in
// the group are checked against its sequences accepted before them.
func (g *envelopeGroup) sortEnvelopes(ms *Service) {
	type sent struct {
		thread, device uuid.UUID
		seq            uint64
	}
	type from struct{ thread, device uuid.UUID }
	firstOf, last := map[sent]*envelopeJob{}, map[from]int64{}
	g.keys, g.twinOf = map[uuid.UUID]ThreadKeys{}, map[*envelopeJob]*envelopeJob{}
	for i, j := range g.jobs {
		s, seq := &g.sc[i], j.in.Envelope.SenderSeq
		if first, ok := firstOf[sent{j.thread, j.device, seq}]; ok && first.sum == j.sum {
			g.twinOf[j] = first
			continue
		}
		prev, ok := last[from{j.thread, j.device}]
		if !ok {
			prev = s.last
		}
		if j.err = g.check(ms, j, s, prev); j.err != nil || g.isDup(j, s) {
			continue
		}
		firstOf[sent{j.thread, j.device, seq}], last[from{j.thread, j.device}] = j, int64(seq)
		g.fresh = append(g.fresh, j)
	}
}

// isDup reports whether j is an envelope stored before (the same sender
// sequence and ciphertext), and adds it to the duplicates if so.
func (g *envelopeGroup) isDup(j *envelopeJob, s *envelopeScope) bool {
	if s.sameID == nil || !bytes.Equal(s.sameSum, j.sum[:]) {
		return false
	}
	g.dups = append(g.dups, j)
	return true
}

// check is one post's checks, before any write: its thread, its sender
// device and sequence (past prev, the device's last), and its recipients.
func (g *envelopeGroup) check(ms *Service, j *envelopeJob, s *envelopeScope, prev int64) error {
	switch {
	case !s.ok:
		return fmt.Errorf("thread: %w", access.ErrNotFound)
	case !s.t.Encrypted:
		return fmt.Errorf("the thread is not end-to-end encrypted: post a plain message: %w", access.ErrConflict)
	case !s.active:
		return fmt.Errorf("envelope.sender_device_id is not a current device of yours: its keys are revoked or were never registered; register new keys: %w", access.ErrConflict)
	case s.sameID != nil && bytes.Equal(s.sameSum, j.sum[:]):
		return nil // posted before: answered with the stored message
	case uint64(prev) >= j.in.Envelope.SenderSeq:
		return fmt.Errorf("envelope.sender_seq must be greater than %d, this device's last in the thread (a replay is refused): %w", prev, access.ErrConflict)
	}
	k, ok := g.keys[j.thread]
	if !ok {
		k = ms.keysOf(s.t, g.devices[j.thread])
		g.keys[j.thread] = k
	}
	return ms.checkRecipients(k, j.in.Envelope)
}

// envelopeKeys finds the data keys of the patients of the group's new
// messages (envelopes are sealed at rest like every body) and numbers the
// messages; a new message to an erased patient's thread fails alone
// (access.ErrConflict).
func (ms *Service) envelopeKeys(ctx context.Context, tx pgx.Tx, g *envelopeGroup) error {
	needs := make([]keyNeed, len(g.fresh))
	for i, j := range g.fresh {
		s := g.scopeOf(j)
		needs[i] = keyNeed{patient: s.t.PatientID, wrapped: s.wrapped}
	}
	keys, err := ms.patientKeys(ctx, tx, g.now, needs)
	if err != nil {
		return fmt.Errorf("post envelopes: %w", err)
	}
	kept := g.fresh[:0]
	lastSeq := map[uuid.UUID]int64{}
	for _, j := range g.fresh {
		s := g.scopeOf(j)
		if s.t.PatientID != nil {
			if s.key = keys[*s.t.PatientID]; s.key == nil {
				j.err = fmt.Errorf("%w: %w", thread.ErrErased, access.ErrConflict)
				continue
			}
		}
		if _, ok := lastSeq[j.thread]; !ok {
			lastSeq[j.thread] = s.t.lastSeq
		}
		lastSeq[j.thread]++
		kept, g.seqs = append(kept, j), append(g.seqs, lastSeq[j.thread])
	}
	g.fresh = kept
	return nil
}

// describeEnvelopeFiles fills in the attachments' descriptions of the
// group's messages that carry any (one more round trip, only then).
func (ms *Service) describeEnvelopeFiles(ctx context.Context, tx pgx.Tx, g *envelopeGroup) error {
	var outs []*Posted
	for _, j := range append(slices.Clip(g.fresh), g.dups...) {
		outs = append(outs, &j.out)
	}
	return ms.describePosted(ctx, tx, outs)
}

// queueDuplicates queues, in b, the read of each stored message that a post
// of the same envelope asks for again.
func (g *envelopeGroup) queueDuplicates(b *pgx.Batch) map[uuid.UUID]*stored {
	byID := map[uuid.UUID]*stored{}
	for _, j := range g.dups {
		queueStored(b, byID, *g.scopeOf(j).sameID)
	}
	return byID
}

// queueEnvelopes queues, in b, the numbering of the group's new messages
// (checked against the numbers the threads' locks guarantee), the messages
// (sealed at rest), the senders' receipts, one message.created event and
// one audit entry each (with the ciphertext's SHA-256), and sets each new
// post's outcome.
func (ms *Service) queueEnvelopes(b *pgx.Batch, g *envelopeGroup) {
	m := len(g.fresh)
	if m == 0 {
		return
	}
	ids, ths, senders, sroles, keyIDs := make([]uuid.UUID, m), make([]uuid.UUID, m), make([]uuid.UUID, m), make([]string, m),
		make([]string, m)
	bodies, urgent, devs, sseqs, sums := make([][]byte, m), make([]bool, m), make([]uuid.UUID, m), make([]int64, m),
		make([][]byte, m)
	atts := make([]string, m)
	counts, lastSeq, marks := map[uuid.UUID]int32{}, map[uuid.UUID]int64{}, map[[2]uuid.UUID]int64{}
	evs, acts := make([]events.Event, 0, m), make([]audit.Acted, 0, m)
	for i, j := range g.fresh {
		id, seq, s := pg.NewID(), g.seqs[i], g.scopeOf(j)
		keyIDs[i], bodies[i] = ms.sealBody(s.key, j.body, j.thread, id)
		ids[i], ths[i], senders[i], sroles[i], urgent[i] = id, j.thread, j.actor.UserID, string(j.actor.Role), j.in.Urgent
		devs[i], sseqs[i], sums[i] = j.device, int64(j.in.Envelope.SenderSeq), j.sum[:]
		files := j.in.attachmentIDs()
		atts[i] = uuidArray(files)
		counts[j.thread]++
		lastSeq[j.thread], marks[[2]uuid.UUID{j.thread, j.actor.UserID}] = seq, seq
		msg := newMessage(j.actor, j.thread, id, seq, NewMessage{Urgent: j.in.Urgent, AttachmentIDs: files}, g.now)
		msg.Kind, msg.Envelope = thread.Encrypted, j.body
		j.out = Posted{Created: true, Message: msg}
		evs = append(evs, events.Event{Type: events.MessageCreated, ThreadID: j.thread, CareTeamID: pg.Deref(s.t.CareTeamID),
			PatientID: pg.Deref(s.t.PatientID), Payload: map[string]any{"thread_id": j.thread, "message_id": id, "seq": seq,
				"sender_id": j.actor.UserID, "kind": thread.Encrypted, "urgent": j.in.Urgent}})
		detail := map[string]any{"message_ids": []uuid.UUID{id}, "ciphertext_sha256": hex.EncodeToString(j.sum[:]),
			"sender_device_id": j.device}
		if len(files) > 0 {
			detail["attachment_ids"] = files
		}
		acts = append(acts, audit.Acted{Actor: j.actor, Entry: audit.Entry{Action: "message.create",
			PatientID: pg.Deref(s.t.PatientID), ObjectType: "thread", ObjectID: j.thread.String(), Detail: detail}})
	}
	queueNumbering(b, counts, lastSeq, g.now)
	b.Queue(insertEnvelopesSQL, ids, ths, g.seqs, senders, sroles, keyIDs, bodies, urgent, devs, sseqs, sums, g.now, atts)
	queueMarks(b, marks, g.now)
	events.QueueMany(b, g.now, evs)
	ms.audit.QueueMany(b, acts)
}

// queueNumbering queues, in b, the taking of counts[t] sequence numbers of
// each thread t at now, and a check that each thread's new last number is
// lastSeq[t], the one its lock guaranteed.
func queueNumbering(b *pgx.Batch, counts map[uuid.UUID]int32, lastSeq map[uuid.UUID]int64, now time.Time) {
	ids, ns := make([]uuid.UUID, 0, len(counts)), make([]int32, 0, len(counts))
	for id, c := range counts {
		ids, ns = append(ids, id), append(ns, c)
	}
	b.Queue(numberSQL, ids, ns, now).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			var last int64
			if err := rows.Scan(&id, &last); err != nil {
				return err
			}
			if last != lastSeq[id] {
				return fmt.Errorf("thread %s numbered %d, want %d", id, last, lastSeq[id])
			}
		}
		return rows.Err()
	})
}
