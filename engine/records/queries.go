package records

import "github.com/tendhealth/tend/engine/internal/readings"

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
