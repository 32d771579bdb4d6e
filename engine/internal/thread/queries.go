package thread

// This file holds every SQL statement the package runs, by name
// (TestQueriesPrepare prepares each against the migrated schema).

// queries lists every statement of this file by name.
var queries = map[string]string{
	"insertPatientThreadsSQL": insertPatientThreadsSQL,
	"insertTeamThreadSQL":     insertTeamThreadSQL,
	"appendSQL":               appendSQL,
	"markSQL":                 markSQL,
	"ensureKeysSQL":           ensureKeysSQL,
	"patientKeysSQL":          patientKeysSQL,
}

// insertPatientThreadsSQL creates patient $4's thread ($1) with team $3 and
// the team's staff-only thread about the patient ($2), at $5.
const insertPatientThreadsSQL = `INSERT INTO threads (id, kind, care_team_id, patient_id, last_activity_at, created_at)
	VALUES ($1, 'patient', $3, $4, $5, $5), ($2, 'staff_patient', $3, $4, $5, $5)
	ON CONFLICT DO NOTHING`

// insertTeamThreadSQL creates care team $2's staff channel ($1) at $3.
const insertTeamThreadSQL = `INSERT INTO threads (id, kind, care_team_id, last_activity_at, created_at)
	VALUES ($1, 'team', $2, $3, $3) ON CONFLICT DO NOTHING`

// appendSQL takes thread $1's next sequence number and stores message $2
// (sender $3 of role $4, kind $5, sealed under key $6 as $7, urgent $8,
// client id $9, attachments $10, symptom report $11) at $12, with an
// encrypted message's sender device $13, sender sequence $14 and ciphertext
// SHA-256 $15 (NULL otherwise); it returns the sequence number and the
// thread's kind, team and patient.
const appendSQL = `WITH t AS (
	UPDATE threads SET last_seq = last_seq + 1, last_message_at = $12, last_activity_at = $12 WHERE id = $1
	RETURNING last_seq, kind, care_team_id, patient_id
), m AS (
	INSERT INTO messages (id, thread_id, seq, sender_id, sender_role, kind, key_id, body, urgent, client_id, attachment_ids,
		symptom_report_id, created_at, sender_device_id, sender_seq, ciphertext_sha256)
	SELECT $2, $1, t.last_seq, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM t
)
SELECT last_seq, kind, care_team_id, patient_id FROM t`

// markSQL raises user $2's watermarks in thread $1 to at least $3
// (delivered) and $4 (read), at $5.
const markSQL = `INSERT INTO thread_receipts (thread_id, user_id, delivered_up_to, read_up_to, updated_at)
	VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (thread_id, user_id) DO UPDATE SET
		delivered_up_to = GREATEST(thread_receipts.delivered_up_to, EXCLUDED.delivered_up_to),
		read_up_to = GREATEST(thread_receipts.read_up_to, EXCLUDED.read_up_to),
		updated_at = EXCLUDED.updated_at
	WHERE thread_receipts.delivered_up_to < EXCLUDED.delivered_up_to OR thread_receipts.read_up_to < EXCLUDED.read_up_to`

// ensureKeysSQL stores, for each patient $1[i] who exists and is not erased
// and has no data key yet, the key wrapped under server key $2[i] as $3[i]
// at $4, and returns those patients' keys: new, or existing as of the
// statement's start (an existing key costs no write). The patient row is
// locked FOR KEY SHARE, so an erasure in flight (which locks it FOR UPDATE)
// is waited for and then seen. A key a concurrent transaction committed
// after the statement began is in neither part: the caller asks again.
const ensureKeysSQL = `WITH ins AS (
	INSERT INTO patient_keys (patient_id, org_id, wrap_key_id, wrapped, created_at)
	SELECT x.p, pa.org_id, x.k, x.w, $4
	FROM unnest($1::uuid[], $2::text[], $3::bytea[]) AS x(p, k, w)
	JOIN patients pa ON pa.id = x.p AND pa.erased_at IS NULL
	FOR KEY SHARE OF pa
	ON CONFLICT (patient_id) DO NOTHING
	RETURNING patient_id, wrap_key_id, wrapped
)
SELECT patient_id, wrap_key_id, wrapped FROM ins
UNION ALL
SELECT k.patient_id, k.wrap_key_id, k.wrapped FROM patient_keys k
	JOIN patients pa ON pa.id = k.patient_id AND pa.erased_at IS NULL WHERE k.patient_id = ANY($1)`

// patientKeysSQL reads the wrapped data keys of patients $1.
const patientKeysSQL = `SELECT patient_id, wrap_key_id, wrapped FROM patient_keys WHERE patient_id = ANY($1)`
