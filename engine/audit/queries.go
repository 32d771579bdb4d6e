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
	"auditManySQL":        auditManySQL,
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
const readingCreationsSQL = `WITH j AS (
	SELECT * FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::text[]) WITH ORDINALITY AS j(a, r, p, q, n)
), x AS (
	SELECT * FROM unnest($6::uuid[], $7::int[], $8::text[]) WITH ORDINALITY AS x(o, jn, s, k)
)
INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail)
SELECT $1, j.a, j.r, 'reading.create', j.p, 'reading', (array_agg(x.o ORDER BY x.k))[1]::text, j.q, jsonb_build_object('count', count(*))
FROM x JOIN j ON j.n = x.jn
WHERE x.s IS NULL OR EXISTS (
	SELECT 1 FROM reading_sources rs WHERE rs.patient_id = j.p AND rs.source_id = x.s AND rs.reading_id = x.o)
GROUP BY j.n, j.a, j.r, j.p, j.q`

// auditManySQL appends entries at $1: actors $2 of roles $3, actions $4, patients $5, object types
// $6 and ids $7, request ids $8, details $9 (JSON text), in order.
const auditManySQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail)
SELECT $1, x.a, x.r, x.act, x.p, x.t, x.o, x.q, x.d::jsonb
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[])
	WITH ORDINALITY AS x(a, r, act, p, t, o, q, d, n)
ORDER BY x.n`
