package identity

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tendhealth/tend/engine/access"
)

// authCache remembers successful token lookups, so that a busy device does
// not cost a query (and a round trip) per request. Only successes are
// cached: an unknown token is looked up every time.
//
// A remembered lookup is trusted for ttl (a second by default), which
// bounds how long a revoked token, an expired one or a disabled user's may
// still work. While a revocation watcher runs (Service.Start), it asks the
// database every watch interval which tokens ended lately and forgets them;
// then a lookup is trusted for up to hold, as long as the watcher's last
// look began within ttl — so the bound holds across processes, and a
// watcher that cannot reach the database falls back to ttl alone.
type authCache struct {
	ttl  time.Duration
	hold time.Duration
	size int

	mu      sync.Mutex
	entries map[[32]byte]authEntry
	checked time.Time // when the last successful revocation check began
}

type authEntry struct {
	actor access.Actor
	at    time.Time
	// watched: the revocation watcher would see this token end (a token of
	// the tokens table); an OpenID Connect ID token is never held past ttl.
	watched bool
}

func newAuthCache(ttl, hold time.Duration, size int) *authCache {
	return &authCache{ttl: ttl, hold: max(ttl, hold), size: size, entries: map[[32]byte]authEntry{}}
}

func (c *authCache) get(hash [32]byte, now time.Time) (access.Actor, bool) {
	if c.ttl <= 0 {
		return access.Actor{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || !c.trusted(e, now) {
		return access.Actor{}, false
	}
	return e.actor, true
}

// trusted reports whether e may still be used at now.
func (c *authCache) trusted(e authEntry, now time.Time) bool {
	age := now.Sub(e.at)
	if age < c.ttl {
		return true
	}
	return e.watched && age < c.hold && now.Sub(c.checked) < c.ttl
}

func (c *authCache) put(hash [32]byte, a access.Actor, now time.Time, watched bool) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		for k, e := range c.entries { // drop stale entries, then arbitrary ones
			if !c.trusted(e, now) || len(c.entries) >= c.size {
				delete(c.entries, k)
			}
		}
	}
	c.entries[hash] = authEntry{actor: a, at: now, watched: watched}
}

// forget drops the ended tokens and records that everything that ended
// before began was seen.
func (c *authCache) forget(hashes [][32]byte, began time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hashes {
		delete(c.entries, h)
	}
	if began.After(c.checked) {
		c.checked = began
	}
}

// watchMargin is how far back each revocation check looks before the
// previous one began: clocks of processes apart, and a lookup that read a
// token just before its revocation committed and was cached just after the
// check that saw it.
const watchMargin = time.Minute

// watchRevocations forgets, every interval, the tokens that ended since the
// last look (see authCache).
func (us *Service) watchRevocations(ctx context.Context, interval time.Duration, log *slog.Logger, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	since := us.now().Add(-watchMargin)
	for {
		began := us.now()
		hashes, err := us.EndedTokens(ctx, since)
		switch {
		case err == nil:
			us.auth.forget(hashes, began)
			since = began.Add(-watchMargin)
		case ctx.Err() == nil:
			log.WarnContext(ctx, "token revocation check", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
