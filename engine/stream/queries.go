package stream

import (
	"strconv"

	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/scope"
)

// This file holds every SQL statement the package runs, by name
// (TestQueriesPrepare prepares each against the migrated schema).

// queries lists every statement of this file by name.
var queries = map[string]string{
	"issuedSQL":       issuedSQL,
	"appendersSQL":    appendersSQL,
	"appendingSQL":    appendingSQL,
	"loadSQL":         loadSQL,
	"positionSQL":     positionSQL,
	"replaySQL":       replaySQL,
	"replayTypesSQL":  replayTypesSQL,
	"pruneSQL":        pruneSQL,
	"participantsSQL": participantsSQL,
}

// issuedSQL reads the newest event id issued, committed or not (0 when none
// was).
const issuedSQL = `SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM events_id_seq`

// appendersSQL lists the transactions appending events at this moment: those
// holding events.AppendLock, which an append takes before its id.
var appendersSQL = `SELECT coalesce(array_agg(virtualtransaction), '{}') FROM pg_locks
	WHERE locktype = 'advisory' AND classid = ` + lockClass + ` AND objid = ` + lockObject + ` AND objsubid = 2
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// appendingSQL counts which of the transactions $1 (from appendersSQL)
// still hold the append lock.
var appendingSQL = `SELECT count(*) FROM pg_locks
	WHERE locktype = 'advisory' AND classid = ` + lockClass + ` AND objid = ` + lockObject + ` AND objsubid = 2
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND virtualtransaction = ANY($1::text[])`

var (
	lockClass  = strconv.Itoa(events.AppendLockClass)
	lockObject = strconv.Itoa(events.AppendLockObject)
)

// loadSQL reads the events after id $1 up to id $2, in id order, at most
// $3, each with the user ids of its care team or, for an event of a thread,
// of the thread's participants, and its organisation (so that visibility is decided per event
// without a query per client).
var loadSQL = `SELECT e.id, e.type, e.patient_id, e.payload, e.thread_id IS NOT NULL,
	CASE WHEN e.thread_id IS NULL THEN ARRAY(SELECT m.user_id FROM care_team_members m WHERE m.care_team_id = e.care_team_id)
	ELSE (SELECT ` + scope.ParticipantsSQL("t") + ` FROM threads t WHERE t.id = e.thread_id) END,
	coalesce((SELECT ot.org_id FROM care_teams ot WHERE ot.id = e.care_team_id), (SELECT op.org_id FROM patients op WHERE op.id = e.patient_id))
FROM events e WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3`

// participantsSQL reads the user ids of thread $1's participants (for an
// ephemeral event).
var participantsSQL = `SELECT ` + scope.ParticipantsSQL("t") + ` FROM threads t WHERE t.id = $1`

// positionSQL reads the oldest retained event id (NULL when the log is
// empty) and the newest id ever issued (0 when none was).
const positionSQL = `SELECT (SELECT min(id) FROM events),
	(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM events_id_seq)`

// replaySQL reads, in id order, at most $6 events after id $1 and up to id
// $7 that the actor ($2 role, $3 patient, $4 user; $5 the patient-visible
// types) may see.
var replaySQL = `SELECT e.id, e.type, e.payload FROM events e WHERE e.id > $1 AND e.id <= $7 AND ` +
	scope.EventSQL("e", "$2", "$3", "$4", "$5") + ` ORDER BY e.id LIMIT $6`

// replayTypesSQL reads, in id order, at most $3 events after id $1 and up
// to id $4 of the types $2 that belong to no thread, whoever they concern
// (Follow).
const replayTypesSQL = `SELECT e.id, e.type, e.payload FROM events e
WHERE e.id > $1 AND e.id <= $4 AND e.thread_id IS NULL AND e.type = ANY($2) ORDER BY e.id LIMIT $3`

// pruneSQL deletes at most $2 events older than $1 (the oldest first), so
// that a large backlog is pruned in short transactions.
const pruneSQL = `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 ORDER BY id LIMIT $2)`
