package messaging

import (
	"testing"

	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestBroadcastQueriesPrepare prepares every statement of
// queries_broadcast.go against the migrated schema and checks that
// broadcastQueries lists them all.
func TestBroadcastQueriesPrepare(t *testing.T) {
	pgtest.PrepareQueriesOf(t, "queries_broadcast.go", "broadcastQueries", broadcastQueries)
}
