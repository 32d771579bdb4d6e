package audit

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"auditSQL":            auditSQL,
	"listAuditSQL":        listAuditSQL,
	"readingCreationsSQL": readingCreationsSQL,
}

// auditSQL appends one audit entry.
const auditSQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// listAuditSQL pages through the audit trail after id $1, optionally for one patient ($2), at most
// $3 entries.
const listAuditSQL = `SELECT id, at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail
		FROM audit_entries WHERE id > $1 AND ($2::uuid IS NULL OR patient_id = $2) ORDER BY id LIMIT $3`

// readingCreationsSQL appends one "reading.create" audit entry per job (its first
// reading and the count), leaving out readings whose source id was already
// stored.
const readingCreationsSQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail)
SELECT $1, a, r, 'reading.create', p, 'reading', (array_agg(o ORDER BY n))[1]::text, q, jsonb_build_object('count', count(*))
FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[], $7::int[], $8::text[]) WITH ORDINALITY AS t(a, r, p, o, q, j, s, n)
WHERE t.s IS NULL OR EXISTS (
	SELECT 1 FROM reading_sources rs WHERE rs.patient_id = t.p AND rs.source_id = t.s AND rs.reading_id = t.o)
GROUP BY j, a, r, p, q`
