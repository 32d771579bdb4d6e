package pg

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"LockPatientsSQL": LockPatientsSQL,
}

// LockPatientsSQL takes the per-patient transaction locks of $1 (uuid[]), in
// a fixed order so that two transactions cannot deadlock. Every writer that
// must not interleave with another on one patient (ingest, symptom reports,
// the missing-data job) takes these locks, and only through this statement
// or LockPatients, so that they always agree on the lock keys.
const LockPatientsSQL = `SELECT pg_advisory_xact_lock(h) FROM (
	SELECT hashtextextended(p::text, 7) AS h FROM unnest($1::uuid[]) AS p ORDER BY 1) AS s`
