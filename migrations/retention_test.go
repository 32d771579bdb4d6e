package migrations_test

import (
	"context"
	"testing"
)

// TestRetentionMigration: migration 00028 adds the two notification indexes
// retention needs and takes them away again going down.
func TestRetentionMigration(t *testing.T) {
	ctx := context.Background()
	pool, p := migrated(t)
	indexes := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'notifications'
			AND indexname IN ('notifications_user_created_idx', 'notifications_catchup_idx')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := indexes(); n != 2 {
		t.Fatalf("migrated: %d of the retention indexes, want 2", n)
	}
	if _, err := p.DownTo(ctx, 27); err != nil {
		t.Fatalf("down to 27: %v", err)
	}
	if n := indexes(); n != 0 {
		t.Fatalf("after going down: %d of the retention indexes, want 0", n)
	}
	if _, err := p.UpTo(ctx, 28); err != nil {
		t.Fatalf("up to 28: %v", err)
	}
	if n := indexes(); n != 2 {
		t.Fatalf("up again: %d of the retention indexes, want 2", n)
	}
}
