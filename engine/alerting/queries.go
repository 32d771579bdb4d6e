package alerting

import "github.com/tendhealth/tend/engine/internal/presence"

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"upsertAlertSQL":               upsertAlertSQL,
	"updateAlertSQL":               updateAlertSQL,
	"insertAlertEventSQL":          insertAlertEventSQL,
	"insertFindingsSQL":            insertFindingsSQL,
	"insertEvalErrorsSQL":          insertEvalErrorsSQL,
	"patientOverridesSQL":          patientOverridesSQL,
	"recipientsSQL":                recipientsSQL,
	"insertNotificationsSQL":       insertNotificationsSQL,
	"markNotifiedSQL":              markNotifiedSQL,
	"markUndeliveredSQL":           markUndeliveredSQL,
	"decideRetakeSQL":              decideRetakeSQL,
	"triggerReadingSQL":            triggerReadingSQL,
	"insertRetakeSQL":              insertRetakeSQL,
	"patientDevicesSQL":            patientDevicesSQL,
	"insertPatientNotificationSQL": insertPatientNotificationSQL,
	"retakePatientSQL":             retakePatientSQL,
	"lockRetakeSQL":                lockRetakeSQL,
	"pendingRetakesSQL":            pendingRetakesSQL,
	"timeOutRetakeSQL":             timeOutRetakeSQL,
	"teamRotaSQL":                  teamRotaSQL,
	"scheduleEscalationsSQL":       scheduleEscalationsSQL,
	"lockEscalationsSQL":           lockEscalationsSQL,
	"dueEscalationsSQL":            dueEscalationsSQL,
	"teamStaffSQL":                 teamStaffSQL,
	"alertsNotifiedSQL":            alertsNotifiedSQL,
	"markEscalationsSQL":           markEscalationsSQL,
	"insertAlertEventsSQL":         insertAlertEventsSQL,
	"setEscalationDueSQL":          setEscalationDueSQL,
}

// upsertAlertSQL opens an alert for a rule's findings or adds them to the
// rule's unresolved alert, raising its urgency (and reopening a snoozed alert)
// when the new findings are more urgent.
const upsertAlertSQL = `INSERT INTO alerts (id, patient_id, care_team_id, rule_id, rule_version, urgency, urgency_rank, title,
	occurrences, first_reading_id, last_reading_id, first_observed_at, last_observed_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
ON CONFLICT (patient_id, rule_id) WHERE status <> 'resolved' DO UPDATE SET
	occurrences = alerts.occurrences + excluded.occurrences,
	last_reading_id = CASE WHEN excluded.last_observed_at >= alerts.last_observed_at THEN excluded.last_reading_id ELSE alerts.last_reading_id END,
	last_observed_at = greatest(alerts.last_observed_at, excluded.last_observed_at),
	first_observed_at = least(alerts.first_observed_at, excluded.first_observed_at),
	urgency = CASE WHEN excluded.urgency_rank > alerts.urgency_rank THEN excluded.urgency ELSE alerts.urgency END,
	urgency_rank = greatest(alerts.urgency_rank, excluded.urgency_rank),
	rule_version = excluded.rule_version,
	status = CASE WHEN alerts.status = 'snoozed' AND excluded.urgency_rank > alerts.urgency_rank THEN 'open' ELSE alerts.status END,
	snoozed_until = CASE WHEN alerts.status = 'snoozed' AND excluded.urgency_rank > alerts.urgency_rank THEN NULL ELSE alerts.snoozed_until END,
	updated_at = excluded.updated_at
RETURNING id, xmax = 0, status, urgency, urgency_rank, title, notified_at, notified_urgency_rank,
	(SELECT t.escalation->'repeat_intervals'->>alerts.urgency FROM care_teams t WHERE t.id = alerts.care_team_id)`

// updateAlertSQL adds suppressed (already reported) findings to the rule's
// unresolved alert, if there is one; it never opens an alert.
const updateAlertSQL = `UPDATE alerts SET occurrences = occurrences + $3,
	last_reading_id = CASE WHEN $6 >= last_observed_at THEN $4 ELSE last_reading_id END,
	last_observed_at = greatest(last_observed_at, $6),
	first_observed_at = least(first_observed_at, $5),
	updated_at = $7
WHERE patient_id = $1 AND rule_id = $2 AND status <> 'resolved'
RETURNING id, false, status, urgency, urgency_rank, title, notified_at, notified_urgency_rank,
	(SELECT t.escalation->'repeat_intervals'->>alerts.urgency FROM care_teams t WHERE t.id = alerts.care_team_id)`

// insertAlertEventSQL records one event (opened, updated) on an alert's history.
const insertAlertEventSQL = `INSERT INTO alert_events (alert_id, action, actor_id, at, detail) VALUES ($1, $2, $3, $4, $5)`

