package identity

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestEndedTokens: revoked and expired tokens, and a disabled user's, are
// listed from the time they stopped working on; working tokens never are.
func TestEndedTokens(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	us := New(Config{Pool: pgtest.NewPool(t), Now: clock, Audit: audit.Writer{Now: clock}, AuthCacheTTL: -1})
	admin := access.System("test")
	token := func(expires time.Duration) ([32]byte, Token, access.Actor) {
		u, err := us.CreateUser(ctx, admin, NewUser{Name: "Dr X", Role: access.RoleClinician})
		if err != nil {
			t.Fatal(err)
		}
		tok, secret, err := us.IssueToken(ctx, admin, u.ID, expires)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256([]byte(secret)), tok, access.Actor{UserID: u.ID}
	}
	working, _, _ := token(0)
	revoked, revokedTok, _ := token(0)
	disabled, _, disabledUser := token(0)
	expiring, _, _ := token(time.Minute)
	start := clock()
	advance(2 * time.Minute)
	if err := us.RevokeToken(ctx, admin, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := us.SetUserDisabled(ctx, admin, disabledUser.UserID, true); err != nil {
		t.Fatal(err)
	}
	got, err := us.EndedTokens(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string][32]byte{"revoked": revoked, "disabled user's": disabled, "expired": expiring} {
		if !slices.Contains(got, h) {
			t.Errorf("the %s token is not listed", name)
		}
	}
	if slices.Contains(got, working) || len(got) != 3 {
		t.Errorf("listed %d tokens, want the 3 that ended", len(got))
	}
	if got, err := us.EndedTokens(ctx, clock().Add(time.Second)); err != nil || len(got) != 0 {
		t.Errorf("since after every end: %d tokens, %v", len(got), err)
	}
}
