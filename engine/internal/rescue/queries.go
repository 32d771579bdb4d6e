package rescue

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"beatSQL":         beatSQL,
	"rescueJobsSQL":   rescueJobsSQL,
	"forgetStaleSQL":  forgetStaleSQL,
	"forgetClientSQL": forgetClientSQL,
}

// beatSQL records that client $1 (started at $2) is alive.
const beatSQL = `INSERT INTO worker_heartbeats (client_id, started_at, seen_at) VALUES ($1, $2, $2)
		ON CONFLICT (client_id) DO UPDATE SET seen_at = excluded.seen_at`

// rescueJobsSQL makes the running jobs of clients last seen before $2 (other than $3) available
// again at $1.
const rescueJobsSQL = `UPDATE river_job j SET state = 'available', scheduled_at = $1
		WHERE j.state = 'running' AND cardinality(j.attempted_by) > 0
			AND j.attempted_by[cardinality(j.attempted_by)] IN (
				SELECT client_id FROM worker_heartbeats WHERE seen_at < $2 AND client_id <> $3)`

// forgetStaleSQL forgets clients last seen before $1.
const forgetStaleSQL = `DELETE FROM worker_heartbeats WHERE seen_at < $1`

// forgetClientSQL forgets client $1.
const forgetClientSQL = `DELETE FROM worker_heartbeats WHERE client_id = $1`
