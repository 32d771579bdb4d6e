package records

import (
	"github.com/tendhealth/tend/engine/internal/readings"
	"github.com/tendhealth/tend/engine/internal/scope"
)

// queries lists every statement of this file, so that a test prepares each
// against the migrated schema.
var queries = map[string]string{
	"patientSQL":     patientSQL,
	"membersSQL":     membersSQL,
	"readingsSQL":    readingsSQL,
	"alertsSQL":      alertsSQL,
	"attachmentsSQL": attachmentsSQL,
	"messagesSQL":    messagesSQL,
	"schedulesSQL":   schedulesSQL,
	"dosesSQL":       dosesSQL,
	"accessesSQL":    accessesSQL,

	"eraseLockSQL":           eraseLockSQL,
	"eraseKeySQL":            eraseKeySQL,
	"eraseMessagesSQL":       eraseMessagesSQL,
	"eraseNotesSQL":          eraseNotesSQL,
	"eraseAttachmentsSQL":    eraseAttachmentsSQL,
	"eraseReadingSourcesSQL": eraseReadingSourcesSQL,
	"eraseReadingsSQL":       eraseReadingsSQL,
	"keptReadingsSQL":        keptReadingsSQL,
	"eraseTokensSQL":         eraseTokensSQL,
	"erasePushDevicesSQL":    erasePushDevicesSQL,
	"eraseE2EEDevicesSQL":    eraseE2EEDevicesSQL,
	"eraseUsersSQL":          eraseUsersSQL,
	"eraseSchedulesSQL":      eraseSchedulesSQL,
	"eraseDosesSQL":          eraseDosesSQL,
	"erasePatientSQL":        erasePatientSQL,
}

const patientSQL = `SELECT p.id, p.display_name, coalesce(p.external_id, ''), p.timezone, p.programs, p.enrolled_at, p.created_at,
    t.id, t.name
FROM patients p JOIN care_teams t ON t.id = p.care_team_id WHERE p.id = $1 AND p.org_id = coalesce($2::uuid, p.org_id)`

const membersSQL = `SELECT u.id, u.name, m.role FROM care_team_members m JOIN users u ON u.id = m.user_id
WHERE m.care_team_id = $1 ORDER BY u.name, u.id`

const readingsSQL = `SELECT ` + readings.Columns + ` FROM readings r WHERE r.patient_id = $1 ORDER BY r.observed_at, r.id`

const alertsSQL = `SELECT id, rule_id, urgency, status, title, created_at, updated_at, resolved_at
FROM alerts WHERE patient_id = $1 ORDER BY created_at, id`

const attachmentsSQL = `SELECT a.id, a.thread_id, a.content_type, a.size, a.sha256, a.duration_ms, a.created_at
FROM attachments a JOIN threads t ON t.id = a.thread_id
WHERE t.patient_id = $1 AND t.kind = ANY($2) ORDER BY a.created_at, a.id`

const messagesSQL = `SELECT m.id, m.thread_id, t.kind, t.care_team_id, m.seq, m.sender_id, m.sender_role, m.kind,
    m.key_id, m.body, m.urgent, m.attachment_ids, m.created_at
FROM messages m JOIN threads t ON t.id = m.thread_id
WHERE t.patient_id = $1 AND t.kind = ANY($2) ORDER BY m.created_at, t.kind, m.seq`

const schedulesSQL = `SELECT id, spec, paused, deleted_at, created_at, updated_at
FROM schedules WHERE patient_id = $1 ORDER BY created_at, id`

const dosesSQL = `SELECT id, schedule_id, due_at, status, decided_at, taken_at
FROM doses WHERE patient_id = $1 AND status <> 'pending' ORDER BY due_at, id`

// accessesSQL: who read or exported the patient's data.
const accessesSQL = `SELECT id, at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome
FROM audit_entries
WHERE patient_id = $1 AND (action LIKE '%.read' OR action LIKE '%.list' OR action LIKE '%.export')
ORDER BY id`

// eraseLockSQL locks patient $1 if the actor (role $2, user $3) is an admin
// of their organisation, and reads when they were erased and their
// organisation's reading retention in days (NULL: for ever). FOR UPDATE
// waits out, and then blocks, a data key being made for them.
var eraseLockSQL = `SELECT p.erased_at, o.retain_readings_days FROM patients p JOIN organisations o ON o.id = p.org_id
WHERE p.id = $1 AND ` + scope.AdminSQL("p.org_id", "$2", "$3") + ` FOR UPDATE OF p`

// eraseKeySQL destroys patient $1's data key.
const eraseKeySQL = `WITH d AS (DELETE FROM patient_keys WHERE patient_id = $1 RETURNING 1) SELECT count(*) FROM d`

// eraseMessagesSQL overwrites the bodies of patient $1's threads' messages
// that were sealed under a server key (before the patient had a data key,
// or a broadcast's copy) with nothing, under the patient's destroyed key id,
// and counts every message of those threads (the rest are under that key).
const eraseMessagesSQL = `WITH u AS (
	UPDATE messages m SET body = '\x'::bytea, key_id = 'p:' || $1::text
	FROM threads t WHERE t.id = m.thread_id AND t.patient_id = $1 AND m.key_id NOT LIKE 'p:%'
	RETURNING 1
) SELECT (SELECT count(*) FROM messages m JOIN threads t ON t.id = m.thread_id WHERE t.patient_id = $1)`

