package care

import "github.com/tendhealth/tend/engine/internal/scope"

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"insertCareTeamSQL": insertCareTeamSQL,
	"memberRolesSQL":    memberRolesSQL,
	"insertMembersSQL":  insertMembersSQL,
	"teamInScopeSQL":    teamInScopeSQL,
	"insertPatientSQL":  insertPatientSQL,
	"getPatientSQL":     getPatientSQL,
	"setParamsSQL":      setParamsSQL,
	"getParamsSQL":      getParamsSQL,
	"listPatientsSQL":   listPatientsSQL,
	"listTeamsSQL":      listTeamsSQL,
	"getTeamSQL":        getTeamSQL,
	"lockTeamSQL":       lockTeamSQL,
	"deleteMembersSQL":  deleteMembersSQL,
	"updateTeamSQL":     updateTeamSQL,
	"membershipsSQL":    membershipsSQL,
	"updatePatientSQL":  updatePatientSQL,
	"restrictSQL":       restrictSQL,
	"unrestrictSQL":     unrestrictSQL,
}

// membershipsSQL lists the care teams user $1 is a member of, with the user's team role, by name, at most $2.
const membershipsSQL = `SELECT t.id, t.name, m.role, t.timezone FROM care_team_members m JOIN care_teams t ON t.id = m.care_team_id
			WHERE m.user_id = $1 ORDER BY t.name, t.id LIMIT $2`

// updatePatientSQL stores patient $1's name, zone, team, programs and external id.
const updatePatientSQL = `UPDATE patients SET display_name = $2, timezone = $3, care_team_id = $4, programs = $5, external_id = $6
			WHERE id = $1`

// insertCareTeamSQL stores a care team of organisation $7 in time zone $5 (the organisation's when
// empty) and returns its zone.
const insertCareTeamSQL = `INSERT INTO care_teams (id, name, escalation, created_at, updated_at, timezone, on_call, org_id)
				VALUES ($1, $2, $3, $4, $4, coalesce(nullif($5, ''), (SELECT timezone FROM organisations WHERE id = $7)), $6, $7)
				RETURNING timezone`

// memberRolesSQL reads the role of each user of $1 (NULL when missing, disabled or of
// another organisation than care team $2's), by position.
const memberRolesSQL = `SELECT x.i - 1, u.role FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, i)
				LEFT JOIN users u ON u.id = x.id AND u.disabled_at IS NULL
					AND u.org_id = (SELECT t.org_id FROM care_teams t WHERE t.id = $2) ORDER BY x.i`

// insertMembersSQL adds users $2 with roles $3 to care team $1.
const insertMembersSQL = `INSERT INTO care_team_members (care_team_id, user_id, role, org_id)
				SELECT $1, id, role, (SELECT t.org_id FROM care_teams t WHERE t.id = $1) FROM unnest($2::uuid[], $3::text[]) AS x(id, role)`

// teamInScopeSQL tells whether care team $1 exists and the actor ($2 role, $3 user) may see it.
var teamInScopeSQL = `SELECT EXISTS (SELECT 1 FROM care_teams t WHERE t.id = $1 AND ` +
	scope.TeamSQL("t.id", "$2", "$3") + `)`

// insertPatientSQL stores a patient in the organisation of their care team.
const insertPatientSQL = `INSERT INTO patients (id, display_name, timezone, care_team_id, programs, external_id, enrolled_at, created_at, org_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7, (SELECT t.org_id FROM care_teams t WHERE t.id = $4))`

// getPatientSQL reads patient $1.
const getPatientSQL = `SELECT id, display_name, timezone, care_team_id, programs, external_id, enrolled_at, created_at,
			restricted_at IS NOT NULL, erased_at IS NOT NULL
			FROM patients WHERE id = $1`

// setParamsSQL stores or replaces patient $1's personalised rule parameters.
const setParamsSQL = `INSERT INTO patient_params (patient_id, overrides, updated_at, updated_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (patient_id) DO UPDATE SET overrides = excluded.overrides, updated_at = excluded.updated_at, updated_by = excluded.updated_by`

// getParamsSQL reads patient $1's personalised rule parameters.
const getParamsSQL = `SELECT overrides, updated_at, updated_by FROM patient_params WHERE patient_id = $1`

// listPatientsSQL pages through the patients the actor ($1 role, $2 patient,
// $3 user) may see, by display name: name matching pattern $4 or external id
// $5, after ($6, $7), at most $8.
var listPatientsSQL = `SELECT p.id, p.display_name, p.timezone, p.care_team_id, p.programs, p.external_id, p.enrolled_at, p.created_at,
		p.restricted_at IS NOT NULL, p.erased_at IS NOT NULL
	FROM patients p
	WHERE ` + scope.PatientSQL("p", "$1", "$2", "$3") + `
		AND (p.display_name ILIKE $4 OR p.external_id = $5)
		AND ($6::text IS NULL OR (p.display_name, p.id) > ($6::text, $7::uuid))
	ORDER BY p.display_name, p.id LIMIT $8`

// teamColumns are the columns of care_teams t that scanTeam reads, with the members as JSON.
const teamColumns = `t.id, t.name, t.escalation, t.timezone, t.on_call, t.created_at, t.updated_at,
	coalesce((SELECT jsonb_agg(jsonb_build_object('user_id', m.user_id, 'role', m.role, 'name', mu.name) ORDER BY m.user_id)
		FROM care_team_members m JOIN users mu ON mu.id = m.user_id WHERE m.care_team_id = t.id), '[]')`

// listTeamsSQL lists the care teams the actor ($1 role, $2 user) may see, by name, at most $3.
var listTeamsSQL = `SELECT ` + teamColumns + ` FROM care_teams t WHERE ` + scope.TeamSQL("t.id", "$1", "$2") +
	` ORDER BY t.name, t.id LIMIT $3`

// getTeamSQL reads care team $3 if the actor ($1 role, $2 user) may see it.
var getTeamSQL = `SELECT ` + teamColumns + ` FROM care_teams t WHERE t.id = $3 AND ` + scope.TeamSQL("t.id", "$1", "$2")

// lockTeamSQL reads and locks care team $3 if the actor ($1 role, $2 user) may see it, with the actor's
// team role.
var lockTeamSQL = `SELECT ` + teamColumns + `, (SELECT m.role FROM care_team_members m WHERE m.care_team_id = t.id AND m.user_id = $2)
			FROM care_teams t WHERE t.id = $3 AND ` + scope.TeamSQL("t.id", "$1", "$2") + ` FOR UPDATE OF t`

// deleteMembersSQL removes every member of care team $1 (before storing the new ones).
const deleteMembersSQL = `DELETE FROM care_team_members WHERE care_team_id = $1`

// updateTeamSQL stores care team $1's name, policy, zone and rota at $6.
const updateTeamSQL = `UPDATE care_teams SET name = $2, escalation = $3, timezone = $4, on_call = $5, updated_at = $6 WHERE id = $1`

// restrictSQL restricts processing of patient $1 from $2 (an earlier
// restriction keeps its time) and reads whether they are erased.
const restrictSQL = `UPDATE patients SET restricted_at = coalesce(restricted_at, $2) WHERE id = $1 RETURNING erased_at IS NOT NULL`

// unrestrictSQL lifts the restriction of patient $1 unless they are erased
// (whose processing stays restricted), and reads whether they are.
const unrestrictSQL = `UPDATE patients SET restricted_at = CASE WHEN erased_at IS NULL THEN NULL ELSE restricted_at END
	WHERE id = $1 RETURNING erased_at IS NOT NULL`
