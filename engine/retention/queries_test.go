package retention

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestQueriesPrepare prepares every statement of queries.go against the
// migrated schema and checks that queries lists them all.
func TestQueriesPrepare(t *testing.T) {
	pgtest.PrepareQueries(t, "queries.go", queries)
}

// TestBatchesUseIndexes: each batch reads its owners' old rows through an
// index — readings through each partition's primary key (patient_id,
// observed_at, id), messages through messages_thread_created_idx,
// notifications through notifications_user_created_idx (migration 00028) —
// never the whole table, in the plan the engine's pool uses (generic), on
// 40,000 rows of 200 owners each.
func TestBatchesUseIndexes(t *testing.T) {
	pool := pgtest.NewPool(t)
	// The rows alone: their owners' rows are not what is planned.
	setup := `SET session_replication_role = replica;
		INSERT INTO readings (id, patient_id, kind, value, unit, observed_at)
		SELECT gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad((g % 200)::text, 12, '0'))::uuid, 'heart_rate', 70, '/min',
			now() - g * interval '1 minute'
		FROM generate_series(1, 40000) g;
		INSERT INTO messages (id, thread_id, seq, sender_role, kind, key_id, body, created_at)
		SELECT gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad((g % 200)::text, 12, '0'))::uuid, g, 'clinician',
			'text', 'k', '\x00', now() - g * interval '1 minute'
		FROM generate_series(1, 40000) g;
		INSERT INTO notifications (id, user_id, type, urgency, created_at)
		SELECT gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad((g % 200)::text, 12, '0'))::uuid, 'alert', 'high',
			now() - g * interval '1 minute'
		FROM generate_series(1, 40000) g;
		RESET session_replication_role;
		ANALYZE readings, messages, notifications`
	owners := "'{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}'::uuid[]"
	for _, c := range []struct {
		name, sql, index, table string
	}{
		{"readings", deleteReadingsSQL, "_pkey", "readings"},
		{"messages", deleteMessagesSQL, "messages_thread_created_idx", "messages"},
		{"deliveries", deleteDeliveriesSQL, "notifications_user_created_idx", "notifications"},
	} {
		plan := pgtest.GenericPlan(t, pool, setup, c.sql, owners, "now() - interval '7 days'", "1000")
		setup = "" // once
		if !strings.Contains(plan, c.index) || regexp.MustCompile(`Seq Scan on `+c.table+`\b`).MatchString(plan) {
			t.Errorf("%s: a batch does not read through %s:\n%s", c.name, c.index, plan)
		}
	}
}