// eraseNotesSQL removes the free text of patient $1's symptom reports: a
// note sealed under a server key, or stored in the clear before notes were
// sealed, is overwritten like a message body; symptoms keep their codes and
// severities. It counts the reports that had a note.
const eraseNotesSQL = `WITH u AS (
	UPDATE symptom_reports SET
		note_sealed = CASE WHEN note_key_id LIKE 'p:%' THEN note_sealed ELSE '\x'::bytea END,
		note_key_id = 'p:' || $1::text,
		note = NULL,
		symptoms = (SELECT coalesce(jsonb_agg(e - 'text'), '[]'::jsonb) FROM jsonb_array_elements(symptoms) e)
	WHERE patient_id = $1
	RETURNING 1
) SELECT (SELECT count(*) FROM symptom_reports WHERE patient_id = $1 AND (note_key_id IS NOT NULL OR note IS NOT NULL))`

// eraseAttachmentsSQL overwrites the stored bytes of patient $1's threads'
// attachments that were sealed under a server key, and counts every
// attachment of those threads.
const eraseAttachmentsSQL = `WITH u AS (
	UPDATE attachment_blobs b SET data = '\x'::bytea, key_id = 'p:' || $1::text
	FROM attachments a JOIN threads t ON t.id = a.thread_id
	WHERE a.id = b.attachment_id AND t.patient_id = $1 AND b.key_id NOT LIKE 'p:%'
	RETURNING 1
) SELECT (SELECT count(*) FROM attachments a JOIN threads t ON t.id = a.thread_id WHERE t.patient_id = $1)`

// eraseReadingSourcesSQL deletes the source ids of patient $1's readings
// observed before $2 (none when NULL).
const eraseReadingSourcesSQL = `DELETE FROM reading_sources WHERE patient_id = $1 AND observed_at < $2::timestamptz`

// eraseReadingsSQL deletes patient $1's readings observed before $2 (none
// when NULL) and counts them.
const eraseReadingsSQL = `WITH d AS (DELETE FROM readings WHERE patient_id = $1 AND observed_at < $2::timestamptz RETURNING 1)
SELECT count(*) FROM d`

// keptReadingsSQL counts patient $1's readings (run after
// eraseReadingsSQL in its transaction: those left).
const keptReadingsSQL = `SELECT count(*) FROM readings WHERE patient_id = $1`

// eraseTokensSQL revokes, at $2, the tokens of patient $1's users.
const eraseTokensSQL = `WITH u AS (
	UPDATE tokens k SET revoked_at = $2 FROM users u
	WHERE u.id = k.user_id AND u.patient_id = $1 AND k.revoked_at IS NULL RETURNING 1
) SELECT count(*) FROM u`

// erasePushDevicesSQL removes the push registrations of patient $1's users:
// deleted, or — when a delivery record names one — disabled with its
// address and keys cleared. It counts them.
const erasePushDevicesSQL = `WITH x AS (
	SELECT d.id, EXISTS (SELECT 1 FROM deliveries y WHERE y.device_id = d.id) AS used
	FROM devices d JOIN users u ON u.id = d.user_id WHERE u.patient_id = $1
), del AS (
	DELETE FROM devices d USING x WHERE d.id = x.id AND NOT x.used RETURNING 1
), upd AS (
	UPDATE devices d SET enabled = false, disabled_reason = 'erased', address = 'erased:' || d.id::text,
		p256dh = NULL, auth = NULL, topic = NULL
	FROM x WHERE d.id = x.id AND x.used RETURNING 1
) SELECT (SELECT count(*) FROM del) + (SELECT count(*) FROM upd)`

// eraseE2EEDevicesSQL revokes at $2 the end-to-end encryption keys of
// patient $1's users: deleted, or — when a message names the device as its
// sender — revoked with their label cleared. It counts them.
const eraseE2EEDevicesSQL = `WITH x AS (
	SELECT d.id, EXISTS (SELECT 1 FROM messages m WHERE m.sender_device_id = d.id) AS used
	FROM e2ee_devices d JOIN users u ON u.id = d.user_id WHERE u.patient_id = $1
), del AS (
	DELETE FROM e2ee_devices d USING x WHERE d.id = x.id AND NOT x.used RETURNING 1
), upd AS (
	UPDATE e2ee_devices d SET revoked_at = coalesce(d.revoked_at, $2), label = ''
	FROM x WHERE d.id = x.id AND x.used RETURNING 1
) SELECT (SELECT count(*) FROM del) + (SELECT count(*) FROM upd)`

// eraseUsersSQL disables at $2 patient $1's users (the patient's and their
// devices'), renamed and unlinked from any identity provider.
const eraseUsersSQL = `WITH u AS (
	UPDATE users SET disabled_at = coalesce(disabled_at, $2), name = 'Erased', oidc_subject = NULL,
		timezone = NULL, quiet_start = NULL, quiet_end = NULL
	WHERE patient_id = $1 RETURNING 1
) SELECT count(*) FROM u`

// eraseSchedulesSQL ends at $2 patient $1's reminder schedules.
const eraseSchedulesSQL = `WITH u AS (
	UPDATE schedules SET deleted_at = $2, updated_at = $2 WHERE patient_id = $1 AND deleted_at IS NULL RETURNING 1
) SELECT count(*) FROM u`

// eraseDosesSQL cancels at $2 patient $1's pending doses.
const eraseDosesSQL = `WITH u AS (
	UPDATE doses SET status = 'cancelled', decided_at = $2 WHERE patient_id = $1 AND status = 'pending' RETURNING 1
) SELECT count(*) FROM u`

// erasePatientSQL pseudonymises patient $1 as $3 and marks them erased
// (and restricted) at $2.
const erasePatientSQL = `UPDATE patients SET display_name = $3, external_id = NULL, erased_at = $2,
	restricted_at = coalesce(restricted_at, $2) WHERE id = $1`
