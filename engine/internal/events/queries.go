package events

// This file holds every SQL statement the package runs, by name
// (TestQueriesPrepare prepares each against the migrated schema).

// queries lists every statement of this file by name.
var queries = map[string]string{
	"appendSQL":     appendSQL,
	"notifySQL":     notifySQL,
	"appendManySQL": appendManySQL,
}

// appendSQL appends one event and notifies the stream at commit. The row
// comes out of the lock's subquery, so the lock is held before the id is
// taken (see AppendLockClass).
const appendSQL = `WITH e AS (
	INSERT INTO events (at, type, care_team_id, patient_id, payload, thread_id)
	SELECT $1, $2, $3, $4, $5, $6 FROM (SELECT pg_advisory_xact_lock_shared(` + appendLock + `)) l RETURNING id
) SELECT pg_notify('` + Channel + `', id::text) FROM e`

// appendLock is the shared advisory lock of an event append, as SQL
// arguments.
const appendLock = "7411, 1"

// notifySQL sends ephemeral event $1 (JSON) to every process's stream.
const notifySQL = `SELECT pg_notify('` + EphemeralChannel + `', $1)`

// appendManySQL appends events at $1 (types $2, teams $3, patients $4, payloads $5, threads $6), in
// order, and notifies the stream of each at commit. The ids (volatile) are taken after the sort, so
// after the lock of the joined subquery.
const appendManySQL = `WITH e AS (
	INSERT INTO events (at, type, care_team_id, patient_id, payload, thread_id)
	SELECT $1, x.t, x.c, x.p, x.d::jsonb, x.th FROM unnest($2::text[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[])
		WITH ORDINALITY AS x(t, c, p, d, th, n), (SELECT pg_advisory_xact_lock_shared(` + appendLock + `)) l ORDER BY x.n
	RETURNING id
) SELECT pg_notify('` + Channel + `', id::text) FROM e`
