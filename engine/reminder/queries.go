package reminder

import "github.com/tendhealth/tend/engine/internal/scope"

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"patientZoneSQL":         patientZoneSQL,
	"insertScheduleSQL":      insertScheduleSQL,
	"listSchedulesSQL":       listSchedulesSQL,
	"scheduleInScopeSQL":     scheduleInScopeSQL,
	"updateScheduleSQL":      updateScheduleSQL,
	"deleteScheduleSQL":      deleteScheduleSQL,
	"dropFutureDosesSQL":     dropFutureDosesSQL,
	"cancelPendingDosesSQL":  cancelPendingDosesSQL,
	"lockActiveSQL":          lockActiveSQL,
	"activeSchedulesSQL":     activeSchedulesSQL,
	"insertDosesSQL":         insertDosesSQL,
	"doseJobsByKeySQL":       doseJobsByKeySQL,
	"claimMissedSQL":         claimMissedSQL,
	"setMissedCheckSQL":      setMissedCheckSQL,
	"lockDoseByKeySQL":       lockDoseByKeySQL,
	"patientUsersSQL":        patientUsersSQL,
	"insertNotificationsSQL": insertNotificationsSQL,
	"markRemindedSQL":        markRemindedSQL,
	"markRemindedAgainSQL":   markRemindedAgainSQL,
	"readingInWindowSQL":     readingInWindowSQL,
	"decideDoseSQL":          decideDoseSQL,
	"missedHistorySQL":       missedHistorySQL,
	"patientParamsSQL":       patientParamsSQL,
	"doseInScopeSQL":         doseInScopeSQL,
	"listDosesSQL":           listDosesSQL,
	"adherenceDosesSQL":      adherenceDosesSQL,
}

// patientZoneSQL reads patient $1's IANA time zone.
const patientZoneSQL = `SELECT timezone FROM patients WHERE id = $1`

// insertScheduleSQL stores a new schedule.
const insertScheduleSQL = `INSERT INTO schedules (id, patient_id, type, spec, paused, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, false, $5, $6, $6)`

// listSchedulesSQL lists patient $1's schedules, oldest first.
const listSchedulesSQL = `SELECT id, patient_id, spec, paused, created_at, updated_at FROM schedules
		WHERE patient_id = $1 AND deleted_at IS NULL ORDER BY created_at, id`

// scheduleInScopeSQL reads and locks schedule $1 with its patient's team and time zone, if the
// actor ($2 role, $3 patient, $4 user) may see the patient.
var scheduleInScopeSQL = `SELECT s.id, s.patient_id, s.spec, s.paused, s.created_at, s.updated_at, p.timezone
		FROM schedules s JOIN patients p ON p.id = s.patient_id
		WHERE s.id = $1 AND s.deleted_at IS NULL AND ` + scope.PatientSQL("p", "$2", "$3", "$4") + ` FOR UPDATE OF s`

// updateScheduleSQL replaces schedule $1's definition and paused flag.
const updateScheduleSQL = `UPDATE schedules SET spec = $2, type = $3, paused = $4, updated_at = $5 WHERE id = $1`

// deleteScheduleSQL marks schedule $1 deleted at $2 (kept for its doses' history).
const deleteScheduleSQL = `UPDATE schedules SET deleted_at = $2, updated_at = $2 WHERE id = $1`

// dropFutureDosesSQL removes schedule $1's doses not yet due at $2 and not yet reminded, returning
// their occurrence keys and recorded River jobs, to cancel.
const dropFutureDosesSQL = `DELETE FROM doses WHERE schedule_id = $1 AND status = 'pending' AND reminded_at IS NULL AND due_at > $2
		RETURNING occurrence_key, job_ids`

// cancelPendingDosesSQL cancels every pending dose of schedule $1 at $2 (the schedule is deleted).
const cancelPendingDosesSQL = `UPDATE doses SET status = 'cancelled', decided_at = $2 WHERE schedule_id = $1 AND status = 'pending'`

// activeSchedulesSQL pages through the ids of schedules that remind (not paused, not deleted), by
// id after $1, $2 at a time.
const activeSchedulesSQL = `SELECT id FROM schedules WHERE deleted_at IS NULL AND NOT paused AND id > $1 ORDER BY id LIMIT $2`

// lockActiveSQL reads and share-locks schedules $1 that still remind (not paused or deleted, their
// patient's processing not restricted), with their patient's time zone: a concurrent edit or pause
// is waited for and its outcome read.
const lockActiveSQL = `SELECT s.id, s.patient_id, s.spec, p.timezone FROM schedules s JOIN patients p ON p.id = s.patient_id
		WHERE s.id = ANY($1) AND s.deleted_at IS NULL AND NOT s.paused AND p.restricted_at IS NULL ORDER BY s.id FOR SHARE OF s`

// insertDosesSQL stores occurrences as pending doses (parallel arrays $1..$6: id, schedule, patient,
// key, due time, missed-dose check time; created at $7), skipping keys already stored, and returns
// the ids of those it stored.
const insertDosesSQL = `INSERT INTO doses (id, schedule_id, patient_id, occurrence_key, due_at, missed_check_at, created_at)
		SELECT i, s, p, k, d, m, $7
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::timestamptz[]) AS x(i, s, p, k, d, m)
		ON CONFLICT (occurrence_key) DO NOTHING RETURNING id`

// claimMissedSQL takes up to $3 pending doses whose missed-dose check is due at $1, oldest first,
// skipping doses another transaction holds, and leases them until $2 (a sweep that dies meanwhile
// leaves them to a later one); it returns their occurrence keys.
const claimMissedSQL = `UPDATE doses SET missed_check_at = $2 WHERE id IN (
			SELECT id FROM doses WHERE status = 'pending' AND missed_check_at <= $1
			ORDER BY missed_check_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING occurrence_key`

