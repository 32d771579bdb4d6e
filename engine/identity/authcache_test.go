package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestAuthCacheHoldsWhileWatched: with the revocation watcher running, a
// token is looked up once and then held well past the TTL; a revocation
// written by another process still takes effect within about the TTL; and
// once the watcher stops, lookups are trusted for the TTL alone.
func TestAuthCacheHoldsWhileWatched(t *testing.T) {
	ctx := context.Background()
	var counter pgtest.Counter
	pool := pgtest.NewPool(t, counter.Trace)
	const ttl = 400 * time.Millisecond
	us := New(Config{Pool: pool, Now: time.Now, Audit: audit.Writer{Now: time.Now}, AuthCacheTTL: ttl, AuthCacheHold: time.Hour})
	admin := access.System("test")
	u, err := us.CreateUser(ctx, admin, NewUser{Name: "Cuff", Role: access.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := us.IssueToken(ctx, admin, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := us.IssueToken(ctx, admin, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	lookupSQL, _, _ := strings.Cut(lookupTokenSQL, "\n") // the counter keeps first lines
	lookups := func() int { return counter.Count().Contains(lookupSQL) }
	auth := func(token string) error { _, err := us.Authenticate(ctx, token); return err }

	us.Start(ctx)
	defer us.Stop()
	if err := auth(secret); err != nil {
		t.Fatal(err)
	}
	if lookups() != 1 {
		t.Fatalf("%d lookups of a new token, want 1", lookups())
	}
	before := lookups()
	for range 6 { // 1.2 s: three TTLs
		time.Sleep(ttl / 2)
		if err := auth(secret); err != nil {
			t.Fatal(err)
		}
	}
	if n := lookups() - before; n != 0 {
		t.Errorf("%d lookups of a held token while the watcher runs, want 0", n)
	}

	// Another process revokes it: nothing in this process is told.
	revoked := time.Now()
	if _, err := pool.Exec(ctx, `UPDATE tokens SET revoked_at = now() WHERE user_id = $1 AND hash = sha256($2::bytea)`,
		u.ID, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	for auth(secret) == nil {
		if time.Since(revoked) > 3*ttl {
			t.Fatalf("the revoked token still works %v after its revocation (TTL %v)", time.Since(revoked), ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revocation took effect after %v", time.Since(revoked).Round(time.Millisecond))
	if err := auth(secret); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("revoked token: %v", err)
	}

	// Without the watcher a lookup is trusted for the TTL only.
	us.Stop()
	if err := auth(other); err != nil {
		t.Fatal(err)
	}
	before = lookups()
	time.Sleep(ttl + 100*time.Millisecond)
	if err := auth(other); err != nil {
		t.Fatal(err)
	}
	if n := lookups() - before; n != 1 {
		t.Errorf("%d lookups after the TTL with no watcher, want 1", n)
	}
}
