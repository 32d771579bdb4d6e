package messaging

import (
	"github.com/tendhealth/tend/engine/internal/devicekeys"
	"github.com/tendhealth/tend/engine/internal/scope"
)

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"lockThreadsSQL":       lockThreadsSQL,
	"groupScopeSQL":        groupScopeSQL,
	"numberSQL":            numberSQL,
	"insertMessagesSQL":    insertMessagesSQL,
	"markManySQL":          markManySQL,
	"threadSQL":            threadSQL,
	"clientMessageSQL":     clientMessageSQL,
	"listThreadsSQL":       listThreadsSQL,
	"messagesBeforeSQL":    messagesBeforeSQL,
	"messagesAfterSQL":     messagesAfterSQL,
	"messageByIDSQL":       messageByIDSQL,
	"receiptsSQL":          receiptsSQL,
	"seqOfSQL":             seqOfSQL,
	"receiptOfSQL":         receiptOfSQL,
	"staffPeerSQL":         staffPeerSQL,
	"insertDirectSQL":      insertDirectSQL,
	"directThreadSQL":      directThreadSQL,
	"pushMessageSQL":       pushMessageSQL,
	"pushRecipientsSQL":    pushRecipientsSQL,
	"sealedMessagesSQL":    sealedMessagesSQL,
	"resealMessagesSQL":    resealMessagesSQL,
	"sealedNotesSQL":       sealedNotesSQL,
	"resealNotesSQL":       resealNotesSQL,
	"countSealedSQL":       countSealedSQL,
	"stalePatientKeysSQL":  stalePatientKeysSQL,
	"rewrapPatientKeysSQL": rewrapPatientKeysSQL,
	"streamDeliveredSQL":   streamDeliveredSQL,
	"patientThreadsSQL":    patientThreadsSQL,
	"patientMessagesSQL":   patientMessagesSQL,
	"patientMessageSQL":    patientMessageSQL,

	"threadDevicesSQL":           threadDevicesSQL,
	"participantsWithoutKeysSQL": participantsWithoutKeysSQL,
	"encryptThreadSQL":           encryptThreadSQL,
	"envelopeScopeSQL":           envelopeScopeSQL,
	"groupDevicesSQL":            groupDevicesSQL,
	"insertEnvelopesSQL":         insertEnvelopesSQL,
	"recordEnvelopesSQL":         recordEnvelopesSQL,
}

// threadColumns are a thread's columns, with the actor's read watermark
// ($3 is the actor's user id in every statement that uses them), and its
// organisation (its care team's, or a direct thread's users') with that
// organisation's record key.
const threadColumns = `t.id, t.kind, t.care_team_id, t.patient_id, t.user_a, t.user_b, t.last_seq, t.last_message_at,
	t.last_activity_at, t.created_at, t.encrypted, coalesce((SELECT r.read_up_to FROM thread_receipts r WHERE r.thread_id = t.id AND r.user_id = $3), 0),
	o.id, o.record_public_key`

// threadOrgJoin joins a thread t's organisation as o.
const threadOrgJoin = ` JOIN organisations o ON o.id = coalesce((SELECT ct.org_id FROM care_teams ct WHERE ct.id = t.care_team_id),
	(SELECT du.org_id FROM users du WHERE du.id = t.user_a))`

// threadSQL reads thread $4 if the actor ($1 role, $2 patient, $3 user) is
// one of its participants.
var threadSQL = `SELECT ` + threadColumns + ` FROM threads t` + threadOrgJoin + ` WHERE t.id = $4 AND ` + scope.ThreadSQL("t", "$1", "$2", "$3")

// clientMessageSQL finds the message user $2 posted in thread $1 with client id $3.
const clientMessageSQL = `SELECT id FROM messages WHERE thread_id = $1 AND sender_id = $2 AND client_id = $3`

