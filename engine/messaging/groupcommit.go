package messaging

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// Group commit for posts.
//
// A post's own work is a few small statements; BEGIN, COMMIT and its WAL
// flush, and the round trips between them, are what limit one post. So
// concurrent posts share transactions through a batcher, as readings do:
// under light load a post is alone and waits for nothing; under load groups
// form by themselves. In a group, every post's message, receipt, event,
// audit entry and push job are written in a handful of round trips: lock
// the group's threads (in id order, so that concurrent groups cannot
// deadlock) and check scope and client ids in one; number and store the
// messages in two more; queue the push jobs in one. A post out of scope
// fails alone with not found and writes nothing. When the shared
// transaction fails anyway, each post is retried in a transaction of its
// own, so one bad post never fails the others.

// postJob is one PostMessage call and, after its group, its outcome.
type postJob struct {
	actor  access.Actor
	thread uuid.UUID
	in     NewMessage

	out Posted
	err error // this post's own failure
}

// Bounds of a group.
const (
	groupMaxPosts = 256
	groupTimeout  = 30 * time.Second
)

// groupBatcher is a batcher of posts within a group's bounds.
func groupBatcher[T any](maxRunning int, run func(context.Context, []*T) error) *pg.Batcher[T] {
	return &pg.Batcher[T]{MaxRunning: maxRunning, MaxBatch: groupMaxPosts, Timeout: groupTimeout, Run: run}
}

func (ms *Service) newPoster(maxRunning int) *pg.Batcher[postJob] {
	return groupBatcher(maxRunning, func(ctx context.Context, jobs []*postJob) error {
		err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error { return ms.postGroupTx(ctx, tx, jobs) })
		if err == nil {
			return nil
		}
		if len(jobs) == 1 && !pg.IsUniqueViolation(err) {
			jobs[0].err = err
			return nil
		}
		for _, j := range jobs {
			j.out, j.err = ms.postOne(ctx, j.actor, j.thread, j.in)
		}
		return nil
	})
}

// postGroup is a group of posts on its way through postGroupTx.
type postGroup struct {
	jobs []*postJob
	sc   []postScope // per job, in order
	now  time.Time

	fresh  []*postJob // new messages
	counts map[uuid.UUID]int32
	dups   []*postJob // a client id already stored: the stored message
	dupIDs map[*postJob]uuid.UUID
	twins  []*postJob // a client id twice in the group: one message
	twinOf map[*postJob]*postJob
}

// postScope is what round trip 1 found of one post's thread.
type postScope struct {
	ok        bool
	encrypted bool
	team      *uuid.UUID
	patient   *uuid.UUID
	existing  *uuid.UUID      // the message already posted with the post's client id
	wrapped   *thread.Wrapped // the data key of the thread's patient, when it has one
	key       *thread.PatientKey
}

// scopeOf is the scope of a job of the group.
func (g *postGroup) scopeOf(j *postJob) postScope { return g.sc[slices.Index(g.jobs, j)] }

// postGroupTx posts a group of messages in tx.
func (ms *Service) postGroupTx(ctx context.Context, tx pgx.Tx, jobs []*postJob) error {
	g := &postGroup{jobs: jobs}
	if err := g.loadScopes(ctx, tx); err != nil {
		return err
	}
	g.now = ms.now().Truncate(time.Microsecond)
	if err := ms.sortPosts(ctx, tx, g); err != nil {
		return err
	}
	if err := ms.groupKeys(ctx, tx, g); err != nil {
		return err
	}
	lastSeq, err := g.number(ctx, tx)
	if err != nil {
		return err
	}
	// Round trip 3: the messages, the senders' receipts, the events, the
	// audit entries, and the stored messages that retries ask for.
	b := ms.storeBatch(g, lastSeq)
	byID := ms.queueDuplicates(b, g)
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("post messages: %w", err)
		}
	}
	o := thread.NewOpener(ms.keys, tx)
	for _, j := range g.dups {
		j.out = Posted{Message: ms.open(ctx, o, *byID[g.dupIDs[j]])}
	}
	if err := ms.describeFiles(ctx, tx, g); err != nil {
		return err
	}
	for _, j := range g.twins {
		j.out, j.err = g.twinOf[j].out, g.twinOf[j].err
		j.out.Created = false
	}
	// Round trip 4: the pushes, at the end of their hold.
	ids := make([]uuid.UUID, len(g.fresh))
	for i, j := range g.fresh {
		ids[i] = j.out.ID
	}
	return ms.schedulePushes(ctx, tx, g.now, ids)
}

