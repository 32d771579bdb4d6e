package rulestore

import "github.com/tendhealth/tend/engine/internal/scope"

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"backtestPatientsSQL":    backtestPatientsSQL,
	"isLeadSQL":              isLeadSQL,
	"backtestSymptomsSQL":    backtestSymptomsSQL,
	"backtestReadingsSQL":    backtestReadingsSQL,
	"listRuleErrorsSQL":      listRuleErrorsSQL,
	"latestRulesSQL":         latestRulesSQL,
	"rulesStateSQL":          rulesStateSQL,
	"rulesOrgStateSQL":       rulesOrgStateSQL,
	"defaultVersionSQL":      defaultVersionSQL,
	"advisoryLockSQL":        advisoryLockSQL,
	"anyRuleSQL":             anyRuleSQL,
	"insertFirstVersionSQL":  insertFirstVersionSQL,
	"recordSeedSQL":          recordSeedSQL,
	"packAppliedSQL":         packAppliedSQL,
	"latestVersionsSQL":      latestVersionsSQL,
	"insertSystemVersionSQL": insertSystemVersionSQL,
	"recordPackSQL":          recordPackSQL,
	"ruleVersionsSQL":        ruleVersionsSQL,
	"latestRuleSQL":          latestRuleSQL,
	"createRuleSQL":          createRuleSQL,
	"updateRuleSQL":          updateRuleSQL,
}

// backtestPatientsSQL pages through the patients a backtest covers, after $1, with their
// personalised parameters: those of organisation $6 (every organisation's when NULL).
const backtestPatientsSQL = `SELECT p.id, p.programs, p.enrolled_at, pp.overrides FROM patients p
		LEFT JOIN patient_params pp ON pp.patient_id = p.id
		WHERE p.id > $1 AND (cardinality($2::uuid[]) = 0 OR p.id = ANY($2)) AND ($6::uuid IS NULL OR p.org_id = $6)
		AND (cardinality($3::text[]) = 0 OR p.programs && $3) AND (cardinality($4::text[]) = 0 OR p.programs && $4)
		ORDER BY p.id LIMIT $5`

// backtestSymptomsSQL reads the symptom reports of patients $1 between $2 and $3, in replay order.
const backtestSymptomsSQL = `SELECT patient_id, id, reported_at, symptoms FROM symptom_reports
			WHERE patient_id = ANY($1) AND reported_at >= $2 AND reported_at <= $3
			ORDER BY patient_id, reported_at, id`

// backtestReadingsSQL reads the readings of kinds $2 of patients $1 between $3 and $4, in replay
// order, leaving out retracted ones.
const backtestReadingsSQL = `SELECT patient_id, id, kind, value, coalesce(systolic, 0), coalesce(diastolic, 0), unit, observed_at
			FROM readings WHERE patient_id = ANY($1) AND kind = ANY($2) AND observed_at >= $3 AND observed_at <= $4
				AND entered_in_error_at IS NULL
			ORDER BY patient_id, observed_at, id`

// listRuleErrorsSQL pages through rule evaluation errors, newest first, optionally for one rule:
// those of the patients of the organisation the actor ($4 role, $5 user) administers.
var listRuleErrorsSQL = `SELECT e.id, e.rule_id, e.rule_version, e.patient_id, e.reading_id, e.error, e.at
			FROM rule_eval_errors e JOIN patients p ON p.id = e.patient_id
			WHERE e.id < $1 AND ($2 = '' OR e.rule_id = $2) AND ` + scope.AdminSQL("p.org_id", "$4", "$5") + `
			ORDER BY e.id DESC LIMIT $3`

// ruleRowColumns are the columns of rule_versions that scanRuleRow reads.
const ruleRowColumns = `seq, rule_id, version, definition, enabled, created_at, created_by, org_id`

// latestRulesSQL returns the latest version of every rule of the default pack
// and of organisations $1's overrides, in the order the rules were first
// created (the default pack's order for its rules and for the overrides of
// them), with the time the rule's first version was created.
const latestRulesSQL = `SELECT l.seq, l.rule_id, l.version, l.definition, l.enabled, l.created_at, l.created_by, l.org_id, f.created_at
	FROM (SELECT DISTINCT ON (org_id, rule_id) ` + ruleRowColumns + ` FROM rule_versions
		WHERE org_id IS NULL OR org_id = ANY($1::uuid[]) ORDER BY org_id, rule_id, version DESC) l
	CROSS JOIN LATERAL (SELECT f.created_at, f.seq FROM rule_versions f
		WHERE f.rule_id = l.rule_id AND (f.org_id IS NULL OR f.org_id = l.org_id) ORDER BY f.seq LIMIT 1) f
	ORDER BY f.seq, l.org_id NULLS FIRST`