// listThreadsSQL pages through the threads the actor ($1 role, $2 patient,
// $3 user) takes part in, by last activity (newest first) after the cursor
// ($4 time, $5 id), at most $6, about patient $7 only when $7 is not null
// (direct threads are about nobody). It is scope.ThreadSQL split into its three
// branches, each read in activity order from an index and cut at the page
// size, so a clinician of teams with thousands of threads reads a page, not
// every thread (TestThreadAuthorizationTable checks that the list and
// ThreadSQL agree).
const listThreadsSQL = `SELECT ` + threadColumns + ` FROM (
	(SELECT t.* FROM care_team_members m CROSS JOIN LATERAL (
		SELECT * FROM threads t WHERE t.care_team_id = m.care_team_id AND t.kind IN ('patient', 'staff_patient', 'team')
			AND (t.last_activity_at, t.id) < ($4, $5) AND ($7::uuid IS NULL OR t.patient_id = $7)
			ORDER BY t.last_activity_at DESC, t.id DESC LIMIT $6) t
		WHERE m.user_id = $3 AND $1 IN ('clinician', 'scheduler', 'admin')
		ORDER BY t.last_activity_at DESC, t.id DESC LIMIT $6)
	UNION ALL
	(SELECT t.* FROM threads t WHERE $1 = 'patient' AND t.patient_id = $2 AND t.kind = 'patient'
		AND (t.last_activity_at, t.id) < ($4, $5) AND ($7::uuid IS NULL OR t.patient_id = $7)
		ORDER BY t.last_activity_at DESC, t.id DESC LIMIT $6)
	UNION ALL
	(SELECT t.* FROM threads t WHERE $1 IN ('clinician', 'scheduler', 'admin') AND t.kind = 'direct' AND (t.user_a = $3 OR t.user_b = $3)
		AND (t.last_activity_at, t.id) < ($4, $5) AND $7::uuid IS NULL
		ORDER BY t.last_activity_at DESC, t.id DESC LIMIT $6)
) t` + threadOrgJoin + ` ORDER BY t.last_activity_at DESC, t.id DESC LIMIT $6`

// messageColumns are a stored message's columns.
const messageColumns = `m.id, m.thread_id, m.seq, m.sender_id, m.sender_role, m.kind, m.key_id, m.body, m.urgent, m.client_id,
	m.attachment_ids, m.symptom_report_id, m.created_at`

// messagesBeforeSQL reads at most $3 messages of thread $1 before sequence
// number $2, newest first.
const messagesBeforeSQL = `SELECT ` + messageColumns + ` FROM messages m WHERE m.thread_id = $1 AND m.seq < $2
	ORDER BY m.seq DESC LIMIT $3`

// messagesAfterSQL reads at most $3 messages of thread $1 after sequence
// number $2, oldest first.
const messagesAfterSQL = `SELECT ` + messageColumns + ` FROM messages m WHERE m.thread_id = $1 AND m.seq > $2
	ORDER BY m.seq LIMIT $3`

// messageByIDSQL reads message $1.
const messageByIDSQL = `SELECT ` + messageColumns + ` FROM messages m WHERE m.id = $1`

// receiptsSQL reads the participants of thread $1 with their watermarks.
var receiptsSQL = `SELECT p.id, coalesce(r.delivered_up_to, 0), coalesce(r.read_up_to, 0)
	FROM threads t CROSS JOIN LATERAL unnest(` + scope.ParticipantsSQL("t") + `) AS p(id)
	LEFT JOIN thread_receipts r ON r.thread_id = t.id AND r.user_id = p.id
	WHERE t.id = $1`

// seqOfSQL reads the sequence number of message $2 of thread $1.
const seqOfSQL = `SELECT seq FROM messages WHERE thread_id = $1 AND id = $2`

// staffPeerSQL tells whether user $2 is an enabled staff user who shares a
// care team with user $1.
const staffPeerSQL = `SELECT EXISTS (SELECT 1 FROM users u
	JOIN care_team_members mb ON mb.user_id = u.id
	JOIN care_team_members ma ON ma.care_team_id = mb.care_team_id AND ma.user_id = $1
	WHERE u.id = $2 AND u.disabled_at IS NULL AND u.role IN ('clinician', 'scheduler', 'admin'))`

