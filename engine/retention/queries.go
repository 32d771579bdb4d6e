package retention

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"orgPeriodsSQL":       orgPeriodsSQL,
	"orgPatientsSQL":      orgPatientsSQL,
	"orgThreadsSQL":       orgThreadsSQL,
	"orgUsersSQL":         orgUsersSQL,
	"deleteReadingsSQL":   deleteReadingsSQL,
	"deleteMessagesSQL":   deleteMessagesSQL,
	"lockAttachmentsSQL":  lockAttachmentsSQL,
	"deleteAttachmentSQL": deleteAttachmentSQL,
	"deleteDeliveriesSQL": deleteDeliveriesSQL,
	"countReadingsSQL":    countReadingsSQL,
	"countMessagesSQL":    countMessagesSQL,
	"countAttachmentsSQL": countAttachmentsSQL,
	"countDeliveriesSQL":  countDeliveriesSQL,
}

// orgPeriodsSQL lists every organisation with its four retention periods in
// days (NULL: kept for ever), in id order.
const orgPeriodsSQL = `SELECT id, retain_readings_days, retain_messages_days, retain_attachments_days, retain_deliveries_days
		FROM organisations ORDER BY id`

// The owners of an organisation's rows, paged in id order after $2, at most
// $3: its patients (readings), its threads (messages and attachments: a
// care team's threads, and the direct threads of its staff) and its users
// (notifications and their deliveries).

// orgPatientsSQL pages through organisation $1's patients.
const orgPatientsSQL = `SELECT id FROM patients WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`

// orgThreadsSQL pages through organisation $1's threads.
const orgThreadsSQL = `SELECT t.id FROM threads t WHERE t.id > $2 AND ` + orgThread + ` ORDER BY t.id LIMIT $3`

// orgThread holds for thread t of organisation $1: one of its care teams'
// (a patient's, a team's), or a direct thread of its staff (both users are
// of one organisation).
const orgThread = `(t.care_team_id IN (SELECT id FROM care_teams WHERE org_id = $1)
		OR t.user_a IN (SELECT id FROM users WHERE org_id = $1))`

// orgUsersSQL pages through organisation $1's users.
const orgUsersSQL = `SELECT id FROM users WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`

// unfinishedJob are the River job states of a job that has not ended.
const unfinishedJob = `('available', 'pending', 'retryable', 'running', 'scheduled')`

// doneNotification holds for notification n once nothing will happen to
// it: not held for a catch-up (held_until set, catchup_id not yet) and no
// delivery job that has not ended (River's index on job arguments finds
// them).
const doneNotification = `(n.held_until IS NULL OR n.catchup_id IS NOT NULL)
		AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.args @> jsonb_build_object('notification_id', n.id)
			AND j.kind = 'notify.deliver' AND j.state IN ` + unfinishedJob + `)`

// finishedNotification is doneNotification for a notification no stored
// notification names as its catch-up: a catch-up goes after the ones it
// summarised (they are older, so an earlier batch takes them).
const finishedNotification = doneNotification + `
		AND NOT EXISTS (SELECT 1 FROM notifications h WHERE h.catchup_id = n.id)`

// expiredMessage holds for message m once it may go: no notification of it
// is unfinished, and its push (after the hold) is not still to run.
const expiredMessage = `NOT EXISTS (SELECT 1 FROM notifications n WHERE n.message_id = m.id AND NOT (` + doneNotification + `))
		AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.args @> jsonb_build_object('message_id', m.id)
			AND j.kind = 'message.push' AND j.state IN ` + unfinishedJob + `)`

// deleteReadingsSQL deletes at most $3 readings of patients $1 observed before $2, each patient's
// oldest first through the primary key (patient_id, observed_at, id) of each month's partition,
// with their source ids (reading_sources, found by its key), and returns how many.
const deleteReadingsSQL = `WITH doomed AS (
			SELECT r.patient_id, r.observed_at, r.id FROM unnest($1::uuid[]) AS p(id)
			CROSS JOIN LATERAL (SELECT patient_id, observed_at, id FROM readings
				WHERE patient_id = p.id AND observed_at < $2 ORDER BY observed_at LIMIT $3) r
			LIMIT $3),
		del AS (DELETE FROM readings r USING doomed d
			WHERE r.patient_id = d.patient_id AND r.observed_at = d.observed_at AND r.id = d.id AND r.observed_at < $2
			RETURNING r.patient_id, r.id, r.source_id),
		sources AS (DELETE FROM reading_sources s USING del
			WHERE s.patient_id = del.patient_id AND s.source_id = del.source_id AND s.reading_id = del.id)
		SELECT count(*) FROM del`

