package delivery

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"messageUsersSQL":         messageUsersSQL,
	"insertMessageNotesSQL":   insertMessageNotesSQL,
	"lockQuietHoursSQL":       lockQuietHoursSQL,
	"countHeldSQL":            countHeldSQL,
	"insertCatchupSQL":        insertCatchupSQL,
	"claimHeldSQL":            claimHeldSQL,
	"enabledDevicesSQL":       enabledDevicesSQL,
	"rescheduleHeldSQL":       rescheduleHeldSQL,
	"dueHeldUsersSQL":         dueHeldUsersSQL,
	"loadDeliveriesSQL":       loadDeliveriesSQL,
	"insertDeliveriesSQL":     insertDeliveriesSQL,
	"disableDeviceSQL":        disableDeviceSQL,
	"markAlertUndeliveredSQL": markAlertUndeliveredSQL,
}

// userQuietHours are a user's (u) time zone and quiet hours: their own window in
// their own zone when they set one (it wins), else their organisation's (o) window in the
// organisation's zone (none when the organisation has none). The pair start–end is NULL together.
const userQuietHours = `CASE WHEN u.quiet_start IS NULL THEN o.timezone ELSE u.timezone END,
			coalesce(u.quiet_start, o.quiet_start), coalesce(u.quiet_end, o.quiet_end)`

// lockQuietHoursSQL reads and locks user $1's quiet hours (their organisation's when they set none),
// so that one catch-up runs per user at a time.
const lockQuietHoursSQL = `SELECT ` + userQuietHours + `
		FROM users u LEFT JOIN organisations o ON o.id = u.org_id WHERE u.id = $1 FOR UPDATE OF u`

// countHeldSQL counts the held notifications of user $1 not yet summarised: distinct alerts and
// messages, medium-urgency items, and messages.
const countHeldSQL = `SELECT count(DISTINCT coalesce(alert_id, id)), count(*) FILTER (WHERE urgency = 'medium'),
			count(*) FILTER (WHERE message_id IS NOT NULL)
			FROM notifications WHERE user_id = $1 AND held_until IS NOT NULL AND catchup_id IS NULL`

// insertCatchupSQL stores the catch-up notification that summarises a user's held items.
const insertCatchupSQL = `INSERT INTO notifications (id, user_id, type, urgency, item_count, device_count, created_at, message_count)
			VALUES ($1, $2, 'catchup', $3, $4, (SELECT count(*) FROM devices WHERE user_id = $2 AND enabled), $5, $6)`

// claimHeldSQL attaches user $1's held notifications to catch-up $2.
const claimHeldSQL = `UPDATE notifications SET catchup_id = $2 WHERE user_id = $1 AND held_until IS NOT NULL AND catchup_id IS NULL`

// enabledDevicesSQL lists the enabled devices of user $1.
const enabledDevicesSQL = `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM devices WHERE user_id = $1 AND enabled`

// rescheduleHeldSQL moves user $1's held notifications to the new end of their quiet hours ($2).
const rescheduleHeldSQL = `UPDATE notifications SET held_until = $2 WHERE user_id = $1 AND held_until IS NOT NULL AND catchup_id IS NULL`

// dueHeldUsersSQL finds users with held notifications whose hold ended before $1 (the sweep's
// safety net).
const dueHeldUsersSQL = `SELECT DISTINCT user_id FROM notifications
		WHERE held_until IS NOT NULL AND catchup_id IS NULL AND held_until < $1 LIMIT 1000`