// insertDirectSQL creates the direct thread ($1) of users $2 < $3 at $4,
// unless they have one.
const insertDirectSQL = `INSERT INTO threads (id, kind, user_a, user_b, last_activity_at, created_at)
	VALUES ($1, 'direct', $2, $3, $4, $4) ON CONFLICT DO NOTHING`

// directThreadSQL reads the direct thread of users $1 < $2, with user $3's
// read watermark.
const directThreadSQL = `SELECT ` + threadColumns + ` FROM threads t` + threadOrgJoin + ` WHERE t.kind = 'direct' AND t.user_a = $1 AND t.user_b = $2`

// pushMessageSQL reads what a message's push needs: its thread, sequence
// number, sender, urgency and kind, and the thread's kind.
const pushMessageSQL = `SELECT m.thread_id, m.seq, m.sender_id, m.sender_role, m.urgent, m.kind, t.kind
	FROM messages m JOIN threads t ON t.id = m.thread_id WHERE m.id = $1`

// pushRecipientsSQL reads the participants of thread $1 now, with their
// user role, their role in the thread's team (if any) and their read
// watermark.
var pushRecipientsSQL = `SELECT u.id, u.role,
	(SELECT m.role FROM care_team_members m WHERE m.care_team_id = t.care_team_id AND m.user_id = u.id),
	coalesce(r.read_up_to, 0)
	FROM threads t CROSS JOIN LATERAL unnest(` + scope.ParticipantsSQL("t") + `) AS p(id)
	JOIN users u ON u.id = p.id
	LEFT JOIN thread_receipts r ON r.thread_id = t.id AND r.user_id = u.id
	WHERE t.id = $1`

// sealedMessagesSQL reads, in id order after id $2, at most $3 messages
// sealed under a server key other than $1 (to re-seal), locking them; those
// under a patient's data key ("p:…") stay, their key is re-wrapped.
const sealedMessagesSQL = `SELECT id, thread_id, key_id, body FROM messages WHERE key_id <> $1 AND key_id NOT LIKE 'p:%'
	AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE`

// resealMessagesSQL stores re-sealed bodies: messages $1 sealed under key
// $2 as $3.
const resealMessagesSQL = `UPDATE messages m SET key_id = $2, body = x.body
	FROM unnest($1::uuid[], $3::bytea[]) AS x(id, body) WHERE m.id = x.id`

// sealedNotesSQL reads, in id order after id $2, at most $3 symptom reports
// whose note is not sealed under key $1 (sealed under an older server key,
// or stored before notes were sealed), locking them.
const sealedNotesSQL = `SELECT id, patient_id, note_key_id, note_sealed, note FROM symptom_reports
	WHERE ((note_key_id IS NOT NULL AND note_key_id <> $1 AND note_key_id NOT LIKE 'p:%') OR note IS NOT NULL) AND id > $2
	ORDER BY id LIMIT $3 FOR UPDATE`

// resealNotesSQL stores re-sealed notes: reports $1 sealed under key $2 as
// $3, and clears any plaintext note.
const resealNotesSQL = `UPDATE symptom_reports s SET note_key_id = $2, note_sealed = x.ct, note = NULL
	FROM unnest($1::uuid[], $3::bytea[]) AS x(id, ct) WHERE s.id = x.id`

