package pg

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatcherUnderContention hammers a batcher with concurrent calls, some
// cancelled while queued: every call that was not withdrawn runs exactly
// once, batches form, no more than maxRunning run at once, and nothing
// deadlocks (a lost lead would hang the test).
func TestBatcherUnderContention(t *testing.T) {
	t.Parallel()
	type item struct{ ran atomic.Int32 }
	var running, maxSeen, batches, biggest atomic.Int32
	b := &Batcher[item]{MaxRunning: 3, MaxBatch: 8, Run: func(ctx context.Context, items []*item) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		batches.Add(1)
		if l := int32(len(items)); l > biggest.Load() {
			biggest.Store(l)
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		for _, it := range items {
			it.ran.Add(1)
		}
		if rand.IntN(50) == 0 {
			return errors.New("injected")
		}
		return nil
	}}
	const goroutines, calls = 64, 300
	var wg sync.WaitGroup
	var withdrawn, failed atomic.Int32
	all := make([][]*item, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for range calls {
				it := &item{}
				ctx, cancel := context.WithCancel(context.Background())
				if rand.IntN(10) == 0 {
					go func() { time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond); cancel() }()
				}
				err := b.Do(ctx, it)
				cancel()
				switch {
				case errors.Is(err, context.Canceled):
					withdrawn.Add(1)
					if it.ran.Load() != 0 {
						t.Error("a withdrawn call ran")
					}
					continue
				case err != nil:
					failed.Add(1)
				}
				all[g] = append(all[g], it)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("calls still waiting after 60 s: the lead was lost")
	}
	for _, its := range all {
		for _, it := range its {
			if n := it.ran.Load(); n != 1 {
				t.Fatalf("a call ran %d times", n)
			}
		}
	}
	if m := maxSeen.Load(); m > 3 {
		t.Errorf("%d batches ran at once, want at most 3", m)
	}
	if biggest.Load() < 2 {
		t.Errorf("no batch held more than one call (%d batches)", batches.Load())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running != 0 || len(b.queue) != 0 {
		t.Errorf("after all calls: running %d, queued %d; want 0, 0", b.running, len(b.queue))
	}
	t.Logf("%d calls in %d batches (largest %d), %d withdrawn, %d failed with their batch",
		goroutines*calls-int(withdrawn.Load()), batches.Load(), biggest.Load(), withdrawn.Load(), failed.Load())
}
