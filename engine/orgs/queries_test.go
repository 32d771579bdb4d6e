package orgs

import (
	"testing"

	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestQueriesPrepare prepares every statement of queries.go against the
// migrated schema and checks that queries lists them all.
func TestQueriesPrepare(t *testing.T) {
	pgtest.PrepareQueries(t, "queries.go", queries)
}
