package audit

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/access"
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
	usesIndex(t, pool, setup, listAuditByActorSQL, "audit_entries_actor_idx",
		"0", "NULL", "'00000000-0000-0000-0000-000000000001'::uuid", "NULL", "NULL", "NULL", "50", "'00000000-0000-0000-0000-000000000001'::uuid")
}

// usesIndex fails t unless the generic plan of query (with args, after
// setup) reads through index and scans no table whole.
func usesIndex(t *testing.T, pool *pgxpool.Pool, setup, query, index string, args ...string) {
	t.Helper()
	plan := pgtest.GenericPlan(t, pool, setup, query, args...)
	if !strings.Contains(plan, index) || strings.Contains(plan, "Seq Scan") {
		t.Errorf("the query does not read through %s:\n%s", index, plan)
	}
	t.Logf("plan:\n%s", plan)
}

// TestPatientFilterUsesIndex: the audit trail filtered by patient (who
// accessed this patient's record) reads the patient's entries through
// audit_entries_patient_idx, not the whole table: one of the three indexes
// every audit insert pays for, and the reason it is kept.
func TestPatientFilterUsesIndex(t *testing.T) {
	pool := pgtest.NewPool(t)
	const setup = `INSERT INTO audit_entries (at, actor_id, actor_role, patient_id, action, object_type, request_id, outcome)
		SELECT now(), gen_random_uuid(), 'clinician', ('00000000-0000-0000-0000-' || lpad((g % 100)::text, 12, '0'))::uuid,
			'patient.read', 'patient', 'r', 'ok'
		FROM generate_series(1, 40000) g;
		ANALYZE audit_entries`
	usesIndex(t, pool, setup, listAuditByPatientSQL, "audit_entries_patient_idx",
		"0", "'00000000-0000-0000-0000-000000000001'::uuid", "NULL", "NULL", "NULL", "NULL", "50", "'00000000-0000-0000-0000-000000000001'::uuid")
}

// TestReadingCreationsUseSourceKey: the audit entries of a group commit
// check each reading's source id through reading_sources' primary key,
// never by reading (or hashing) the whole table — neither in a plan made
// while the table is empty and never analysed (a new database: the
// engine's pool keeps each connection's generic plan as long as the
// connection lives), nor once it holds 40,000 sources.
func TestReadingCreationsUseSourceKey(t *testing.T) {
	pool := pgtest.NewPool(t)
	args := []string{"now()", "ARRAY[NULL]::uuid[]", "ARRAY['device']", "ARRAY['00000000-0000-0000-0000-000000000001'::uuid]",
		"ARRAY['r']", "ARRAY['00000000-0000-0000-0000-000000000002'::uuid]", "ARRAY[1]", "ARRAY['derived:x']",
		"ARRAY['" + access.DefaultOrg + "'::uuid]"}
	usesIndex(t, pool, "", readingCreationsSQL, "reading_sources_pkey", args...)
	const fill = `INSERT INTO reading_sources (patient_id, source_id, reading_id, observed_at)
		SELECT ('00000000-0000-0000-0000-' || lpad((g % 1000)::text, 12, '0'))::uuid, 'derived:' || g, gen_random_uuid(), now()
		FROM generate_series(1, 40000) g`
	usesIndex(t, pool, fill, readingCreationsSQL, "reading_sources_pkey", args...)
}
