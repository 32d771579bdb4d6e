package identity

import (
	"sync"
	"time"

	"github.com/tendhealth/tend/engine/access"
)

// authCache remembers successful token lookups for a short time, so that a
// busy device does not cost a query per request. Only successes are cached:
// an unknown token is looked up every time.
type authCache struct {
	ttl  time.Duration
	size int

	mu      sync.Mutex
	entries map[[32]byte]authEntry
}

type authEntry struct {
	actor   access.Actor
	expires time.Time
}

func newAuthCache(ttl time.Duration, size int) *authCache {
	return &authCache{ttl: ttl, size: size, entries: map[[32]byte]authEntry{}}
}

func (c *authCache) get(hash [32]byte, now time.Time) (access.Actor, bool) {
	if c.ttl <= 0 {
		return access.Actor{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok || now.After(e.expires) {
		return access.Actor{}, false
	}
	return e.actor, true
}

func (c *authCache) put(hash [32]byte, a access.Actor, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		for k, e := range c.entries { // drop expired entries, then arbitrary ones
			if now.After(e.expires) || len(c.entries) >= c.size {
				delete(c.entries, k)
			}
		}
	}
	c.entries[hash] = authEntry{actor: a, expires: now.Add(c.ttl)}
}