// insertFindingsSQL stores the findings of a group, one row per element of the parallel arrays
// $1..$7.
const insertFindingsSQL = `INSERT INTO alert_findings (alert_id, reading_id, rule_id, rule_version, urgency, late, observed_at, created_at)
		SELECT a, r, ru, v, u, l, o, $8 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::bool[], $7::timestamptz[])
		AS t(a, r, ru, v, u, l, o)`

// insertEvalErrorsSQL records the rules that failed to evaluate for patient $1, one row per element
// of $2..$5.
const insertEvalErrorsSQL = `INSERT INTO rule_eval_errors (rule_id, rule_version, patient_id, reading_id, error, at)
		SELECT r, v, $1, d, t, $6 FROM unnest($2::text[], $3::int[], $4::uuid[], $5::text[]) AS x(r, v, d, t)`

// patientOverridesSQL reads the personalised rule parameters of patient $1.
const patientOverridesSQL = `SELECT overrides FROM patient_params WHERE patient_id = $1`

// staffQuietHours are a staff member's (u) time zone and quiet hours: their own window in
// their own zone when they set one (it wins), else their organisation's (o) window in the
// organisation's zone (none when the organisation has none). The pair start–end is NULL together.
const staffQuietHours = `CASE WHEN u.quiet_start IS NULL THEN o.timezone ELSE u.timezone END,
			coalesce(u.quiet_start, o.quiet_start), coalesce(u.quiet_end, o.quiet_end)`

// recipientsSQL lists who is told of an alert: the clinicians and leads of care team $1 and the
// patient $2, each with their quiet hours (their organisation's when they set none), enabled devices
// and whether a staff member is online (a presence heartbeat fresher than $3; NULL: nobody is).
var recipientsSQL = `SELECT m.user_id, m.role, ` + staffQuietHours + `,
			coalesce(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}'),
			` + presence.OnlineSQL("m.user_id", "$3::timestamptz") + `
		FROM care_team_members m JOIN users u ON u.id = m.user_id AND u.disabled_at IS NULL
		LEFT JOIN organisations o ON o.id = u.org_id
		LEFT JOIN devices d ON d.user_id = m.user_id AND d.enabled
		WHERE m.care_team_id = $1 AND m.role IN ('clinician', 'lead') AND u.role IN ('clinician', 'admin') GROUP BY m.user_id, m.role, u.id, o.id
		UNION ALL
		SELECT u.id, 'patient', NULL, NULL, NULL, coalesce(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}'), false
		FROM users u LEFT JOIN devices d ON d.user_id = u.id AND d.enabled
		WHERE u.patient_id = $2 AND u.role = 'patient' AND u.disabled_at IS NULL GROUP BY u.id`

// insertNotificationsSQL stores a route's notifications, one row per element of the parallel arrays
// $1..$7.
const insertNotificationsSQL = `INSERT INTO notifications (id, user_id, type, alert_id, urgency, held_until, device_count, created_at)
		SELECT i, u, t, a, g, h, d, $8 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::timestamptz[], $7::int[])
			AS x(i, u, t, a, g, h, d)`

// markNotifiedSQL records that alerts $1 were notified at $2 at their current urgency.
const markNotifiedSQL = `UPDATE alerts SET notified_at = $2, notified_urgency_rank = urgency_rank WHERE id = ANY($1)`

// markUndeliveredSQL flags alerts $1 as undelivered (nobody could be told).
const markUndeliveredSQL = `UPDATE alerts SET undelivered = true WHERE id = ANY($1)`

// decideRetakeSQL records what a retake decided, unless something decided it first.
const decideRetakeSQL = `UPDATE retakes SET status = $2, retake_reading_id = $3, decided_at = $4 WHERE id = $1 AND status = 'pending'`

// triggerReadingSQL loads the reading a retake was asked for.
const triggerReadingSQL = `SELECT kind, value, coalesce(systolic, 0), coalesce(diastolic, 0), unit, observed_at
		FROM readings WHERE patient_id = (SELECT patient_id FROM retakes WHERE id = $1) AND observed_at = $2 AND id = $3`

// insertRetakeSQL sets a finding aside for a retake, or a symptom report's request to measure ($10: the report); a
// rule with one already waiting for the patient adds none.
const insertRetakeSQL = `INSERT INTO retakes (id, patient_id, rule_id, kind, reading_id, observed_at, retake_by, finding, created_at,
			symptom_report_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (patient_id, rule_id) WHERE status = 'pending' DO NOTHING`

// patientDevicesSQL lists the patient's users with their enabled devices.
const patientDevicesSQL = `SELECT u.id, coalesce(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}')
		FROM users u LEFT JOIN devices d ON d.user_id = u.id AND d.enabled
		WHERE u.patient_id = $1 AND u.role = 'patient' AND u.disabled_at IS NULL GROUP BY u.id`

// insertPatientNotificationSQL records a notification to one of the patient's users.
const insertPatientNotificationSQL = `INSERT INTO notifications (id, user_id, type, urgency, device_count, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`

// retakePatientSQL finds the patient of a retake.
const retakePatientSQL = `SELECT patient_id FROM retakes WHERE id = $1`