// countSealedSQL tells whether any sealed record exists, and how many are
// sealed under a server key other than $1 (or not sealed yet), patient data
// keys wrapped under another key included (records under a patient's key
// are not counted: re-wrapping the key is what rotates them).
const countSealedSQL = `SELECT EXISTS (SELECT 1 FROM messages) OR EXISTS (SELECT 1 FROM symptom_reports WHERE note_key_id IS NOT NULL)
		OR EXISTS (SELECT 1 FROM broadcasts) OR EXISTS (SELECT 1 FROM attachment_blobs) OR EXISTS (SELECT 1 FROM patient_keys),
	(SELECT count(*) FROM messages WHERE key_id <> $1 AND key_id NOT LIKE 'p:%')
	+ (SELECT count(*) FROM symptom_reports WHERE (note_key_id IS NOT NULL AND note_key_id <> $1 AND note_key_id NOT LIKE 'p:%') OR note IS NOT NULL)
	+ (SELECT count(*) FROM broadcasts WHERE key_id <> $1)
	+ (SELECT count(*) FROM attachment_blobs WHERE key_id <> $1 AND key_id NOT LIKE 'p:%')
	+ (SELECT count(*) FROM patient_keys WHERE wrap_key_id <> $1)`

// stalePatientKeysSQL reads, in patient order after $2, at most $3 patient
// data keys wrapped under a server key other than $1, locking them.
const stalePatientKeysSQL = `SELECT patient_id, wrap_key_id, wrapped FROM patient_keys WHERE wrap_key_id <> $1 AND patient_id > $2
	ORDER BY patient_id LIMIT $3 FOR UPDATE`

// rewrapPatientKeysSQL stores re-wrapped data keys: patients $1's under
// server key $2 as $3.
const rewrapPatientKeysSQL = `UPDATE patient_keys k SET wrap_key_id = $2, wrapped = x.w
	FROM unnest($1::uuid[], $3::bytea[]) AS x(p, w) WHERE k.patient_id = x.p`

// streamDeliveredSQL reads the thread and sequence number of message $1 if
// the actor ($2 role, $3 patient, $4 user) takes part in its thread.
var streamDeliveredSQL = `SELECT m.thread_id, m.seq FROM messages m JOIN threads t ON t.id = m.thread_id
	WHERE m.id = $1 AND ` + scope.ThreadSQL("t", "$2", "$3", "$4")

// receiptOfSQL reads user $2's watermarks in thread $1.
const receiptOfSQL = `SELECT delivered_up_to, read_up_to FROM thread_receipts WHERE thread_id = $1 AND user_id = $2`

// lockThreadsSQL locks threads $1 (sorted by id: concurrent groups take
// their locks in one order and cannot deadlock).
const lockThreadsSQL = `SELECT id FROM threads WHERE id = ANY($1) ORDER BY id FOR UPDATE`

// groupScopeSQL reads, for each post i (thread $1[i] by an actor of role
// $2[i], patient $3[i] and user $4[i], with client id $5[i]) whose actor
// takes part in the thread, the thread's team, patient and encryption flag and the message
// already posted with that client id (NULL for none), and the wrapped data
// key of the thread's patient (NULLs for none).
var groupScopeSQL = `SELECT x.i, t.care_team_id, t.patient_id, t.encrypted,
	(SELECT m.id FROM messages m WHERE m.thread_id = t.id AND m.sender_id = x.u AND m.client_id = x.c),
	pk.wrap_key_id, pk.wrapped
	FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[]) WITH ORDINALITY AS x(th, role, pat, u, c, i)
	JOIN threads t ON t.id = x.th AND ` + scope.ThreadSQL("t", "x.role", "x.pat", "x.u") + `
	LEFT JOIN patient_keys pk ON pk.patient_id = t.patient_id`

// numberSQL takes $2[i] sequence numbers of thread $1[i] at $3 and returns
// each thread's new last one.
const numberSQL = `UPDATE threads t SET last_seq = t.last_seq + x.n, last_message_at = $3, last_activity_at = $3
	FROM unnest($1::uuid[], $2::int[]) AS x(id, n) WHERE t.id = x.id RETURNING t.id, t.last_seq`

