package messaging

import "github.com/tendhealth/tend/engine/internal/scope"

// This file holds every SQL statement of broadcasts and attachments, by
// name. TestBroadcastQueriesPrepare prepares each against the migrated
// schema.

// broadcastQueries lists every statement of this file by name.
var broadcastQueries = map[string]string{
	"teamRoleSQL":                teamRoleSQL,
	"insertBroadcastSQL":         insertBroadcastSQL,
	"broadcastThreadsSQL":        broadcastThreadsSQL,
	"broadcastSQL":               broadcastSQL,
	"broadcastBodySQL":           broadcastBodySQL,
	"lockBatchSQL":               lockBatchSQL,
	"pendingBatchSQL":            pendingBatchSQL,
	"insertBroadcastMessagesSQL": insertBroadcastMessagesSQL,
	"markBroadcastSentSQL":       markBroadcastSentSQL,
	"markSenderSQL":              markSenderSQL,
	"failBroadcastThreadSQL":     failBroadcastThreadSQL,
	"staleBroadcastsSQL":         staleBroadcastsSQL,
	"resealBroadcastsSQL":        resealBroadcastsSQL,
	"insertAttachmentSQL":        insertAttachmentSQL,
	"attachmentSQL":              attachmentSQL,
	"threadAttachmentsSQL":       threadAttachmentsSQL,
	"envelopeAttachmentsSQL":     envelopeAttachmentsSQL,
	"recordAttachmentsSQL":       recordAttachmentsSQL,
	"attachmentInfoSQL":          attachmentInfoSQL,
	"attachmentThreadsSQL":       attachmentThreadsSQL,
	"putBlobSQL":                 putBlobSQL,
	"getBlobSQL":                 getBlobSQL,
	"staleBlobsSQL":              staleBlobsSQL,
	"replaceBlobSQL":             replaceBlobSQL,
	"deleteBlobsSQL":             deleteBlobsSQL,
}

// teamRoleSQL tells whether care team $1 exists in organisation $3 (NULL:
// any), and user $2's role in it (null when no member).
const teamRoleSQL = `SELECT EXISTS (SELECT 1 FROM care_teams WHERE id = $1 AND org_id = coalesce($3::uuid, org_id)),
	(SELECT role FROM care_team_members WHERE care_team_id = $1 AND user_id = $2)`

