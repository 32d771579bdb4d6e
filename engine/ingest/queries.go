package ingest

import (
	"github.com/tendhealth/tend/engine/alerting"
	"github.com/tendhealth/tend/engine/internal/readings"
	"github.com/tendhealth/tend/engine/internal/scope"
)

// This file holds every SQL statement the package runs, by name.
//
// The statements of a group commit look each patient, source id and
// history window up by key through a LATERAL subquery that cannot be pulled
// up into the join (OFFSET 0). The engine's pool plans each statement once
// per connection for all parameters (plan_cache_mode=force_generic_plan),
// with the statistics of that moment: as a plain join, a plan made on a new
// database (tables never analysed) hashed the whole table for every group
// until autovacuum next analysed it — the first minutes of a deployment, and
// every benchmark run on a fresh database. TestGroupStatementsLookUpByKey
// holds them to index lookups on an empty, never-analysed database and on a
// filled one.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"getReadingSQL":          getReadingSQL,
	"resolveExternalIDsSQL":  resolveExternalIDsSQL,
	"lockSourcedReadingSQL":  lockSourcedReadingSQL,
	"retractReadingSQL":      retractReadingSQL,
	"insertReadingsSQL":      insertReadingsSQL,
	"scopeManySQL":           scopeManySQL,
	"duplicateSourcesSQL":    duplicateSourcesSQL,
	"historySQL":             historySQL,
	"recordJobRunSQL":        recordJobRunSQL,
	"jobRunsSQL":             jobRunsSQL,
	"missingPageSQL":         missingPageSQL,
	"organisationsSQL":       organisationsSQL,
	"lastObservedSQL":        lastObservedSQL,
	"reportedMissingSQL":     reportedMissingSQL,
	"ensurePartitionSQL":     ensurePartitionSQL,
	"listReadingsSQL":        listReadingsSQL,
	"symptomReportByKeySQL":  symptomReportByKeySQL,
	"insertSymptomReportSQL": insertSymptomReportSQL,
	"patientThreadsSQL":      patientThreadsSQL,
	"linkReportAlertsSQL":    linkReportAlertsSQL,
	"listSymptomReportsSQL":  listSymptomReportsSQL,
}

// getReadingSQL reads one reading by its full key (patient, observed_at, id).
const getReadingSQL = `SELECT ` + readings.Columns + `, r.entered_in_error_at FROM readings r
			WHERE r.patient_id = $1 AND r.observed_at = $2 AND r.id = $3`

// resolveExternalIDsSQL maps external ids $1 to the patients the actor may see ($2 role, $3
// patient, $4 user).
var resolveExternalIDsSQL = `SELECT p.external_id, p.id FROM patients p WHERE p.external_id = ANY($1) AND ` +
	scope.PatientSQL("p", "$2", "$3", "$4")

// lockSourcedReadingSQL finds and locks the reading that source id $2 created for patient $1, of
// kind $3.
const lockSourcedReadingSQL = `SELECT ` + readings.Columns + `, r.entered_in_error_at FROM reading_sources s
				JOIN readings r ON r.patient_id = s.patient_id AND r.observed_at = s.observed_at AND r.id = s.reading_id
				WHERE s.patient_id = $1 AND s.source_id = $2 AND r.kind = $3 FOR UPDATE OF r`

// retractReadingSQL marks a reading as entered in error at $4.
const retractReadingSQL = `UPDATE readings SET entered_in_error_at = $4
				WHERE patient_id = $1 AND observed_at = $2 AND id = $3`

// insertReadingsSQL stores a group's readings from parallel arrays, skipping
// those whose source id is already stored, and returns the ids stored.
const insertReadingsSQL = `WITH input AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::text[],
		$8::timestamptz[], $9::text[], $10::uuid[])
		AS t(patient_id, id, kind, value, systolic, diastolic, unit, observed_at, source_id, recorded_by)
), src AS (
	INSERT INTO reading_sources (patient_id, source_id, reading_id, observed_at)
	SELECT patient_id, source_id, id, observed_at FROM input WHERE source_id IS NOT NULL
	ON CONFLICT DO NOTHING
	RETURNING reading_id
)
INSERT INTO readings (id, patient_id, kind, value, systolic, diastolic, unit, observed_at, received_at, source_id, recorded_by)
SELECT id, patient_id, kind, value, systolic, diastolic, unit, observed_at, $11, source_id, recorded_by FROM input
WHERE source_id IS NULL OR id IN (SELECT reading_id FROM src)
RETURNING id`

// scopeManySQL is the patient scope for a group of jobs: it returns the
// ordinal of every job whose actor may see its patient, with the patient's
// organisation (whose rule pack judges the readings), personalised rule
// parameters, the findings waiting for a retake, and whether the patient's
// processing is restricted.
var scopeManySQL = `SELECT x.i, p.care_team_id, p.programs, p.enrolled_at, p.org_id, pp.overrides, ` + alerting.PendingRetakesSQL + `,
	p.restricted_at IS NOT NULL
FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[]) WITH ORDINALITY AS x(pid, role, apid, uid, i)
CROSS JOIN LATERAL (SELECT * FROM patients p WHERE p.id = x.pid OFFSET 0) p
LEFT JOIN patient_params pp ON pp.patient_id = p.id
WHERE ` + scope.PatientSQL("p", "x.role", "x.apid", "x.uid")