// deleteMessagesSQL deletes at most $3 messages of threads $1 created before $2, each thread's
// oldest first (messages_thread_created_idx), and returns how many. Their finished notifications
// stay (delivery records have their own period) without the message (message_id NULL); the
// thread keeps its sequence numbers, last_seq and receipts.
const deleteMessagesSQL = `WITH doomed AS (
			SELECT m.id FROM unnest($1::uuid[]) AS t(id)
			CROSS JOIN LATERAL (SELECT m.id FROM messages m WHERE m.thread_id = t.id AND m.created_at < $2
				AND ` + expiredMessage + `
				ORDER BY m.created_at, m.id LIMIT $3) m
			LIMIT $3),
		unlinked AS (UPDATE notifications SET message_id = NULL WHERE message_id IN (SELECT id FROM doomed)),
		del AS (DELETE FROM messages WHERE id IN (SELECT id FROM doomed) RETURNING id)
		SELECT count(*) FROM del`

// lockAttachmentsSQL locks at most $3 attachments of threads $1 uploaded before $2
// (attachments_thread_idx), for deleting their bytes and then their rows.
const lockAttachmentsSQL = `SELECT a.id FROM unnest($1::uuid[]) AS t(id)
		CROSS JOIN LATERAL (SELECT a.id FROM attachments a WHERE a.thread_id = t.id AND a.created_at < $2
			ORDER BY a.id LIMIT $3 FOR UPDATE OF a SKIP LOCKED) a
		LIMIT $3`

// deleteAttachmentSQL deletes the rows of attachments $1, whose bytes are gone.
const deleteAttachmentSQL = `DELETE FROM attachments WHERE id = ANY($1)`

// deleteDeliveriesSQL deletes at most $3 finished notifications of users $1 created before $2,
// each user's oldest first (notifications_user_created_idx), with their delivery attempts, and
// returns how many notifications.
const deleteDeliveriesSQL = `WITH doomed AS (
			SELECT n.id FROM unnest($1::uuid[]) AS u(id)
			CROSS JOIN LATERAL (SELECT n.id FROM notifications n WHERE n.user_id = u.id AND n.created_at < $2
				AND ` + finishedNotification + `
				ORDER BY n.created_at LIMIT $3) n
			LIMIT $3),
		attempts AS (DELETE FROM deliveries WHERE notification_id IN (SELECT id FROM doomed)),
		del AS (DELETE FROM notifications WHERE id IN (SELECT id FROM doomed) RETURNING id)
		SELECT count(*) FROM del`

// The dry run's counts: what a run would delete now in organisation $1, before $2.

// countReadingsSQL counts the organisation's readings observed before $2.
const countReadingsSQL = `SELECT count(*) FROM patients p JOIN readings r ON r.patient_id = p.id
		WHERE p.org_id = $1 AND r.observed_at < $2`

// countMessagesSQL counts the organisation's messages created before $2 that may go.
const countMessagesSQL = `SELECT count(*) FROM threads t JOIN messages m ON m.thread_id = t.id
		WHERE ` + orgThread + ` AND m.created_at < $2 AND ` + expiredMessage

// countAttachmentsSQL counts the organisation's attachments uploaded before $2.
const countAttachmentsSQL = `SELECT count(*) FROM threads t JOIN attachments a ON a.thread_id = t.id
		WHERE ` + orgThread + ` AND a.created_at < $2`

// countDeliveriesSQL counts the organisation's finished notifications created before $2 (a
// catch-up whose summarised notifications all go too counts: a run takes it after them).
const countDeliveriesSQL = `SELECT count(*) FROM users u JOIN notifications n ON n.user_id = u.id
		WHERE u.org_id = $1 AND n.created_at < $2 AND ` + doneNotification + `
		AND NOT EXISTS (SELECT 1 FROM notifications h WHERE h.catchup_id = n.id AND h.created_at >= $2)`