// insertMessagesSQL stores text messages: ids $1, threads $2, sequence
// numbers $3, senders $4 of roles $5, sealed under keys $6 as $7, urgent $8,
// client ids $9, attachments $10 (uuid[] literals), at $11.
const insertMessagesSQL = `INSERT INTO messages (id, thread_id, seq, sender_id, sender_role, kind, key_id, body, urgent, client_id,
		attachment_ids, created_at)
	SELECT x.id, x.th, x.seq, x.u, x.r, 'text', x.k, x.b, x.urg, x.c, x.a::uuid[], $11
	FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::bytea[], $8::bool[], $9::text[], $10::text[])
		AS x(id, th, seq, u, r, k, b, urg, c, a)`

// markManySQL raises the watermarks of users $2[i] in threads $1[i] to
// $3[i] (delivered and read: their own messages), at $4.
const markManySQL = `INSERT INTO thread_receipts (thread_id, user_id, delivered_up_to, read_up_to, updated_at)
	SELECT x.t, x.u, x.s, x.s, $4 FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS x(t, u, s)
	ON CONFLICT (thread_id, user_id) DO UPDATE SET
		delivered_up_to = GREATEST(thread_receipts.delivered_up_to, EXCLUDED.delivered_up_to),
		read_up_to = GREATEST(thread_receipts.read_up_to, EXCLUDED.read_up_to),
		updated_at = EXCLUDED.updated_at`

// patientThreadsSQL reads the patient threads (kind patient) of patient $4
// that the actor ($1 role, $2 patient, $3 user) takes part in, with their
// care teams.
var patientThreadsSQL = `SELECT t.id, t.care_team_id FROM threads t
	WHERE t.kind = 'patient' AND t.patient_id = $4 AND ` + scope.ThreadSQL("t", "$1", "$2", "$3") + `
	ORDER BY t.id`

// patientMessagesSQL reads at most $6 messages of threads $1 sent in
// [$2, $3) before the cursor ($4 time, $5 id), newest first.
const patientMessagesSQL = `SELECT ` + messageColumns + ` FROM messages m
	WHERE m.thread_id = ANY($1::uuid[]) AND m.created_at >= $2 AND m.created_at < $3 AND (m.created_at, m.id) < ($4, $5)
	ORDER BY m.created_at DESC, m.id DESC LIMIT $6`

// patientMessageSQL reads message $4, with its thread's patient and care
// team, if its thread is a patient thread the actor ($1 role, $2 patient,
// $3 user) takes part in.
var patientMessageSQL = `SELECT ` + messageColumns + `, t.patient_id, t.care_team_id FROM messages m
	JOIN threads t ON t.id = m.thread_id
	WHERE m.id = $4 AND t.kind = 'patient' AND ` + scope.ThreadSQL("t", "$1", "$2", "$3")

// threadDevicesSQL reads the current (unrevoked) end-to-end encryption
// devices of thread $1's participants now, in id order.
var threadDevicesSQL = `SELECT ` + devicekeys.Columns + `
	FROM threads t CROSS JOIN LATERAL unnest(` + scope.ParticipantsSQL("t") + `) AS p(id)
	JOIN e2ee_devices d ON d.user_id = p.id AND d.revoked_at IS NULL
	WHERE t.id = $1 ORDER BY d.id`

// participantsWithoutKeysSQL counts thread $1's participants who have no
// current end-to-end encryption device.
var participantsWithoutKeysSQL = `SELECT count(*)
	FROM threads t CROSS JOIN LATERAL unnest(` + scope.ParticipantsSQL("t") + `) AS p(id)
	WHERE t.id = $1 AND NOT EXISTS (SELECT 1 FROM e2ee_devices d WHERE d.user_id = p.id AND d.revoked_at IS NULL)`

// encryptThreadSQL turns thread $1 end-to-end encrypted.
const encryptThreadSQL = `UPDATE threads SET encrypted = true WHERE id = $1`

