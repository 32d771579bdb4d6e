package scope

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"patientSQL": patientSQL,
}

// patientSQL reads patient $1 if the actor ($2 role, $3 patient, $4 user) may
// see it.
var patientSQL = `SELECT p.care_team_id, p.programs, p.enrolled_at, p.org_id, p.restricted_at IS NOT NULL FROM patients p WHERE p.id = $1 AND ` +
	PatientSQL("p", "$2", "$3", "$4")
