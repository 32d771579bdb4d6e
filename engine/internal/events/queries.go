package events

// This file holds every SQL statement the package runs, by name
// (TestQueriesPrepare prepares each against the migrated schema).

// queries lists every statement of this file by name.
var queries = map[string]string{
	"appendSQL": appendSQL,
	"notifySQL": notifySQL,
}

// appendSQL appends one event and notifies the stream at commit.
const appendSQL = `WITH e AS (
	INSERT INTO events (at, type, care_team_id, patient_id, payload, thread_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
) SELECT pg_notify('` + Channel + `', id::text) FROM e`

// notifySQL sends ephemeral event $1 (JSON) to every process's stream.
const notifySQL = `SELECT pg_notify('` + EphemeralChannel + `', $1)`
