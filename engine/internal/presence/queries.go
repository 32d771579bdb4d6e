package presence

import "github.com/tendhealth/tend/engine/internal/scope"

// This file holds every SQL statement the package runs, by name
// (TestQueriesPrepare prepares each against the migrated schema).

// queries lists every statement of this file by name.
var queries = map[string]string{
	"connectSQL":      connectSQL,
	"disconnectSQL":   disconnectSQL,
	"beatSQL":         beatSQL,
	"sweepSQL":        sweepSQL,
	"leaveSQL":        leaveSQL,
	"stateSQL":        stateSQL,
	"setSQL":          setSQL,
	"participantsSQL": participantsSQL,
	"availableSQL":    availableSQL,
	"audienceSQL":     audienceSQL,
	"teamsSQL":        teamsSQL,
	"patientUsersSQL": patientUsersSQL,
	"usersSQL":        usersSQL,
}

// usersSQL reads the presence settings, last seen time and whether a row
// fresher than $2 holds them online, of each of users $1.
var usersSQL = `SELECT u.id, coalesce(up.hidden, false), coalesce(up.away, false), up.last_seen_at,
	` + OnlineSQL("u.id", "$2") + `
FROM users u LEFT JOIN user_presence up ON up.user_id = u.id WHERE u.id = ANY($1)`

// patientUsersSQL reads the enabled patient users of patient $1.
const patientUsersSQL = `SELECT id FROM users WHERE patient_id = $1 AND role = 'patient' AND disabled_at IS NULL`

// connectSQL writes user $1's row of process $2 seen at $3 and reports
// whether the user was online before (a row fresher than $4); when not, it
// clears a stale away and sends notice $6 on channel $5.
const connectSQL = `WITH before AS (
	SELECT EXISTS (SELECT 1 FROM presence WHERE user_id = $1 AND seen_at > $4) AS was
), up AS (
	INSERT INTO presence (user_id, process_id, seen_at) VALUES ($1, $2, $3)
	ON CONFLICT (user_id, process_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
), seen AS (
	INSERT INTO user_presence (user_id, last_seen_at) VALUES ($1, $3)
	ON CONFLICT (user_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,
		away = user_presence.away AND (SELECT was FROM before)
)
SELECT b.was, CASE WHEN NOT b.was THEN pg_notify($5, $6) END IS NULL FROM before b`

// disconnectSQL deletes user $1's row of process $2, notes them seen at $3,
// and sends notice $6 on channel $5 unless another process holds a row of
// theirs fresher than $4.
const disconnectSQL = `WITH gone AS (
	DELETE FROM presence WHERE user_id = $1 AND process_id = $2
), seen AS (
	INSERT INTO user_presence (user_id, last_seen_at) VALUES ($1, $3)
	ON CONFLICT (user_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
)
SELECT pg_notify($5, $6) WHERE NOT EXISTS (
	SELECT 1 FROM presence WHERE user_id = $1 AND process_id <> $2 AND seen_at > $4)`

// beatSQL refreshes the rows of users $1 of process $2 at $3.
const beatSQL = `WITH up AS (
	INSERT INTO presence (user_id, process_id, seen_at) SELECT u, $2, $3 FROM unnest($1::uuid[]) AS u
	ON CONFLICT (user_id, process_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
)
INSERT INTO user_presence (user_id, last_seen_at) SELECT u, $3 FROM unnest($1::uuid[]) AS u
ON CONFLICT (user_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at`

// sweepSQL deletes every row not seen since $1 (processes that died) and
// notifies channel $2 with an event of type $3 for each user left without a
// fresh row.
const sweepSQL = `WITH gone AS (DELETE FROM presence WHERE seen_at <= $1 RETURNING user_id)
SELECT pg_notify($2, json_build_object('type', $3::text, 'user_id', g.user_id)::text)
FROM (SELECT DISTINCT user_id FROM gone) g
WHERE NOT EXISTS (SELECT 1 FROM presence p WHERE p.user_id = g.user_id AND p.seen_at > $1)`

// leaveSQL deletes every row of process $1 (shutting down) and notifies
// channel $2 with an event of type $3 for each user no other process holds.
const leaveSQL = `WITH gone AS (DELETE FROM presence WHERE process_id = $1 RETURNING user_id)
SELECT pg_notify($2, json_build_object('type', $3::text, 'user_id', g.user_id)::text) FROM gone g
WHERE NOT EXISTS (SELECT 1 FROM presence p WHERE p.user_id = g.user_id AND p.process_id <> $1)`