// insertBroadcastSQL stores broadcast $1 of team $2 by sender $3 (role $4),
// its body sealed under key $5 as $6, urgent $7, request $8, at $9.
const insertBroadcastSQL = `INSERT INTO broadcasts (id, care_team_id, sender_id, sender_role, key_id, body, urgent, request_id, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// broadcastThreadsSQL takes the patient threads of team $2 (of patients in
// the team now) for broadcast $1, numbered into batches of $3 in thread
// order, records their count as its total and returns it.
const broadcastThreadsSQL = `WITH ins AS (
	INSERT INTO broadcast_threads (broadcast_id, thread_id, batch)
	SELECT $1, t.id, ((row_number() OVER (ORDER BY t.id)) - 1) / $3::int
	FROM threads t JOIN patients p ON p.id = t.patient_id AND p.care_team_id = t.care_team_id
	WHERE t.care_team_id = $2 AND t.kind = 'patient'
	RETURNING 1
), n AS (SELECT count(*)::int AS total FROM ins)
UPDATE broadcasts SET total = n.total FROM n WHERE broadcasts.id = $1 RETURNING broadcasts.total`

// broadcastSQL reads broadcast $1 with its progress.
const broadcastSQL = `SELECT b.id, b.care_team_id, b.sender_id, b.urgent, b.total, b.created_at,
	(SELECT count(*)::int FROM broadcast_threads x WHERE x.broadcast_id = b.id AND x.status = 'sent'),
	(SELECT count(*)::int FROM broadcast_threads x WHERE x.broadcast_id = b.id AND x.status = 'failed')
	FROM broadcasts b WHERE b.id = $1`

// broadcastBodySQL reads what broadcast $1's copies need.
const broadcastBodySQL = `SELECT care_team_id, sender_id, sender_role, key_id, body, urgent, request_id FROM broadcasts WHERE id = $1`

// lockBatchSQL locks the pending threads of batch $2 of broadcast $1 (only
// thread $3 when given), with their threads, in thread order, and returns
// each thread with its patient.
const lockBatchSQL = `SELECT bt.thread_id, t.patient_id FROM broadcast_threads bt JOIN threads t ON t.id = bt.thread_id
	WHERE bt.broadcast_id = $1 AND bt.batch = $2 AND bt.status = 'pending' AND ($3::uuid IS NULL OR bt.thread_id = $3)
	ORDER BY bt.thread_id FOR UPDATE OF bt, t`

// pendingBatchSQL lists the pending threads of batch $2 of broadcast $1.
const pendingBatchSQL = `SELECT thread_id FROM broadcast_threads WHERE broadcast_id = $1 AND batch = $2 AND status = 'pending'
	ORDER BY thread_id`

// insertBroadcastMessagesSQL appends messages $1 to threads $2 (bodies $3
// sealed under key $7) at $4, from sender $5 (role $6), urgent $8, copies of
// broadcast $9: each takes its thread's next sequence number. It returns
// each message id with its sequence number.
const insertBroadcastMessagesSQL = `WITH x AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bytea[]) AS x(id, thread_id, body)
), t AS (
	UPDATE threads SET last_seq = threads.last_seq + 1, last_message_at = $4, last_activity_at = $4
	FROM x WHERE threads.id = x.thread_id
	RETURNING threads.id, threads.last_seq
)
INSERT INTO messages (id, thread_id, seq, sender_id, sender_role, kind, key_id, body, urgent, attachment_ids, broadcast_id, created_at)
SELECT x.id, x.thread_id, t.last_seq, $5, $6, 'text', $7, x.body, $8, '{}', $9, $4 FROM x JOIN t ON t.id = x.thread_id
RETURNING id, seq`

// markBroadcastSentSQL marks threads $2 of broadcast $1 sent, with their
// messages $3.
const markBroadcastSentSQL = `UPDATE broadcast_threads bt SET status = 'sent', message_id = x.message_id
	FROM unnest($2::uuid[], $3::uuid[]) AS x(thread_id, message_id)
	WHERE bt.broadcast_id = $1 AND bt.thread_id = x.thread_id`

// markSenderSQL raises user $2's watermarks in threads $1 to seqs $3 (the
// sender has read their own message), at $4.
const markSenderSQL = `INSERT INTO thread_receipts (thread_id, user_id, delivered_up_to, read_up_to, updated_at)
	SELECT x.thread_id, $2, x.seq, x.seq, $4 FROM unnest($1::uuid[], $3::bigint[]) AS x(thread_id, seq)
	ON CONFLICT (thread_id, user_id) DO UPDATE SET
		delivered_up_to = GREATEST(thread_receipts.delivered_up_to, EXCLUDED.delivered_up_to),
		read_up_to = GREATEST(thread_receipts.read_up_to, EXCLUDED.read_up_to),
		updated_at = EXCLUDED.updated_at`

// failBroadcastThreadSQL marks thread $2 of broadcast $1 failed (error
// code $3), unless it was sent meanwhile.
const failBroadcastThreadSQL = `UPDATE broadcast_threads SET status = 'failed', error = $3
	WHERE broadcast_id = $1 AND thread_id = $2 AND status = 'pending'`

// staleBroadcastsSQL reads, in id order after $2, at most $3 broadcasts
// whose body is not sealed under key $1, locking them.
const staleBroadcastsSQL = `SELECT id, care_team_id, key_id, body FROM broadcasts WHERE key_id <> $1 AND id > $2
	ORDER BY id LIMIT $3 FOR UPDATE`

// resealBroadcastsSQL stores re-sealed bodies: broadcasts $1 sealed under
// key $2 as $3.
const resealBroadcastsSQL = `UPDATE broadcasts b SET key_id = $2, body = x.body
	FROM unnest($1::uuid[], $3::bytea[]) AS x(id, body) WHERE b.id = x.id`

// insertAttachmentSQL stores attachment $1 of thread $2 (uploader $3, type
// $4, size $5, SHA-256 $6) at $7, with an audio or video file's duration
// $8 (NULL: none).
const insertAttachmentSQL = `INSERT INTO attachments (id, thread_id, uploader_id, content_type, size, sha256, created_at,
	duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// attachmentSQL reads attachment $1, with its thread's patient, if the
// actor ($2 role, $3 patient, $4 user) takes part in its thread.
var attachmentSQL = `SELECT a.id, a.thread_id, a.uploader_id, a.content_type, a.size, a.sha256, a.created_at, t.patient_id,
	a.duration_ms FROM attachments a JOIN threads t ON t.id = a.thread_id
	WHERE a.id = $1 AND ` + scope.ThreadSQL("t", "$2", "$3", "$4")

// threadAttachmentsSQL returns those of attachments $2 that belong to
// thread $1.
const threadAttachmentsSQL = `SELECT id FROM attachments WHERE thread_id = $1 AND id = ANY($2::uuid[])`

// envelopeAttachmentsSQL returns, of attachments $2 (ids as text), those of
// thread $1 with their uploader and type, for an envelope's checks, if the
// actor ($3 role, $4 patient, $5 user) takes part in the thread (so nobody
// learns of another thread's attachments).
var envelopeAttachmentsSQL = `SELECT a.id, a.uploader_id, a.content_type FROM attachments a JOIN threads t ON t.id = a.thread_id
	WHERE a.thread_id = $1 AND a.id = ANY($2::uuid[]) AND ` + scope.ThreadSQL("t", "$3", "$4", "$5")

// recordAttachmentsSQL reads what opening attachments $1 (ids as text)
// needs, for a record export.
const recordAttachmentsSQL = `SELECT id, thread_id, size, sha256 FROM attachments WHERE id = ANY($1::uuid[])`

// attachmentInfoSQL reads what a listed message shows of attachments $1.
const attachmentInfoSQL = `SELECT id, content_type, size, sha256, duration_ms FROM attachments
	WHERE id = ANY($1::uuid[])`

// attachmentThreadsSQL reads the thread of each of attachments $1.
const attachmentThreadsSQL = `SELECT id, thread_id FROM attachments WHERE id = ANY($1::uuid[])`

// putBlobSQL stores attachment $1's bytes sealed under key $2 as $3.
const putBlobSQL = `INSERT INTO attachment_blobs (attachment_id, key_id, data) VALUES ($1, $2, $3)`

// getBlobSQL reads attachment $1's sealed bytes.
const getBlobSQL = `SELECT key_id, data FROM attachment_blobs WHERE attachment_id = $1`

// staleBlobsSQL reads, in id order after $2, at most $3 sealed attachments
// sealed under a server key other than $1 (a patient's data key, "p:…", is
// re-wrapped instead), locking them.
const staleBlobsSQL = `SELECT attachment_id, key_id, data FROM attachment_blobs WHERE key_id <> $1 AND key_id NOT LIKE 'p:%'
	AND attachment_id > $2 ORDER BY attachment_id LIMIT $3 FOR UPDATE`

// replaceBlobSQL stores attachment $1's bytes re-sealed under key $2 as $3.
const replaceBlobSQL = `UPDATE attachment_blobs SET key_id = $2, data = $3 WHERE attachment_id = $1`

// deleteBlobsSQL deletes the stored bytes of attachments $1 (retention).
const deleteBlobsSQL = `DELETE FROM attachment_blobs WHERE attachment_id = ANY($1)`
