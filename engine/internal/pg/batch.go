package pg

import (
	"cmp"
	"context"
	"sync"
	"time"
)

// Batcher runs the database work of concurrent calls in shared round trips
// (group commit, as the ingester does for readings). A call joins a queue;
// while fewer than maxRunning flushes are in flight it leads: it takes what
// is queued (at most maxBatch), runs it in one go, and repeats until its own
// call is done, then hands the lead to the oldest waiting call. Under light
// load a call runs alone at once and waits for nothing; under load batches
// form by themselves, so a hundred delivery workers cost a few statements,
// not a hundred.
type Batcher[T any] struct {
	// MaxRunning bounds the batches in flight; MaxBatch the items of one.
	MaxRunning int
	MaxBatch   int
	// Run does the work of a batch, setting each item's own result; an error
	// fails every call of the batch.
	Run func(ctx context.Context, items []*T) error
	// Admit, when set, decides whether next may join a batch that already
	// holds batch (never empty); a call it refuses waits for a later batch,
	// keeping its place in the queue. nil admits everything up to MaxBatch.
	Admit func(batch []*T, next *T) bool
	// Timeout bounds one batch. Defaults to 15 seconds.
	Timeout time.Duration

	mu      sync.Mutex
	queue   []*batchCall[T]
	running int
}

type batchCall[T any] struct {
	item  *T
	err   error
	done  chan struct{} // closed when err (and item's results) are final
	wake  chan struct{} // receives one value when the call is handed the lead
	woken bool          // guarded by batcher.mu
}

// batchTimeout is the default bound of one batch. A batch runs detached from
// any one caller's context, so that one cancelled caller cannot fail the
// others.
const batchTimeout = 15 * time.Second

// Do runs item in a batch and returns when its result is final, or when ctx
// ends while it is still queued (then nothing of it ran).
func (b *Batcher[T]) Do(ctx context.Context, item *T) error {
	c := &batchCall[T]{item: item, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := b.running < b.MaxRunning
	if lead {
		b.running++
		c.woken = true
	}
	b.mu.Unlock()
	if !lead {
		select {
		case <-c.done:
		case <-c.wake:
		case <-ctx.Done():
			if b.withdraw(c) {
				return ctx.Err()
			}
			// Already taken into a batch, or handed the lead.
			select {
			case <-c.done:
			case <-c.wake:
			}
		}
		// A call handed the lead owns a running slot even when another
		// leader's batch finished it first: it must pass the slot on.
		b.mu.Lock()
		owns := c.woken
		b.mu.Unlock()
		if !owns {
			return c.err
		}
	}
	b.lead(ctx, c)
	return c.err
}

// withdraw removes c from the queue unless it was taken or handed the lead.
func (b *Batcher[T]) withdraw(c *batchCall[T]) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.woken {
		return false
	}
	for i, q := range b.queue {
		if q == c {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			return true
		}
	}
	return false
}

// lead runs batches until c is done, then passes the lead on.
func (b *Batcher[T]) lead(ctx context.Context, c *batchCall[T]) {
	for {
		b.mu.Lock()
		select {
		case <-c.done:
			// Hand the lead to the oldest call not already leading or
			// handed it (a woken call stays queued until a batch takes it).
			handed := false
			for _, next := range b.queue {
				if !next.woken {
					next.woken = true
					next.wake <- struct{}{} // buffered: a call is woken at most once
					handed = true
					break
				}
			}
			if !handed {
				b.running--
			}
			b.mu.Unlock()
			return
		default:
		}
		calls, items := b.take()
		if len(calls) == 0 {
			// c is in another leader's batch.
			b.mu.Unlock()
			<-c.done
			continue
		}
		b.mu.Unlock()

		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(b.Timeout, batchTimeout))
		err := b.Run(rctx, items)
		cancel()
		for _, x := range calls {
			x.err = err
			close(x.done)
		}
	}
}

// take removes the next batch from the queue: calls in arrival order, up to
// maxBatch, that admit accepts (the first always). Callers hold b.mu.
func (b *Batcher[T]) take() ([]*batchCall[T], []*T) {
	var calls []*batchCall[T]
	var items []*T
	rest := b.queue[:0]
	for _, c := range b.queue {
		if len(calls) < b.MaxBatch && (len(calls) == 0 || b.Admit == nil || b.Admit(items, c.item)) {
			calls, items = append(calls, c), append(items, c.item)
			continue
		}
		rest = append(rest, c)
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return calls, items
}