// loadDeliveriesSQL loads, for each (notification, device) pair of $1 and $2, what a push needs and
// the pair's delivery history, unless $3 says the pair's job runs for the first time (then it has
// none, and the lookup is skipped).
const loadDeliveriesSQL = `SELECT x.i, d.id, d.platform, d.address, d.p256dh, d.auth, d.topic, d.sandbox, d.enabled,
			n.type, n.urgency, n.alert_id, n.created_at, coalesce(n.item_count, 0), s.sent, s.attempts,
			coalesce(n.reminder_kind, ''), n.message_id, n.thread_id, coalesce(n.message_count, 0)
		FROM unnest($1::uuid[], $2::uuid[], $3::bool[]) WITH ORDINALITY AS x(nid, did, fresh, i)
		JOIN LATERAL (SELECT * FROM notifications WHERE id = x.nid LIMIT 1) n ON true
		JOIN LATERAL (SELECT * FROM devices WHERE id = x.did LIMIT 1) d ON true
		CROSS JOIN LATERAL (SELECT coalesce(bool_or(outcome = 'sent'), false) AS sent, count(*) AS attempts
			FROM deliveries WHERE NOT x.fresh AND notification_id = x.nid AND device_id = x.did) s`

// insertDeliveriesSQL records delivery attempts and stamps the devices that succeeded (at most once
// a minute per device).
const insertDeliveriesSQL = `WITH ins AS (
			INSERT INTO deliveries (notification_id, device_id, job_id, attempt, outcome, provider_status, provider_id, error_code, created_at)
			SELECT n, d, j, a, o, nullif(s, 0), nullif(p, ''), nullif(c, ''), t
			FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::int[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[])
				AS x(n, d, j, a, o, s, p, c, t)
			ON CONFLICT (notification_id, device_id) WHERE outcome = 'sent' DO NOTHING
			RETURNING device_id, outcome, created_at),
		ok AS (SELECT device_id, max(created_at) AS at FROM ins WHERE outcome = 'sent' GROUP BY device_id),
		due AS (SELECT v.id, ok.at FROM devices v JOIN ok ON ok.device_id = v.id
			WHERE v.last_success_at IS NULL OR v.last_success_at < ok.at - interval '1 minute'
			FOR UPDATE OF v SKIP LOCKED)
		UPDATE devices v SET last_success_at = due.at FROM due WHERE v.id = due.id`

// disableDeviceSQL disables device $1 with reason $2.
const disableDeviceSQL = `UPDATE devices SET enabled = false, disabled_reason = $2, updated_at = $3 WHERE id = $1`

// markAlertUndeliveredSQL flags critical alert $1 as undelivered once every device of every alert
// notification has failed.
const markAlertUndeliveredSQL = `UPDATE alerts a SET undelivered = true
		WHERE a.id = $1 AND a.urgency = 'critical' AND NOT a.undelivered
		AND NOT EXISTS (SELECT 1 FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE n.alert_id = a.id AND n.type = 'alert' AND d.outcome = 'sent')
		AND (SELECT count(DISTINCT (d.notification_id, d.device_id)) FROM deliveries d JOIN notifications n ON n.id = d.notification_id
			WHERE n.alert_id = a.id AND n.type = 'alert' AND d.outcome IN ('failed', 'unregistered', 'undeliverable'))
		>= (SELECT coalesce(sum(n.device_count), 0) FROM notifications n WHERE n.alert_id = a.id AND n.type = 'alert')`

// messageUsersSQL reads the enabled users of $1 with their quiet hours (their organisation's when
// they set none) and enabled devices.
const messageUsersSQL = `SELECT u.id, ` + userQuietHours + `,
			ARRAY(SELECT d.id FROM devices d WHERE d.user_id = u.id AND d.enabled ORDER BY d.id)
		FROM users u LEFT JOIN organisations o ON o.id = u.org_id WHERE u.id = ANY($1) AND u.disabled_at IS NULL`

// insertMessageNotesSQL records the notifications of message $1 in thread $2 ($3 ids, $4 users, $5
// device counts, $6 held until, NULL when sent at once) of type $7 and urgency $8 at $9; a user
// already notified of the message is skipped. It returns the ids inserted.
const insertMessageNotesSQL = `INSERT INTO notifications (id, user_id, type, urgency, device_count, held_until, created_at,
			message_id, thread_id)
		SELECT i, u, $7, $8, d, h, $9, $1, $2 FROM unnest($3::uuid[], $4::uuid[], $5::int[], $6::timestamptz[]) AS x(i, u, d, h)
		ON CONFLICT (message_id, user_id) WHERE message_id IS NOT NULL DO NOTHING
		RETURNING id`
