package audit

import (
	"strings"
	"testing"

	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestActorFilterUsesIndex: the audit trail filtered by actor reads the
// actor's entries through audit_entries_actor_idx (migration 00018), not
// the whole table, in the plan the engine's pool uses (generic), on a
// table of 40,000 entries by 100 actors.
func TestActorFilterUsesIndex(t *testing.T) {
	pool := pgtest.NewPool(t)
	const setup = `INSERT INTO audit_entries (at, actor_id, actor_role, action, object_type, request_id, outcome)
		SELECT now(), ('00000000-0000-0000-0000-' || lpad((g % 100)::text, 12, '0'))::uuid, 'clinician', 'patient.read',
			'patient', 'r', 'ok'
		FROM generate_series(1, 40000) g;
		ANALYZE audit_entries`
	plan := pgtest.GenericPlan(t, pool, setup, listAuditByActorSQL,
		"0", "NULL", "'00000000-0000-0000-0000-000000000001'::uuid", "NULL", "NULL", "NULL", "50")
	if !strings.Contains(plan, "audit_entries_actor_idx") || strings.Contains(plan, "Seq Scan") {
		t.Errorf("the actor filter does not read through audit_entries_actor_idx:\n%s", plan)
	}
	t.Logf("plan:\n%s", plan)
}