// schedulePushes queues in tx the push jobs of messages posted at now, in
// one round trip (none for no message).
func (ms *Service) schedulePushes(ctx context.Context, tx pgx.Tx, now time.Time, messages []uuid.UUID) error {
	if len(messages) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(messages))
	for i, id := range messages {
		params[i] = river.InsertManyParams{Args: pushArgs{MessageID: id}, InsertOpts: ms.pushOpts(now)}
	}
	if _, err := ms.jobs().InsertManyFastTx(ctx, tx, params); err != nil {
		return fmt.Errorf("schedule message pushes: %w", err)
	}
	return nil
}

// loadScopes is round trip 1: lock the group's threads (in id order, so
// that concurrent groups cannot deadlock), then — seeing what committed
// before the locks were granted — check each post's scope and client id.
func (g *postGroup) loadScopes(ctx context.Context, tx pgx.Tx) error {
	n := len(g.jobs)
	threads := make([]uuid.UUID, 0, n)
	roles, patients, users := make([]string, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
	clients := make([]*string, n)
	all := make([]uuid.UUID, n)
	for i, j := range g.jobs {
		j.out, j.err = Posted{}, nil
		all[i], roles[i], patients[i], users[i] = j.thread, string(j.actor.Role), j.actor.PatientID, j.actor.UserID
		if j.in.ClientID != "" {
			c := j.in.ClientID
			clients[i] = &c
		}
		if !slices.Contains(threads, j.thread) {
			threads = append(threads, j.thread)
		}
	}
	slices.SortFunc(threads, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	g.sc = make([]postScope, n)
	b := &pgx.Batch{}
	b.Queue(lockThreadsSQL, threads)
	b.Queue(groupScopeSQL, all, roles, patients, users, clients).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var i int
			var s postScope
			var keyID *string
			var wrapped []byte
			if err := rows.Scan(&i, &s.team, &s.patient, &s.encrypted, &s.existing, &keyID, &wrapped); err != nil {
				return err
			}
			if keyID != nil && s.patient != nil {
				s.wrapped = &thread.Wrapped{Patient: *s.patient, KeyID: *keyID, Data: wrapped}
			}
			s.ok = true
			g.sc[i-1] = s
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("post messages: scope: %w", err)
	}
	return nil
}

// groupKeys unwraps the data keys of the patients of the group's new
// messages that round trip 1 found, and creates those not made yet (one
// more round trip, only then); a new message to an erased patient's thread
// fails alone (access.ErrConflict).
func (ms *Service) groupKeys(ctx context.Context, tx pgx.Tx, g *postGroup) error {
	needs := make([]keyNeed, len(g.fresh))
	for i, j := range g.fresh {
		s := g.scopeOf(j)
		needs[i] = keyNeed{patient: s.patient, wrapped: s.wrapped}
	}
	keys, err := ms.patientKeys(ctx, tx, g.now, needs)
	if err != nil {
		return fmt.Errorf("post messages: %w", err)
	}
	kept := g.fresh[:0]
	for _, j := range g.fresh {
		s := &g.sc[slices.Index(g.jobs, j)]
		if s.patient != nil {
			if s.key = keys[*s.patient]; s.key == nil {
				j.err = fmt.Errorf("%w: %w", thread.ErrErased, access.ErrConflict)
				if g.counts[j.thread]--; g.counts[j.thread] == 0 {
					delete(g.counts, j.thread)
				}
				continue
			}
		}
		kept = append(kept, j)
	}
	g.fresh = kept
	return nil
}

// keyNeed is a new message's need of its thread's patient's data key: none
// (patient nil), one found wrapped, or one to make.
type keyNeed struct {
	patient *uuid.UUID
	wrapped *thread.Wrapped
}

// patientKeys unwraps the data keys found and creates those not made yet
// (one round trip, only then); an erased patient has none in the map.
func (ms *Service) patientKeys(ctx context.Context, tx pgx.Tx, now time.Time, needs []keyNeed) (map[uuid.UUID]*thread.PatientKey, error) {
	keys := map[uuid.UUID]*thread.PatientKey{}
	var missing []uuid.UUID
	for _, n := range needs {
		switch {
		case n.patient == nil:
		case n.wrapped != nil:
			if keys[*n.patient] == nil {
				k, err := thread.Unwrap(ms.keys, *n.wrapped)
				if err != nil {
					return nil, err
				}
				keys[*n.patient] = k
			}
		case !slices.Contains(missing, *n.patient):
			missing = append(missing, *n.patient)
		}
	}
	if len(missing) > 0 {
		made, err := thread.EnsureKeys(ctx, tx, ms.keys, now, missing...)
		if err != nil {
			return nil, err
		}
		maps.Copy(keys, made)
	}
	return keys, nil
}

// sealBody seals a message body at rest: under the thread's patient's data
// key k, or the server's current key when the thread is about no patient.
func (ms *Service) sealBody(k *thread.PatientKey, body []byte, threadID, id uuid.UUID) (keyID string, ct []byte) {
	if k != nil {
		return k.Seal(body, thread.BodyAAD(threadID, id))
	}
	return ms.keys.Seal(body, thread.BodyAAD(threadID, id))
}

// sortPosts fails the posts out of scope or with attachments they may not
// use, and sorts the others into new messages, duplicates of stored ones and
// twins of another post of the group.
func (ms *Service) sortPosts(ctx context.Context, tx pgx.Tx, g *postGroup) error {
	type key struct {
		thread, user uuid.UUID
		client       string
	}
	firstOf := map[key]*postJob{}
	g.counts, g.dupIDs, g.twinOf = map[uuid.UUID]int32{}, map[*postJob]uuid.UUID{}, map[*postJob]*postJob{}
	for i, j := range g.jobs {
		s := g.sc[i]
		switch {
		case !s.ok:
			j.err = fmt.Errorf("thread: %w", access.ErrNotFound)
			continue
		case s.existing != nil:
			g.dups, g.dupIDs[j] = append(g.dups, j), *s.existing
			continue
		case s.encrypted:
			j.err = ErrEncryptedThread
			continue
		}
		if j.in.ClientID != "" {
			k := key{j.thread, j.actor.UserID, j.in.ClientID}
			if first, ok := firstOf[k]; ok {
				g.twins, g.twinOf[j] = append(g.twins, j), first
				continue
			}
			firstOf[k] = j
		}
		if len(j.in.AttachmentIDs) > 0 {
			if err := ms.attachments(ctx, tx, j.thread, j.in.AttachmentIDs); err != nil {
				var v interface{ OrNil() error }
				if errors.As(err, &v) {
					j.err = err
					continue
				}
				return err
			}
		}
		g.counts[j.thread]++
		g.fresh = append(g.fresh, j)
	}
	return nil
}

// number is round trip 2: it reserves the new messages' sequence numbers
// and returns, per thread, the number before the group's first.
func (g *postGroup) number(ctx context.Context, tx pgx.Tx) (map[uuid.UUID]int64, error) {
	lastSeq := map[uuid.UUID]int64{}
	if len(g.fresh) == 0 {
		return lastSeq, nil
	}
	ids, ns := make([]uuid.UUID, 0, len(g.counts)), make([]int32, 0, len(g.counts))
	for id, c := range g.counts {
		ids, ns = append(ids, id), append(ns, c)
	}
	rows, err := tx.Query(ctx, numberSQL, ids, ns, g.now)
	if err != nil {
		return nil, fmt.Errorf("post messages: number: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var last int64
		if err := rows.Scan(&id, &last); err != nil {
			return nil, fmt.Errorf("post messages: number: %w", err)
		}
		lastSeq[id] = last - int64(g.counts[id])
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("post messages: number: %w", err)
	}
	return lastSeq, nil
}

// storeBatch queues the new messages (sealed), the senders' receipts, one
// message.created event and one audit entry each, and sets each new post's
// outcome.
func (ms *Service) storeBatch(g *postGroup, lastSeq map[uuid.UUID]int64) *pgx.Batch {
	b := &pgx.Batch{}
	m := len(g.fresh)
	if m == 0 {
		return b
	}
	ids, ths, seqs := make([]uuid.UUID, m), make([]uuid.UUID, m), make([]int64, m)
	senders, sroles, keyIDs := make([]uuid.UUID, m), make([]string, m), make([]string, m)
	bodies, urgent, cids := make([][]byte, m), make([]bool, m), make([]*string, m)
	atts := make([]string, m)
	marks := map[[2]uuid.UUID]int64{}
	evs := make([]events.Event, 0, m)
	acts := make([]audit.Acted, 0, m)
	for i, j := range g.fresh {
		lastSeq[j.thread]++
		id, seq := pg.NewID(), lastSeq[j.thread]
		keyID, ct := ms.sealBody(g.scopeOf(j).key, []byte(j.in.Body), j.thread, id)
		ids[i], ths[i], seqs[i], senders[i], sroles[i], keyIDs[i], bodies[i], urgent[i] = id, j.thread, seq,
			j.actor.UserID, string(j.actor.Role), keyID, ct, j.in.Urgent
		if j.in.ClientID != "" {
			c := j.in.ClientID
			cids[i] = &c
		}
		atts[i] = uuidArray(j.in.AttachmentIDs)
		marks[[2]uuid.UUID{j.thread, j.actor.UserID}] = seq
		j.out = Posted{Created: true, Message: newMessage(j.actor, j.thread, id, seq, j.in, g.now)}
		s := g.scopeOf(j)
		evs = append(evs, events.Event{Type: events.MessageCreated, ThreadID: j.thread, CareTeamID: pg.Deref(s.team),
			PatientID: pg.Deref(s.patient), Payload: map[string]any{"thread_id": j.thread, "message_id": id, "seq": seq,
				"sender_id": j.actor.UserID, "kind": thread.Text, "urgent": j.in.Urgent}})
		acts = append(acts, audit.Acted{Actor: j.actor, Entry: audit.Entry{Action: "message.create", PatientID: pg.Deref(s.patient),
			ObjectType: "thread", ObjectID: j.thread.String(), Detail: map[string]any{"message_ids": []uuid.UUID{id}}}})
	}
	// The insert goes first: the events and audit entries only name its rows.
	b.Queue(insertMessagesSQL, ids, ths, seqs, senders, sroles, keyIDs, bodies, urgent, cids, atts, g.now)
	queueMarks(b, marks, g.now)
	events.QueueMany(b, g.now, evs)
	ms.audit.QueueMany(b, acts)
	return b
}

// queueMarks queues, in b, the raising of each sender's watermarks in a
// thread (marks[{thread, user}]) to its last message of the group, at now.
func queueMarks(b *pgx.Batch, marks map[[2]uuid.UUID]int64, now time.Time) {
	mt, mu, mseq := make([]uuid.UUID, 0, len(marks)), make([]uuid.UUID, 0, len(marks)), make([]int64, 0, len(marks))
	for k, seq := range marks {
		mt, mu, mseq = append(mt, k[0]), append(mu, k[1]), append(mseq, seq)
	}
	b.Queue(markManySQL, mt, mu, mseq, now)
}

// queueDuplicates queues, in b, the read of each stored message a retried
// post asks for again, and its audit entry.
func (ms *Service) queueDuplicates(b *pgx.Batch, g *postGroup) map[uuid.UUID]*stored {
	byID := map[uuid.UUID]*stored{}
	for _, j := range g.dups {
		id := g.dupIDs[j]
		if !queueStored(b, byID, id) {
			continue
		}
		s := g.scopeOf(j)
		ms.audit.Queue(b, j.actor, audit.Entry{Action: "message.read", PatientID: pg.Deref(s.patient), ObjectType: "thread",
			ObjectID: j.thread.String(), Detail: map[string]any{"message_ids": []uuid.UUID{id}}})
	}
	return byID
}

// queueStored queues, in b, the read of stored message id into byID[id],
// unless it is there already; it reports whether it queued it.
func queueStored(b *pgx.Batch, byID map[uuid.UUID]*stored, id uuid.UUID) bool {
	if _, ok := byID[id]; ok {
		return false
	}
	st := &stored{}
	byID[id] = st
	b.Queue(messageByIDSQL, id).QueryRow(func(r pgx.Row) error {
		s, err := scanStored(r)
		*st = s
		return err
	})
	return true
}

// describeFiles fills in the attachments' descriptions of the posts that
// carry any (one more round trip, only then).
func (ms *Service) describeFiles(ctx context.Context, tx pgx.Tx, g *postGroup) error {
	var outs []*Posted
	for _, j := range append(slices.Clip(g.fresh), g.dups...) {
		outs = append(outs, &j.out)
	}
	return ms.describePosted(ctx, tx, outs)
}

// describePosted fills in the attachments' descriptions of the posted
// messages that carry any, in one round trip (none when none does).
func (ms *Service) describePosted(ctx context.Context, tx pgx.Tx, outs []*Posted) error {
	var msgs []Message
	var withFiles []*Posted
	for _, p := range outs {
		if len(p.AttachmentIDs) > 0 {
			msgs, withFiles = append(msgs, p.Message), append(withFiles, p)
		}
	}
	if len(withFiles) == 0 {
		return nil
	}
	if err := ms.describeAttachments(ctx, tx, msgs); err != nil {
		return err
	}
	for i, p := range withFiles {
		p.Message = msgs[i]
	}
	return nil
}

// uuidArray is ids as a Postgres uuid[] literal (unnest cannot take an
// array of arrays of varying length).
func uuidArray(ids []uuid.UUID) string {
	b := make([]byte, 0, 2+37*len(ids))
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, id.String()...)
	}
	return string(append(b, '}'))
}
