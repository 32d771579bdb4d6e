package rulestore

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
// personalised parameters.
const backtestPatientsSQL = `SELECT p.id, p.programs, p.enrolled_at, pp.overrides FROM patients p
		LEFT JOIN patient_params pp ON pp.patient_id = p.id
		WHERE p.id > $1 AND (cardinality($2::uuid[]) = 0 OR p.id = ANY($2))
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

// listRuleErrorsSQL pages through rule evaluation errors, newest first, optionally for one rule.
const listRuleErrorsSQL = `SELECT id, rule_id, rule_version, patient_id, reading_id, error, at FROM rule_eval_errors
			WHERE id < $1 AND ($2 = '' OR rule_id = $2) ORDER BY id DESC LIMIT $3`

// ruleRowColumns are the columns of rule_versions that scanRuleRow reads.
const ruleRowColumns = `seq, rule_id, version, definition, enabled, created_at, created_by`

// latestRulesSQL returns the latest version of every rule, in the order the
// rules were first created (the default pack's order for seeded rules), with
// the time the first version was created.
const latestRulesSQL = `SELECT l.seq, l.rule_id, l.version, l.definition, l.enabled, l.created_at, l.created_by, f.created_at
	FROM (SELECT DISTINCT ON (rule_id) ` + ruleRowColumns + ` FROM rule_versions ORDER BY rule_id, version DESC) l
	JOIN rule_versions f ON f.rule_id = l.rule_id AND f.version = 1
	ORDER BY f.seq`

// rulesStateSQL summarises the rule table (row count, latest seq) so that a reload is needed only
// when it changed.
const rulesStateSQL = `SELECT count(*), coalesce(max(seq), 0) FROM rule_versions`

// advisoryLockSQL takes the transaction-scoped advisory lock $1.
const advisoryLockSQL = `SELECT pg_advisory_xact_lock($1)`

// anyRuleSQL tells whether any rule has been stored.
const anyRuleSQL = `SELECT EXISTS (SELECT 1 FROM rule_versions)`

// insertFirstVersionSQL stores the first version of a rule written by the system (seeding, pack
// upgrade).
const insertFirstVersionSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at) VALUES ($1, 1, $2, $3, $4)`

// recordSeedSQL records that pack version $1 was seeded.
const recordSeedSQL = `INSERT INTO rule_pack_versions (version, applied_at, detail) VALUES ($1, $2, '{"seeded": true}') ON CONFLICT DO NOTHING`

// packAppliedSQL tells whether pack version $1 (or a later one) has been applied.
const packAppliedSQL = `SELECT EXISTS (SELECT 1 FROM rule_pack_versions WHERE version >= $1)`

// latestVersionsSQL reads the latest version of every rule and whether a person wrote it.
const latestVersionsSQL = `SELECT DISTINCT ON (rule_id) rule_id, version, definition, enabled, created_by IS NOT NULL
		FROM rule_versions ORDER BY rule_id, version DESC`

// insertSystemVersionSQL stores a new version of a rule written by the system (pack upgrade).
const insertSystemVersionSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at) VALUES ($1, $2, $3, $4, $5)`

// recordPackSQL records that pack version $1 was applied, with what changed.
const recordPackSQL = `INSERT INTO rule_pack_versions (version, applied_at, detail) VALUES ($1, $2, $3)`

// ruleVersionsSQL lists every version of rule $1, newest first.
const ruleVersionsSQL = `SELECT ` + ruleRowColumns + ` FROM rule_versions WHERE rule_id = $1 ORDER BY version DESC`

// latestRuleSQL reads the latest version of rule $1.
const latestRuleSQL = `SELECT ` + ruleRowColumns + ` FROM rule_versions WHERE rule_id = $1 ORDER BY version DESC LIMIT 1`

// createRuleSQL stores the first version of a rule written by user $5.
const createRuleSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at, created_by)
			VALUES ($1, 1, $2, $3, $4, $5)`

// updateRuleSQL stores a new version of a rule written by user $6.
const updateRuleSQL = `INSERT INTO rule_versions (rule_id, version, definition, enabled, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6)`

// isLeadSQL tells whether user $1 leads any care team (leads may simulate
// rule changes).
const isLeadSQL = `SELECT EXISTS (SELECT 1 FROM care_team_members WHERE user_id = $1 AND role = 'lead')`