// stateSQL reads user $1's role, presence settings, last seen time and
// whether a row fresher than $2 holds them online.
const stateSQL = `SELECT u.role, coalesce(up.hidden, false), coalesce(up.away, false), up.last_seen_at,
	EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id AND p.seen_at > $2)
FROM users u LEFT JOIN user_presence up ON up.user_id = u.id WHERE u.id = $1`

// setSQL sets user $1's away ($2) and hidden ($3) flags; NULL keeps one.
const setSQL = `INSERT INTO user_presence (user_id, away, hidden) VALUES ($1, coalesce($2, false), coalesce($3, false))
ON CONFLICT (user_id) DO UPDATE SET away = coalesce($2, user_presence.away), hidden = coalesce($3, user_presence.hidden)`

// participantsSQL reads each participant of thread $1 with their presence
// (rows fresher than $3) and whether viewer $2, a staff member, may see it:
// a patient of the thread always, a staff member who shares a care team.
var participantsSQL = `SELECT u.id, u.role, coalesce(up.hidden, false), coalesce(up.away, false), up.last_seen_at,
	EXISTS (SELECT 1 FROM presence p WHERE p.user_id = u.id AND p.seen_at > $3),
	u.role = 'patient' OR EXISTS (SELECT 1 FROM care_team_members a JOIN care_team_members b ON b.care_team_id = a.care_team_id
		WHERE a.user_id = $2 AND b.user_id = u.id)
FROM threads t CROSS JOIN LATERAL unnest(` + scope.ParticipantsSQL("t") + `) AS x(id)
JOIN users u ON u.id = x.id LEFT JOIN user_presence up ON up.user_id = u.id
WHERE t.id = $1 ORDER BY u.role = 'patient' DESC, u.id`

// availableSQL reports whether a staff member of care team $1 is online, not
// away and not hidden (a row fresher than $2).
const availableSQL = `SELECT EXISTS (SELECT 1 FROM care_team_members m JOIN users u ON u.id = m.user_id
	LEFT JOIN user_presence up ON up.user_id = m.user_id
	WHERE m.care_team_id = $1 AND u.role IN ('clinician', 'scheduler', 'admin') AND u.disabled_at IS NULL
	AND NOT coalesce(up.hidden, false) AND NOT coalesce(up.away, false)
	AND EXISTS (SELECT 1 FROM presence p WHERE p.user_id = m.user_id AND p.seen_at > $2))`

// audienceSQL reads the staff who may see user $1's presence: for a staff
// member, the members of the care teams they belong to; for a patient, the
// staff of their care team (who take part in their threads).
const audienceSQL = `SELECT coalesce(array_agg(DISTINCT b.user_id), '{}') FROM users u
	JOIN care_team_members b ON b.care_team_id IN (
		SELECT a.care_team_id FROM care_team_members a WHERE a.user_id = u.id
		UNION ALL SELECT pt.care_team_id FROM patients pt WHERE pt.id = u.patient_id AND u.role = 'patient')
	JOIN users s ON s.id = b.user_id AND s.role IN ('clinician', 'scheduler', 'admin')
	WHERE u.id = $1`

// teamsSQL reads, for each care team of staff member $1, whether it has
// someone available (rows fresher than $2) and its patients' users, who are
// told.
const teamsSQL = `SELECT m.care_team_id,
	EXISTS (SELECT 1 FROM care_team_members o JOIN users ou ON ou.id = o.user_id
		LEFT JOIN user_presence up ON up.user_id = o.user_id
		WHERE o.care_team_id = m.care_team_id AND ou.role IN ('clinician', 'scheduler', 'admin') AND ou.disabled_at IS NULL
		AND NOT coalesce(up.hidden, false) AND NOT coalesce(up.away, false)
		AND EXISTS (SELECT 1 FROM presence p WHERE p.user_id = o.user_id AND p.seen_at > $2)),
	ARRAY(SELECT pu.id FROM patients pt JOIN users pu ON pu.patient_id = pt.id AND pu.role = 'patient'
		WHERE pt.care_team_id = m.care_team_id)
FROM care_team_members m WHERE m.user_id = $1`

// OnlineSQL is the predicate "user (a column or parameter) holds a
// connection in some process": a heartbeat row fresher than fresh (a
// parameter). Routing uses it with the real state, whatever the user
// shows others (hidden) or reported (away).
func OnlineSQL(user, fresh string) string {
	return `EXISTS (SELECT 1 FROM presence p WHERE p.user_id = ` + user + ` AND p.seen_at > ` + fresh + `)`
}
