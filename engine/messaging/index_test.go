package messaging

import (
	"strings"
	"testing"

	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// TestCommunicationSearchUsesIndex: FHIR Communication search (a patient's
// threads' messages in a time range, newest first) reads the range through
// messages_thread_created_idx (migration 00018), not the table, in the plan
// the engine's pool uses (generic), on 40,000 messages in 200 threads.
func TestCommunicationSearchUsesIndex(t *testing.T) {
	pool := pgtest.NewPool(t)
	// The messages alone: their threads' rows are not what is planned.
	const setup = `SET session_replication_role = replica;
		INSERT INTO messages (id, thread_id, seq, sender_role, kind, key_id, body, created_at)
		SELECT gen_random_uuid(), ('00000000-0000-0000-0000-' || lpad((g % 200)::text, 12, '0'))::uuid, g, 'clinician',
			'text', 'k', '\x00', now() - g * interval '1 minute'
		FROM generate_series(1, 40000) g;
		RESET session_replication_role;
		ANALYZE messages`
	plan := pgtest.GenericPlan(t, pool, setup, patientMessagesSQL,
		"'{00000000-0000-0000-0000-000000000001}'::uuid[]", "now() - interval '30 days'", "now()", "now()",
		"'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid", "50")
	if !strings.Contains(plan, "messages_thread_created_idx") || strings.Contains(plan, "Seq Scan") {
		t.Errorf("Communication search does not read through messages_thread_created_idx:\n%s", plan)
	}
	t.Logf("plan:\n%s", plan)
}

// TestEnvelopeScopeReadsOneMessage: an envelope post's scope looks up the
// message its sender device stored with the same sender sequence through
// all three columns of messages_sender_seq_uq, in the generic plan made
// before messages is analysed (a new database): not by thread alone, which
// read every earlier message of the thread for each post.
func TestEnvelopeScopeReadsOneMessage(t *testing.T) {
	pool := pgtest.NewPool(t)
	plan := pgtest.GenericPlan(t, pool, "", envelopeScopeSQL, "'{00000000-0000-0000-0000-000000000001}'::uuid[]",
		"'{clinician}'::text[]", "'{00000000-0000-0000-0000-000000000000}'::uuid[]", "'{00000000-0000-0000-0000-000000000002}'::uuid[]",
		"'{00000000-0000-0000-0000-000000000003}'::uuid[]", "'{7}'::bigint[]")
	var lookups int
	for _, l := range strings.Split(plan, "\n") {
		if strings.Contains(l, "Index Cond") && strings.Contains(l, "sender_seq = x.sseq") && strings.Contains(l, "thread_id = t.id") &&
			strings.Contains(l, "sender_device_id = x.dev") {
			lookups++
		}
	}
	if lookups != 1 || strings.Contains(plan, "Join Filter: ((s.sender_device_id") {
		t.Errorf("the stored message is not looked up by thread, device and sequence:\n%s", plan)
	}
	t.Logf("plan:\n%s", plan)
}