// envelopeScopeSQL reads, for each envelope post i (to thread $1[i] by an
// actor of role $2[i], patient $3[i] and user $4[i], from device $5[i] with
// sender sequence $6[i]) whose actor takes part in the thread: the thread's
// team, patient, encryption flag and last sequence number, its organisation
// and that organisation's record key; whether the device is the user's and
// unrevoked, the last sender sequence it used in the thread (0 for none) and
// the message it stored with sequence $6[i] (id and ciphertext hash, NULLs
// for none); and the wrapped data key of the thread's patient (NULLs for
// none). That message is looked up in a subquery of its own (LIMIT keeps it
// one): as a join, the generic plan made before messages was analysed (a new
// database, until autovacuum analyses it) found it by thread alone and read
// every earlier message of the thread, post after post
// (TestEnvelopeScopeReadsOneMessage).
var envelopeScopeSQL = `SELECT x.i, t.care_team_id, t.patient_id, t.encrypted, t.last_seq, o.id, o.record_public_key,
	EXISTS (SELECT 1 FROM e2ee_devices d WHERE d.id = x.dev AND d.user_id = x.u AND d.revoked_at IS NULL),
	coalesce((SELECT max(m.sender_seq) FROM messages m WHERE m.thread_id = t.id AND m.sender_device_id = x.dev), 0),
	s.id, s.ciphertext_sha256, pk.wrap_key_id, pk.wrapped
	FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bigint[]) WITH ORDINALITY
		AS x(th, role, pat, u, dev, sseq, i)
	JOIN threads t ON t.id = x.th AND ` + scope.ThreadSQL("t", "x.role", "x.pat", "x.u") + threadOrgJoin + `
	LEFT JOIN LATERAL (SELECT s.id, s.ciphertext_sha256 FROM messages s
		WHERE s.thread_id = t.id AND s.sender_device_id = x.dev AND s.sender_seq = x.sseq LIMIT 1) s ON true
	LEFT JOIN patient_keys pk ON pk.patient_id = t.patient_id`

// groupDevicesSQL reads the current (unrevoked) end-to-end encryption
// devices of the participants of threads $1 now, each with its thread, in
// thread and device order.
var groupDevicesSQL = `SELECT t.id, ` + devicekeys.Columns + `
	FROM threads t CROSS JOIN LATERAL unnest(` + scope.ParticipantsSQL("t") + `) AS p(id)
	JOIN e2ee_devices d ON d.user_id = p.id AND d.revoked_at IS NULL
	WHERE t.id = ANY($1) ORDER BY t.id, d.id`

// insertEnvelopesSQL stores encrypted messages: ids $1, threads $2,
// sequence numbers $3, senders $4 of roles $5, envelopes sealed at rest
// under keys $6 as $7, urgent $8, sender devices $9, sender sequences $10,
// ciphertext SHA-256s $11 and attachments $13 (uuid[] literals), at $12.
const insertEnvelopesSQL = `INSERT INTO messages (id, thread_id, seq, sender_id, sender_role, kind, key_id, body, urgent,
		created_at, sender_device_id, sender_seq, ciphertext_sha256, attachment_ids)
	SELECT x.id, x.th, x.seq, x.u, x.r, 'encrypted', x.k, x.b, x.urg, $12, x.dev, x.sseq, x.sum, x.a::uuid[]
	FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::bytea[], $8::bool[],
		$9::uuid[], $10::bigint[], $11::bytea[], $13::text[]) AS x(id, th, seq, u, r, k, b, urg, dev, sseq, sum, a)`

// recordEnvelopesSQL reads every encrypted message of patient $1's threads,
// thread by thread in order, with the sender device's signing key.
const recordEnvelopesSQL = `SELECT m.id, m.thread_id, t.kind, m.seq, m.sender_id, m.sender_role, m.key_id, m.body, m.created_at,
	d.signing_public_key
	FROM threads t JOIN messages m ON m.thread_id = t.id
	LEFT JOIN e2ee_devices d ON d.id = m.sender_device_id
	WHERE t.patient_id = $1 AND m.kind = 'encrypted'
		AND EXISTS (SELECT 1 FROM patients p WHERE p.id = $1 AND p.org_id = coalesce($2::uuid, p.org_id))
	ORDER BY t.id, m.seq`
