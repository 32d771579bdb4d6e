package metrics

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"queueDepthSQL":  queueDepthSQL,
	"undeliveredSQL": undeliveredSQL,
}

// queueDepthSQL counts River jobs waiting or running, by queue and state.
const queueDepthSQL = `SELECT queue, state::text, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'retryable', 'running', 'pending') GROUP BY 1, 2`

// undeliveredSQL counts unresolved alerts flagged as undelivered.
const undeliveredSQL = `SELECT count(*) FROM alerts WHERE undelivered AND status <> 'resolved'`