// lockRetakeSQL locks a retake that still waits.
const lockRetakeSQL = `SELECT id, rule_id, kind, reading_id, observed_at, finding, symptom_report_id IS NOT NULL FROM retakes
			WHERE id = $1 AND status = 'pending' FOR UPDATE`

// timeOutRetakeSQL marks a retake timed out.
const timeOutRetakeSQL = `UPDATE retakes SET status = 'timed_out', decided_at = $2 WHERE id = $1`

// teamRotaSQL reads care team $1's time zone, on-call rota and escalation policy.
const teamRotaSQL = `SELECT timezone, on_call, escalation FROM care_teams WHERE id = $1`

// scheduleEscalationsSQL sets the due time of step 1 of each open alert $1 that has taken no step
// yet to $2 (parallel arrays), unless an earlier one is pending: a page that repeats never postpones
// an escalation.
const scheduleEscalationsSQL = `UPDATE alerts a SET escalation_due_at = least(a.escalation_due_at, x.due)
		FROM unnest($1::uuid[], $2::timestamptz[]) AS x(id, due)
		WHERE a.id = x.id AND a.status = 'open' AND a.escalation_level = 0 AND NOT a.escalation_exhausted`

// escalationColumns are what an escalation step reads of an alert (a) and its team (t).
const escalationColumns = `a.id, a.status, a.urgency, a.care_team_id, a.patient_id, a.escalation_level, a.escalation_exhausted,
			t.escalation, t.timezone, t.on_call`

// lockEscalationsSQL locks alerts $1 in id order and reads what an escalation step needs, with
// each team's policy, zone and rota.
const lockEscalationsSQL = `SELECT ` + escalationColumns + `
		FROM alerts a JOIN care_teams t ON t.id = a.care_team_id WHERE a.id = ANY($1) ORDER BY a.id FOR UPDATE OF a`

// dueEscalationsSQL locks up to $2 open alerts whose next escalation step is due at $1, oldest
// first, skipping alerts another transaction holds, and reads what the step needs.
const dueEscalationsSQL = `SELECT ` + escalationColumns + `
		FROM alerts a JOIN care_teams t ON t.id = a.care_team_id
		WHERE a.status = 'open' AND a.escalation_due_at <= $1
		ORDER BY a.escalation_due_at LIMIT $2 FOR UPDATE OF a SKIP LOCKED`

// teamStaffSQL lists the clinicians and leads of care teams $1, each with their team, quiet hours
// (their organisation's when they set none) and enabled devices.
const teamStaffSQL = `SELECT m.care_team_id, m.user_id, m.role, ` + staffQuietHours + `,
			coalesce(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}')
		FROM care_team_members m JOIN users u ON u.id = m.user_id AND u.disabled_at IS NULL
		LEFT JOIN organisations o ON o.id = u.org_id
		LEFT JOIN devices d ON d.user_id = m.user_id AND d.enabled
		WHERE m.care_team_id = ANY($1) AND m.role IN ('clinician', 'lead') AND u.role IN ('clinician', 'admin')
		GROUP BY m.care_team_id, m.user_id, m.role, u.id, o.id
		ORDER BY m.care_team_id, m.user_id`

// alertsNotifiedSQL lists the users already notified of each of alerts $1.
const alertsNotifiedSQL = `SELECT DISTINCT alert_id, user_id FROM notifications WHERE alert_id = ANY($1) AND type = 'alert'`

// markEscalationsSQL records the step each alert $1 took ($2), whether it was the last ($3: exhausted)
// and when the next is due ($4, NULL: none), one per element of the parallel arrays, at $5; a step
// that notified marks the alert notified.
const markEscalationsSQL = `UPDATE alerts a SET escalation_level = x.step, escalation_exhausted = x.exhausted,
			escalation_due_at = x.due, notified_at = CASE WHEN x.exhausted THEN a.notified_at ELSE $5 END, updated_at = $5
		FROM unnest($1::uuid[], $2::int[], $3::bool[], $4::timestamptz[]) AS x(id, step, exhausted, due)
		WHERE a.id = x.id`

// insertAlertEventsSQL records events of the system (no actor) on alerts' histories at $4, one per
// element of the parallel arrays $1..$3.
const insertAlertEventsSQL = `INSERT INTO alert_events (alert_id, action, actor_id, at, detail)
		SELECT a, c, NULL, $4, d FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS x(a, c, d)`

// setEscalationDueSQL sets the due time of the next escalation step of alerts $1 to $2 (NULL: none).
const setEscalationDueSQL = `UPDATE alerts SET escalation_due_at = $2 WHERE id = ANY($1)`

// pendingRetakesSQL lists a patient's open retake requests whose deadline
// ($2, now) has not passed, soonest first (PendingRetakes).
const pendingRetakesSQL = `SELECT rule_id, kind, reading_id, retake_by FROM retakes
	WHERE patient_id = $1 AND status = 'pending' AND retake_by > $2 ORDER BY retake_by, rule_id`