// rulesStateSQL summarises the rule table (row count, latest seq) so that a reload is needed only
// when it changed.
const rulesStateSQL = `SELECT count(*), coalesce(max(seq), 0) FROM rule_versions`

// rulesOrgStateSQL summarises the rule table per organisation (NULL: the default pack), so that a
// reload recompiles only the packs that changed.
const rulesOrgStateSQL = `SELECT org_id, count(*), max(seq) FROM rule_versions GROUP BY org_id`

// advisoryLockSQL takes the transaction-scoped advisory lock $1.
const advisoryLockSQL = `SELECT pg_advisory_xact_lock($1)`

// anyRuleSQL tells whether the default pack has been stored.
const anyRuleSQL = `SELECT EXISTS (SELECT 1 FROM rule_versions WHERE org_id IS NULL)`

// insertFirstVersionSQL stores the first version of a rule written by the system (seeding, pack
// upgrade).
const insertFirstVersionSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at) VALUES ($1, 1, $2, $3, $4)`

// recordSeedSQL records that pack version $1 was seeded.
const recordSeedSQL = `INSERT INTO rule_pack_versions (version, applied_at, detail) VALUES ($1, $2, '{"seeded": true}') ON CONFLICT DO NOTHING`

// packAppliedSQL tells whether pack version $1 (or a later one) has been applied.
const packAppliedSQL = `SELECT EXISTS (SELECT 1 FROM rule_pack_versions WHERE version >= $1)`

// latestVersionsSQL reads the latest version of every rule of the default pack and whether a
// person wrote it.
const latestVersionsSQL = `SELECT DISTINCT ON (rule_id) rule_id, version, definition, enabled, created_by IS NOT NULL
		FROM rule_versions WHERE org_id IS NULL ORDER BY rule_id, version DESC`

// insertSystemVersionSQL stores a new version of a rule written by the system (pack upgrade).
const insertSystemVersionSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at) VALUES ($1, $2, $3, $4, $5)`

// recordPackSQL records that pack version $1 was applied, with what changed.
const recordPackSQL = `INSERT INTO rule_pack_versions (version, applied_at, detail) VALUES ($1, $2, $3)`

// ruleVersionsSQL lists every version of rule $1 that organisation $2 (NULL: the default pack)
// sees, newest first: its own, then the default pack's before the first of them.
const ruleVersionsSQL = `SELECT ` + ruleRowColumns + ` FROM rule_versions
	WHERE rule_id = $1 AND (org_id = $2::uuid OR (org_id IS NULL AND version < coalesce(
		(SELECT min(o.version) FROM rule_versions o WHERE o.rule_id = $1 AND o.org_id = $2::uuid), 2147483647)))
	ORDER BY version DESC`

// latestRuleSQL reads the version of rule $1 in force in organisation $2 (NULL: the default
// pack): its own latest version, else the default pack's.
const latestRuleSQL = `SELECT ` + ruleRowColumns + ` FROM rule_versions WHERE rule_id = $1 AND (org_id = $2::uuid OR org_id IS NULL)
	ORDER BY org_id IS NULL, version DESC LIMIT 1`

// defaultVersionSQL reads the default pack's latest version of rule $1.
const defaultVersionSQL = `SELECT ` + ruleRowColumns + ` FROM rule_versions WHERE rule_id = $1 AND org_id IS NULL
	ORDER BY version DESC LIMIT 1`

// createRuleSQL stores the first version of a rule written by user $5, in organisation $6 (NULL:
// the default pack).
const createRuleSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at, created_by, org_id)
			VALUES ($1, 1, $2, $3, $4, $5, $6)`

// updateRuleSQL stores a new version of a rule written by user $6, in organisation $7 (NULL: the
// default pack).
const updateRuleSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at, created_by, org_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`

// isLeadSQL tells whether user $1 leads any care team (leads may simulate
// rule changes).
const isLeadSQL = `SELECT EXISTS (SELECT 1 FROM care_team_members WHERE user_id = $1 AND role = 'lead')`
