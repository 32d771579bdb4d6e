package stream

import "github.com/tendhealth/tend/engine/internal/scope"

// This file holds every SQL statement the package runs, by name
// (TestQueriesPrepare prepares each against the migrated schema).

// queries lists every statement of this file by name.
var queries = map[string]string{
	"maxIDSQL":        maxIDSQL,
	"loadSQL":         loadSQL,
	"positionSQL":     positionSQL,
	"replaySQL":       replaySQL,
	"replayTypesSQL":  replayTypesSQL,
	"pruneSQL":        pruneSQL,
	"participantsSQL": participantsSQL,
}

// maxIDSQL reads the newest event id (0 when the log is empty): where a
// process's listener starts.
const maxIDSQL = `SELECT coalesce(max(id), 0) FROM events`

// loadSQL reads event $1 and the events after id $2, in id order, at most
// $3, each with the user ids of its care team or, for an event of a thread,
// of the thread's participants (so that visibility is decided per event
// without a query per client).
var loadSQL = `SELECT e.id, e.type, e.patient_id, e.payload, e.thread_id IS NOT NULL,
	CASE WHEN e.thread_id IS NULL THEN ARRAY(SELECT m.user_id FROM care_team_members m WHERE m.care_team_id = e.care_team_id)
	ELSE (SELECT ` + scope.ParticipantsSQL("t") + ` FROM threads t WHERE t.id = e.thread_id) END
FROM events e WHERE e.id = $1 OR e.id > $2 ORDER BY e.id LIMIT $3`

// participantsSQL reads the user ids of thread $1's participants (for an
// ephemeral event).
var participantsSQL = `SELECT ` + scope.ParticipantsSQL("t") + ` FROM threads t WHERE t.id = $1`

// positionSQL reads the oldest retained event id (NULL when the log is
// empty) and the newest id ever issued (0 when none was).
const positionSQL = `SELECT (SELECT min(id) FROM events),
	(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM events_id_seq)`

// replaySQL reads, in id order, at most $6 events after id $1 that the actor
// ($2 role, $3 patient, $4 user; $5 the patient-visible types) may see.
var replaySQL = `SELECT e.id, e.type, e.payload FROM events e WHERE e.id > $1 AND ` +
	scope.EventSQL("e", "$2", "$3", "$4", "$5") + ` ORDER BY e.id LIMIT $6`

// replayTypesSQL reads, in id order, at most $3 events after id $1 of the
// types $2 that belong to no thread, whoever they concern (Follow).
const replayTypesSQL = `SELECT e.id, e.type, e.payload FROM events e
WHERE e.id > $1 AND e.thread_id IS NULL AND e.type = ANY($2) ORDER BY e.id LIMIT $3`

// pruneSQL deletes at most $2 events older than $1 (the oldest first), so
// that a large backlog is pruned in short transactions.
const pruneSQL = `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < $1 ORDER BY id LIMIT $2)`
