package events

// This file holds every SQL statement the package runs, by name
// (TestQueriesPrepare prepares each against the migrated schema).

// queries lists every statement of this file by name.
var queries = map[string]string{
	"appendSQL":     appendSQL,
	"notifySQL":     notifySQL,
	"appendManySQL": appendManySQL,
}

// appendSQL appends one event and notifies the stream at commit.
const appendSQL = `WITH e AS (
	INSERT INTO events (at, type, care_team_id, patient_id, payload, thread_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
) SELECT pg_notify('` + Channel + `', id::text) FROM e`

// notifySQL sends ephemeral event $1 (JSON) to every process's stream.
const notifySQL = `SELECT pg_notify('` + EphemeralChannel + `', $1)`

// appendManySQL appends events at $1 (types $2, teams $3, patients $4, payloads $5, threads $6), in
// order, and notifies the stream of each at commit.
const appendManySQL = `WITH e AS (
	INSERT INTO events (at, type, care_team_id, patient_id, payload, thread_id)
	SELECT $1, x.t, x.c, x.p, x.d::jsonb, x.th FROM unnest($2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[])
		WITH ORDINALITY AS x(t, c, p, d, th, n) ORDER BY x.n
	RETURNING id
) SELECT pg_notify('` + Channel + `', id::text) FROM e`
