package audit

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"auditSQL":            auditSQL,
	"listAuditSQL":        listAuditSQL,
	"listAuditNewestSQL":  listAuditNewestSQL,
	"readingCreationsSQL": readingCreationsSQL,
	"sealSQL":             sealSQL,
	"chainSQL":            chainSQL,
	"headSQL":             headSQL,
	"unsealedSQL":         unsealedSQL,
	"sealDelaySQL":        sealDelaySQL,
	"findHashSQL":         findHashSQL,
	"auditManySQL":        auditManySQL,
}

// findHashSQL finds the sealed entry whose hash is $1 (verify's diagnosis of
// a broken link; a full scan, run once).
const findHashSQL = `SELECT seq FROM audit_entries WHERE hash = $1 ORDER BY seq LIMIT 1`

// sealSQL chains at most $1 committed unsealed entries (see migration
// 00015): it returns how many it sealed, 0 when another sealer holds the lock.
const sealSQL = `SELECT tend_audit_seal($1)`

// chainSQL reads the sealed entries from seq $1 on, in chain order, at most
// $2, with everything their hash covers.
const chainSQL = `SELECT seq, id, (extract(epoch FROM at) * 1000000)::bigint, actor_id::text, actor_role, action,
		patient_id::text, object_type, object_id, request_id, outcome, detail::text, prev_hash, hash
		FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2`

// headSQL is the last sealed entry's seq and hash and the number of sealed
// entries (no rows when nothing is sealed).
const headSQL = `SELECT seq, hash, (SELECT count(*) FROM audit_entries WHERE seq IS NOT NULL)
		FROM audit_entries WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1`

// unsealedSQL counts committed entries the sealer has not chained yet.
const unsealedSQL = `SELECT count(*) FROM audit_entries WHERE seq IS NULL`

// sealDelaySQL summarises, for entries sealed at or after $1, how long each
// waited between its time and its seal: count, mean, p50, p99 and max in
// milliseconds.
const sealDelaySQL = `SELECT count(*), coalesce(avg(d), 0), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY d), 0),
		coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY d), 0), coalesce(max(d), 0)
		FROM (SELECT extract(epoch FROM sealed_at - at) * 1000 AS d FROM audit_entries WHERE sealed_at >= $1) AS s`

// auditSQL appends one audit entry.
const auditSQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

// listAuditSQL pages through the audit trail after id $1, optionally for one patient ($2), one actor
// ($3), one action ($4), at or after $5 and before $6, at most $7 entries.
const listAuditSQL = `SELECT ` + auditListColumns + ` FROM audit_entries WHERE id > $1 AND ` + auditListFilter + ` ORDER BY id LIMIT $7`

// listAuditNewestSQL is listAuditSQL newest first: entries before id $1 (0: from the newest).
const listAuditNewestSQL = `SELECT ` + auditListColumns + ` FROM audit_entries WHERE ($1 = 0 OR id < $1) AND ` + auditListFilter +
	` ORDER BY id DESC LIMIT $7`

const auditListColumns = `id, at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome, seq`

const auditListFilter = `($2::uuid IS NULL OR patient_id = $2) AND ($3::uuid IS NULL OR actor_id = $3)
		AND ($4::text IS NULL OR action = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)`

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
// $6 and ids $7, request ids $8, details $9 (JSON text), outcomes $10, in order.
const auditManySQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome)
SELECT $1, x.a, x.r, x.act, x.p, x.t, x.o, x.q, x.d::jsonb, x.oc
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
	WITH ORDINALITY AS x(a, r, act, p, t, o, q, d, oc, n)
ORDER BY x.n`
