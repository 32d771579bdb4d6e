package audit

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"auditSQL":                     auditSQL,
	"listAuditSQL":                 listAuditSQL,
	"listAuditNewestSQL":           listAuditNewestSQL,
	"readingCreationsSQL":          readingCreationsSQL,
	"readingCreationsUnsourcedSQL": readingCreationsUnsourcedSQL,
	"unchainedSQL":                 unchainedSQL,
	"linkSQL":                      linkSQL,
	"sealHeadSQL":                  sealHeadSQL,
	"chainSQL":                     chainSQL,
	"headSQL":                      headSQL,
	"unsealedSQL":                  unsealedSQL,
	"sealDelaySQL":                 sealDelaySQL,
	"findHashSQL":                  findHashSQL,
	"auditManySQL":                 auditManySQL,

	"listAuditByPatientSQL": listAuditByPatientSQL,
	"listAuditByActorSQL":   listAuditByActorSQL,
}

// findHashSQL finds the link whose hash is $1 (verify's diagnosis of a
// broken link; a full scan, run once).
const findHashSQL = `SELECT seq FROM audit_chain WHERE hash = $1 ORDER BY seq LIMIT 1`

// unchainedSQL takes the sealer's lock and returns at most $1 committed
// unchained entries in id order, each column of their canonical form as text
// (migration 00029); no rows when there are none or another sealer holds the
// lock.
const unchainedSQL = `SELECT id, at_micros, actor_id, actor_role, action, patient_id, object_type, object_id, request_id,
		outcome, detail, org_id FROM tend_audit_unchained($1)`

// sealHeadSQL is the chain's head, seq and hash (0 and the genesis hash when
// nothing is chained), read by the sealer once it holds the lock.
const sealHeadSQL = `SELECT seq, hash FROM tend_audit_head()`

// linkSQL inserts the links computed from unchainedSQL's entries: seqs $1,
// entry ids $2, previous hashes $3, hashes $4.
const linkSQL = `SELECT tend_audit_link($1, $2, $3, $4)`

// chainSQL reads the links from seq $1 on, in chain order, at most $2, with
// the entry each chains and everything its hash covers (e.id is null when the
// entry is missing).
const chainSQL = `SELECT c.seq, c.entry_id, e.id IS NOT NULL, coalesce((extract(epoch FROM e.at) * 1000000)::bigint, 0),
		e.actor_id::text, coalesce(e.actor_role, ''), coalesce(e.action, ''), e.patient_id::text, coalesce(e.object_type, ''),
		e.object_id, e.request_id, coalesce(e.outcome, ''), e.detail::text, e.org_id::text, c.prev_hash, c.hash
		FROM audit_chain c LEFT JOIN audit_entries e ON e.id = c.entry_id WHERE c.seq >= $1 ORDER BY c.seq LIMIT $2`

// headSQL is the last sealed entry's seq and hash and the number of sealed
// entries (no rows when nothing is sealed).
const headSQL = `SELECT seq, hash, (SELECT count(*) FROM audit_chain) FROM audit_chain ORDER BY seq DESC LIMIT 1`

// unsealedSQL counts committed entries the sealer has not chained yet.
const unsealedSQL = `SELECT count(*) FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = e.id)`

// sealDelaySQL summarises, for entries sealed at or after $1, how long each
// waited between its time and its seal: count, mean, p50, p99 and max in
// milliseconds.
const sealDelaySQL = `SELECT count(*), coalesce(avg(d), 0), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY d), 0),
		coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY d), 0), coalesce(max(d), 0)
		FROM (SELECT extract(epoch FROM c.sealed_at - e.at) * 1000 AS d
			FROM audit_chain c JOIN audit_entries e ON e.id = c.entry_id WHERE c.sealed_at >= $1) AS s`

