package messaging

import (
	"bytes"
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// Group commit for envelope posts.
//
// An envelope post's own work is a few small statements; its transaction's
// BEGIN, COMMIT and WAL flush, and the thread's row lock held until that
// commit, are what limit posts to one thread to one after another. So
// concurrent envelope posts share transactions through a batcher, as plain
// posts do (groupcommit.go): under light load a post is alone; under load
// groups form by themselves. In a group, each post's checks and writes run
// in turn in the shared transaction, in thread id order so that concurrent
// groups take the threads' locks in one order and cannot deadlock. A post
// its checks refuse (not found, 409) has written nothing and fails alone.
// Any other failure, or a failed commit, retries each post of the group in
// a transaction of its own, so one bad post never fails the others.

// envelopeJob is one PostEnvelope call and, after its group, its outcome.
type envelopeJob struct {
	actor  access.Actor
	thread uuid.UUID
	in     NewEnvelope
	body   []byte // the envelope as stored

	out Posted
	err error // this post's own failure
}

func (ms *Service) newEnvelopePoster(maxRunning int) *pg.Batcher[envelopeJob] {
	return groupBatcher(maxRunning, func(ctx context.Context, jobs []*envelopeJob) error {
		ordered := slices.Clone(jobs)
		slices.SortStableFunc(ordered, func(a, b *envelopeJob) int { return bytes.Compare(a.thread[:], b.thread[:]) })
		err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
			for _, j := range ordered {
				j.out, j.err = ms.postEnvelopeTx(ctx, tx, j.actor, j.thread, j.in, j.body)
				if j.err != nil && !refusedAlone(j.err) {
					return j.err
				}
			}
			return nil
		})
		if err == nil {
			return nil
		}
		for _, j := range jobs {
			j.out, j.err = ms.postEnvelopeAlone(ctx, j)
		}
		return nil
	})
}

// refusedAlone reports whether err is an envelope post's own refusal by its
// checks, which come before its first write and leave the shared
// transaction usable.
func refusedAlone(err error) bool {
	var re *RecipientsError
	return errors.As(err, &re) || errors.Is(err, access.ErrNotFound) || errors.Is(err, access.ErrConflict) ||
		errors.Is(err, ErrNoRecordKey)
}

// postEnvelopeAlone posts j in a transaction of its own; the same envelope
// stored meanwhile by a concurrent post (a unique violation) is answered
// with the stored message.
func (ms *Service) postEnvelopeAlone(ctx context.Context, j *envelopeJob) (Posted, error) {
	var out Posted
	post := func() error {
		return pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
			var err error
			out, err = ms.postEnvelopeTx(ctx, tx, j.actor, j.thread, j.in, j.body)
			return err
		})
	}
	err := post()
	if pg.IsUniqueViolation(err) {
		err = post()
	}
	return out, err
}