// setMissedCheckSQL sets when the missed-dose check of the pending dose of key $1 is due ($2, NULL:
// never).
const setMissedCheckSQL = `UPDATE doses SET missed_check_at = $2 WHERE occurrence_key = $1 AND status = 'pending'`

// doseJobsByKeySQL finds the reminder and missed-dose jobs of occurrence keys $1 that have not run
// yet, through River's index on job arguments.
const doseJobsByKeySQL = `SELECT j.id FROM unnest($1::text[]) AS k(key)
		JOIN LATERAL (SELECT id FROM river_job WHERE args @> jsonb_build_object('key', k.key)
			AND kind IN ('reminder.send', 'reminder.missed') AND state IN ('available', 'scheduled', 'retryable', 'pending')) j ON true`

// lockDoseByKeySQL reads and locks the dose of occurrence key $1 with its schedule and whether its
// patient's processing is restricted.
const lockDoseByKeySQL = `SELECT d.id, d.patient_id, d.status, d.due_at, d.reminded_at, d.reminded_again_at,
			s.spec, s.paused, s.deleted_at IS NOT NULL, p.restricted_at IS NOT NULL
		FROM doses d JOIN schedules s ON s.id = d.schedule_id JOIN patients p ON p.id = d.patient_id
		WHERE d.occurrence_key = $1 FOR UPDATE OF d`

// patientUsersSQL lists patient $1's enabled users with their quiet hours and enabled devices. A user
// who set no quiet hours of their own takes their organisation's, in the organisation's zone.
const patientUsersSQL = `SELECT u.id, CASE WHEN u.quiet_start IS NULL THEN o.timezone ELSE u.timezone END,
			coalesce(u.quiet_start, o.quiet_start), coalesce(u.quiet_end, o.quiet_end),
			coalesce(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}')
		FROM users u LEFT JOIN organisations o ON o.id = u.org_id LEFT JOIN devices d ON d.user_id = u.id AND d.enabled
		WHERE u.patient_id = $1 AND u.role = 'patient' AND u.disabled_at IS NULL GROUP BY u.id, o.id`

// insertNotificationsSQL records reminder notifications ($1 ids, $2 users, $3 device counts) of
// urgency $4 and reminder kind $5 at $6.
const insertNotificationsSQL = `INSERT INTO notifications (id, user_id, type, urgency, reminder_kind, device_count, created_at)
		SELECT i, u, 'reminder', $4, $5, d, $6 FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS x(i, u, d)`

// markRemindedSQL stamps dose $1's first reminder at $2.
const markRemindedSQL = `UPDATE doses SET reminded_at = $2 WHERE id = $1`

// markRemindedAgainSQL stamps dose $1's second reminder at $2.
const markRemindedAgainSQL = `UPDATE doses SET reminded_again_at = $2 WHERE id = $1`

// readingInWindowSQL finds the first current reading of patient $1 and kind $2 observed in [$3, $4].
const readingInWindowSQL = `SELECT min(observed_at) FROM readings
		WHERE patient_id = $1 AND kind = $2 AND observed_at BETWEEN $3 AND $4 AND entered_in_error_at IS NULL`

// decideDoseSQL records dose $1's outcome $2 decided at $3, taken (or measured) at $4, by $5.
const decideDoseSQL = `UPDATE doses SET status = $2, decided_at = $3, taken_at = $4, decided_by = $5 WHERE id = $1`

// missedHistorySQL lists patient $1's missed doses decided from $2 on, other than dose $3, for
// the event rules.
const missedHistorySQL = `SELECT d.id, d.schedule_id, s.type, coalesce(s.spec->>'kind', ''), d.decided_at
		FROM doses d JOIN schedules s ON s.id = d.schedule_id
		WHERE d.patient_id = $1 AND d.status = 'missed' AND d.decided_at >= $2 AND d.id <> $3`

// patientParamsSQL reads patient $1's personalised rule parameters.
const patientParamsSQL = `SELECT overrides FROM patient_params WHERE patient_id = $1`

// doseInScopeSQL reads and locks dose $1 with its schedule, if the actor ($2 role, $3 patient,
// $4 user) may see its patient.
var doseInScopeSQL = `SELECT d.id, d.schedule_id, d.patient_id, d.occurrence_key, d.due_at, d.status, d.reminded_at,
			d.decided_at, d.taken_at, s.spec
		FROM doses d JOIN schedules s ON s.id = d.schedule_id JOIN patients p ON p.id = d.patient_id
		WHERE d.id = $1 AND ` + scope.PatientSQL("p", "$2", "$3", "$4") + ` FOR UPDATE OF d`

// listDosesSQL lists patient $1's doses due in [$2, $3), of status $4 (any when NULL), by due
// time, at most $5.
const listDosesSQL = `SELECT d.id, d.schedule_id, d.patient_id, d.occurrence_key, d.due_at, d.status, d.reminded_at,
			d.decided_at, d.taken_at, s.spec
		FROM doses d JOIN schedules s ON s.id = d.schedule_id
		WHERE d.patient_id = $1 AND d.due_at >= $2 AND d.due_at < $3 AND ($4::text IS NULL OR d.status = $4)
		ORDER BY d.due_at, d.id LIMIT $5`

// adherenceDosesSQL lists patient $1's doses due in [$2, $3], cancelled ones left out.
const adherenceDosesSQL = `SELECT schedule_id, status, due_at FROM doses
		WHERE patient_id = $1 AND due_at >= $2 AND due_at <= $3 AND status <> 'cancelled'`