// auditSQL appends one audit entry.
// The entry's organisation is the actor's ($11), or for Tend itself and an
// operator the patient's, if any.
const auditSQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome, org_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, coalesce($11, (SELECT p.org_id FROM patients p WHERE p.id = $5)))`

// listAuditSQL pages through the audit trail after id $1, optionally for one patient ($2), one actor
// ($3), one action ($4), at or after $5 and before $6, at most $7 entries, of organisation $8 (NULL:
// every entry, for Tend itself).
const listAuditSQL = `SELECT ` + auditListColumns + ` FROM audit_entries WHERE id > $1 AND ` + auditListFilter + ` AND org_id IS NOT DISTINCT FROM coalesce($8::uuid, org_id) ORDER BY id LIMIT $7`

// listAuditNewestSQL is listAuditSQL newest first: entries before id $1 (0: from the newest).
const listAuditNewestSQL = `SELECT ` + auditListColumns + ` FROM audit_entries WHERE ($1 = 0 OR id < $1) AND ` + auditListFilter +
	` AND org_id IS NOT DISTINCT FROM coalesce($8::uuid, org_id) ORDER BY id DESC LIMIT $7`

const auditListColumns = `id, at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome,
	(SELECT c.seq FROM audit_chain c WHERE c.entry_id = audit_entries.id)`

const auditListFilter = `($2::uuid IS NULL OR patient_id = $2) AND ($3::uuid IS NULL OR actor_id = $3)
		AND ($4::text IS NULL OR action = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)`

// listAuditByPatientSQL is listAuditSQL for one patient ($2 is set): index
// audit_entries_patient_idx.
const listAuditByPatientSQL = `SELECT ` + auditListColumns + `
		FROM audit_entries WHERE patient_id = $2 AND id > $1 AND ($3::uuid IS NULL OR actor_id = $3)
		AND ($4::text IS NULL OR action = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
		AND org_id IS NOT DISTINCT FROM coalesce($8::uuid, org_id) ORDER BY id LIMIT $7`

// listAuditByActorSQL is listAuditSQL for one actor ($3 is set, $2 is not):
// index audit_entries_actor_idx.
const listAuditByActorSQL = `SELECT ` + auditListColumns + `
		FROM audit_entries WHERE actor_id = $3 AND id > $1 AND ($2::uuid IS NULL OR patient_id = $2)
		AND ($4::text IS NULL OR action = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
		AND org_id IS NOT DISTINCT FROM coalesce($8::uuid, org_id) ORDER BY id LIMIT $7`

// readingCreationsSQL appends one "reading.create" audit entry per job (its first
// reading and the count), in the patient's organisation ($9), leaving out
// readings whose source id was already stored.
//
// A reading with a source id counts when the source id names it: one
// lookup in reading_sources' primary key per reading, as a scalar subquery.
// An EXISTS under the OR would let the planner hash the whole of
// reading_sources instead, and the engine's pool plans each statement once
// per connection (force_generic_plan): a plan made while the table was
// small (a new database, or one not yet analysed) then read the whole
// table for every group commit until the table was next analysed (PostgreSQL
// re-plans then; never, without autovacuum) — tens of milliseconds per group
// at 40,000 rows (TestReadingCreationsUseSourceKey).
const readingCreationsSQL = `WITH j AS (
	SELECT * FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::text[], $9::uuid[]) WITH ORDINALITY AS j(a, r, p, q, g, n)
), x AS (
	SELECT * FROM unnest($6::uuid[], $7::int[], $8::text[]) WITH ORDINALITY AS x(o, jn, s, k)
)
INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, org_id)
SELECT $1, j.a, j.r, 'reading.create', j.p, 'reading', (array_agg(x.o ORDER BY x.k))[1]::text, j.q, jsonb_build_object('count', count(*)), j.g
FROM x JOIN j ON j.n = x.jn
WHERE x.s IS NULL OR (SELECT rs.reading_id FROM reading_sources rs WHERE rs.patient_id = j.p AND rs.source_id = x.s) = x.o
GROUP BY j.n, j.a, j.r, j.p, j.q, j.g`

// readingCreationsUnsourcedSQL is readingCreationsSQL for a group without source
// ids, where every reading is created: one entry per job with its first reading
// $6 and count $7, in order.
const readingCreationsUnsourcedSQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, org_id)
SELECT $1, j.a, j.r, 'reading.create', j.p, 'reading', j.o::text, j.q, jsonb_build_object('count', j.c), j.g
FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::uuid[], $7::int[], $8::uuid[]) WITH ORDINALITY AS j(a, r, p, q, o, c, g, n)
ORDER BY j.n`

// auditManySQL appends entries at $1: actors $2 of roles $3, actions $4, patients $5, object types
// $6 and ids $7, request ids $8, details $9 (JSON text), outcomes $10, organisations $11 (as
// auditSQL), in order.
const auditManySQL = `INSERT INTO audit_entries (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome, org_id)
SELECT $1, x.a, x.r, x.act, x.p, x.t, x.o, x.q, x.d::jsonb, x.oc, coalesce(x.g, (SELECT p.org_id FROM patients p WHERE p.id = x.p))
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::uuid[])
	WITH ORDINALITY AS x(a, r, act, p, t, o, q, d, oc, g, n)
ORDER BY x.n`