// duplicateSourcesSQL finds the (patient, source id) pairs already stored, with their readings.
const duplicateSourcesSQL = `SELECT s.patient_id, s.source_id, s.reading_id FROM unnest($1::uuid[], $2::text[]) AS k(patient_id, source_id)
		CROSS JOIN LATERAL (SELECT * FROM reading_sources s WHERE s.patient_id = k.patient_id AND s.source_id = k.source_id OFFSET 0) s`

// historySQL reads what the rules need for a group, ordered by patient and
// observation time. It runs after the insert in the same transaction, so it
// includes the new readings.
const historySQL = `SELECT r.patient_id, r.id, r.kind, r.value, coalesce(r.systolic, 0), coalesce(r.diastolic, 0), r.unit, r.observed_at
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS w(patient_id, kind, since)
CROSS JOIN LATERAL (SELECT * FROM readings r WHERE r.patient_id = w.patient_id AND r.kind = w.kind AND r.observed_at >= w.since
	AND r.observed_at <= $4 -- nothing is observed later than now plus the allowed skew: prunes future partitions
	AND r.entered_in_error_at IS NULL -- retracted by its source
	OFFSET 0) r
ORDER BY r.patient_id, r.observed_at, r.id`

// recordJobRunSQL records that the missing-data job for a rule ran at $2 (never moving the mark
// back).
const recordJobRunSQL = `INSERT INTO rule_job_runs (name, ran_at) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET ran_at = greatest(rule_job_runs.ran_at, excluded.ran_at)`

// jobRunsSQL reads when the missing-data jobs $1 last ran.
const jobRunsSQL = `SELECT name, ran_at FROM rule_job_runs WHERE name = ANY($1)`

// missingPageSQL pages through patients after $1 (all, or those in programs $3) whose processing
// is not restricted, with the last observation of each kind in $5: those of organisations $6, or
// when $7 of every organisation but those.
const missingPageSQL = `SELECT p.id, p.care_team_id, p.programs, p.enrolled_at, p.org_id, k.kind, l.last
		FROM (SELECT id, care_team_id, programs, enrolled_at, org_id FROM patients
			WHERE id > $1 AND ($2 OR programs && $3::text[]) AND (org_id = ANY($6::uuid[])) <> $7 AND restricted_at IS NULL
			ORDER BY id LIMIT $4) p
		CROSS JOIN unnest($5::text[]) AS k(kind)
		LEFT JOIN LATERAL (SELECT r.observed_at AS last FROM readings r WHERE r.patient_id = p.id AND r.kind = k.kind
			ORDER BY r.observed_at DESC LIMIT 1) l ON true
		ORDER BY p.id`

// organisationsSQL lists every organisation (the missing-data check groups them by their pack).
const organisationsSQL = `SELECT id FROM organisations ORDER BY id`

// lastObservedSQL reads the last observation time of each kind in $2 for patient $1.
const lastObservedSQL = `SELECT kind, max(observed_at) FROM readings WHERE patient_id = $1 AND kind = ANY($2) GROUP BY kind`

// reportedMissingSQL finds which (rule, due time) pairs were already reported as missing data for
// patient $1.
const reportedMissingSQL = `SELECT af.rule_id, af.observed_at FROM alert_findings af JOIN alerts a ON a.id = af.alert_id
			WHERE a.patient_id = $1 AND af.reading_id IS NULL AND (af.rule_id, af.observed_at) IN (
				SELECT * FROM unnest($2::text[], $3::timestamptz[]))`

// ensurePartitionSQL creates the readings partition for the month of $1 if it does not exist.
const ensurePartitionSQL = `SELECT tend_ensure_reading_partition($1)`

// listReadingsSQL pages through patient $1's readings, newest first, optionally of one kind and
// within a time range.
const listReadingsSQL = `SELECT ` + readings.Columns + ` FROM readings r WHERE r.patient_id = $1
			AND ($2 = '' OR r.kind = $2) AND ($3::timestamptz IS NULL OR r.observed_at >= $3)
			AND ($4::timestamptz IS NULL OR r.observed_at < $4)
			AND ($5::timestamptz IS NULL OR (r.observed_at, r.id) < ($5, $6::uuid))
			AND r.entered_in_error_at IS NULL
			ORDER BY r.observed_at DESC, r.id DESC LIMIT $7`

// symptomReportByKeySQL finds patient $1's symptom report with idempotency key $2.
const symptomReportByKeySQL = `SELECT id, reported_at FROM symptom_reports WHERE patient_id = $1 AND idempotency_key = $2`

// insertSymptomReportSQL stores a symptom report.
const insertSymptomReportSQL = `INSERT INTO symptom_reports (id, patient_id, symptoms, note_key_id, note_sealed, reported_at, reported_by,
			idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// patientThreadsSQL lists patient $1's threads with their care teams.
const patientThreadsSQL = `SELECT id FROM threads WHERE patient_id = $1 AND kind = 'patient' ORDER BY id`

// linkReportAlertsSQL links report $1 to the alerts $2 it raised.
const linkReportAlertsSQL = `INSERT INTO symptom_report_alerts (report_id, alert_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`

// listSymptomReportsSQL pages through patient $1's symptom reports, newest first, with the alerts
// each raised.
const listSymptomReportsSQL = `SELECT s.id, s.patient_id, s.symptoms, s.note, s.note_key_id, s.note_sealed, s.reported_at, s.reported_by,
				coalesce(array(SELECT l.alert_id FROM symptom_report_alerts l WHERE l.report_id = s.id ORDER BY l.alert_id), '{}')
			FROM symptom_reports s WHERE s.patient_id = $1 AND (s.reported_at, s.id) < ($2, $3)
			ORDER BY s.reported_at DESC, s.id DESC LIMIT $4`
