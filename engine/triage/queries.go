package triage

import (
	"github.com/tendhealth/tend/engine/internal/readings"
	"github.com/tendhealth/tend/engine/internal/scope"
)

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"listAlertsSQL":       listAlertsSQL,
	"getAlertSQL":         getAlertSQL,
	"alertFindingsSQL":    alertFindingsSQL,
	"alertReadingsSQL":    alertReadingsSQL,
	"alertEventsSQL":      alertEventsSQL,
	"lockAlertSQL":        lockAlertSQL,
	"ackAlertSQL":         ackAlertSQL,
	"alertByIDSQL":        alertByIDSQL,
	"insertAlertEventSQL": insertAlertEventSQL,
	"resolveAlertSQL":     resolveAlertSQL,
	"snoozeAlertSQL":      snoozeAlertSQL,
	"assigneeOKSQL":       assigneeOKSQL,
	"assignAlertSQL":      assignAlertSQL,
	"endSnoozeSQL":        endSnoozeSQL,
	"alertRecentSQL":      alertRecentSQL,
	"countAlertsSQL":      countAlertsSQL,
}

// alertColumns are the columns of alerts a that scanAlert reads.
const alertColumns = `a.id, a.patient_id, a.care_team_id, a.rule_id, a.rule_version, a.urgency, a.status, a.title, a.occurrences,
	a.created_at, a.updated_at, a.last_observed_at, a.last_reading_id, a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.undelivered,
	a.resolved_by, a.disposition, a.snoozed_until, a.assigned_to, a.escalation_level, a.escalation_exhausted`

// listAlertsSQL pages through the alerts the actor may see, most urgent first, filtered by status,
// urgency, patient, assignee ($10) and care team ($11).
var listAlertsSQL = `SELECT ` + alertColumns + queueColumns + ` FROM alerts a` + queueJoins + `
			WHERE ` + scope.AlertSQL + ` AND a.status = ANY($3) AND (cardinality($4::text[]) = 0 OR a.urgency = ANY($4))
			AND ($5::uuid IS NULL OR a.patient_id = $5)
			AND ($10::uuid IS NULL OR a.assigned_to = $10) AND ($11::uuid IS NULL OR a.care_team_id = $11)
			AND (a.urgency_rank < $8 OR (a.urgency_rank = $8 AND (a.created_at, a.id) > ($6, $7)))
			ORDER BY a.urgency_rank DESC, a.created_at, a.id LIMIT $9`

// getAlertSQL reads alert $3 if the actor ($1 role, $2 user) may see it.
var getAlertSQL = `SELECT ` + alertColumns + queueColumns + ` FROM alerts a` + queueJoins + ` WHERE a.id = $3 AND ` + scope.AlertSQL

// alertFindingsSQL lists the findings of alert $1.
const alertFindingsSQL = `SELECT rule_id, rule_version, urgency, reading_id, observed_at, late, created_at
			FROM alert_findings WHERE alert_id = $1 ORDER BY id LIMIT 500`

// alertReadingsSQL lists the readings behind alert $2's findings, for patient $1.
const alertReadingsSQL = `SELECT ` + readings.Columns + ` FROM readings r WHERE r.patient_id = $1 AND r.id IN (
				SELECT reading_id FROM alert_findings WHERE alert_id = $2 AND reading_id IS NOT NULL)
			ORDER BY r.observed_at, r.id LIMIT 500`

// alertEventsSQL lists the history of alert $1.
const alertEventsSQL = `SELECT e.action, e.actor_id, e.at, coalesce(e.detail->>'note', ''), u.name FROM alert_events e
			LEFT JOIN users u ON u.id = e.actor_id WHERE e.alert_id = $1 ORDER BY e.id LIMIT 500`

// lockAlertSQL reads and locks alert $3 if the actor ($1 role, $2 user) may see it.
var lockAlertSQL = `SELECT a.status, a.patient_id FROM alerts a WHERE a.id = $3 AND ` + scope.AlertSQL + ` FOR UPDATE`

// ackAlertSQL acknowledges alert $1 at $2 by user $3, cancelling its pending escalation step.
const ackAlertSQL = `UPDATE alerts SET status = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3,
				snoozed_until = NULL, escalation_due_at = NULL, updated_at = $2 WHERE id = $1`

// alertByIDSQL reads alert $1 (already known to be in scope).
const alertByIDSQL = `SELECT ` + alertColumns + ` FROM alerts a WHERE a.id = $1`

// insertAlertEventSQL records one event (acknowledged, noted) on an alert's history.
const insertAlertEventSQL = `INSERT INTO alert_events (alert_id, action, actor_id, at, detail) VALUES ($1, $2, $3, $4, $5)`

// resolveAlertSQL resolves alert $1 at $2 by user $3 with disposition $4 and note $5, cancelling its
// pending escalation step.
const resolveAlertSQL = `UPDATE alerts SET status = 'resolved', resolved_at = $2, resolved_by = $3, disposition = $4, note = $5,
				snoozed_until = NULL, escalation_due_at = NULL, updated_at = $2 WHERE id = $1`

// snoozeAlertSQL snoozes alert $1 (at $2) until $3.
const snoozeAlertSQL = `UPDATE alerts SET status = 'snoozed', snoozed_until = $3, updated_at = $2 WHERE id = $1`

// assigneeOKSQL tells whether user $2 is an enabled clinician or lead of alert $1's care team.
const assigneeOKSQL = `SELECT EXISTS (SELECT 1 FROM alerts a
				JOIN care_team_members m ON m.care_team_id = a.care_team_id AND m.user_id = $2 AND m.role IN ('clinician', 'lead')
				JOIN users u ON u.id = m.user_id AND u.disabled_at IS NULL AND u.role IN ('clinician', 'admin')
			WHERE a.id = $1)`

// assignAlertSQL assigns alert $1 (at $2) to user $3.
const assignAlertSQL = `UPDATE alerts SET assigned_to = $3, updated_at = $2 WHERE id = $1`

// endSnoozeSQL reopens alert $1 if it is snoozed until $2 or earlier, returning its patient.
const endSnoozeSQL = `UPDATE alerts SET status = 'open', snoozed_until = NULL, updated_at = $2
			WHERE id = $1 AND status = 'snoozed' AND snoozed_until <= $2 RETURNING patient_id`

// alertRecentSQL lists patient $1's readings of the kind of alert $2's readings, observed from $3 on
// (including those after the alert): the latest $4, oldest first.
const alertRecentSQL = `SELECT * FROM (SELECT ` + readings.Columns + ` FROM readings r
			WHERE r.patient_id = $1 AND r.observed_at >= $3
			AND r.kind = (SELECT r2.kind FROM readings r2 WHERE r2.patient_id = $1 AND r2.id IN (
				SELECT reading_id FROM alert_findings WHERE alert_id = $2 AND reading_id IS NOT NULL) LIMIT 1)
			ORDER BY r.observed_at DESC, r.id DESC LIMIT $4) x ORDER BY x.observed_at, x.id`

// countAlertsSQL counts the unresolved alerts the actor ($1 role, $2 user) may see, of care team $3
// if not null, per urgency and status.
var countAlertsSQL = `SELECT a.urgency, a.status, count(*) FROM alerts a
			WHERE a.status <> 'resolved' AND ` + scope.AlertSQL + ` AND ($3::uuid IS NULL OR a.care_team_id = $3)
			GROUP BY a.urgency, a.status`
