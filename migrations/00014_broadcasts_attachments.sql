-- +goose Up
-- Broadcasts: one message from a care team's lead (or an admin) into every
-- patient thread of the team. The body is sealed (AES-256-GCM, package sealed)
-- under key_id, bound to "broadcast.body", the team and the broadcast id; the
-- fan-out jobs open it and seal one copy per thread. total is the number of
-- threads taken at creation; progress is counted from broadcast_threads.
CREATE TABLE broadcasts (
    id            uuid PRIMARY KEY,
    care_team_id  uuid NOT NULL REFERENCES care_teams (id),
    sender_id     uuid REFERENCES users (id),
    sender_role   text NOT NULL,
    key_id        text NOT NULL,
    body          bytea NOT NULL,
    urgent        boolean NOT NULL DEFAULT false,
    total         integer NOT NULL DEFAULT 0,
    request_id    text,
    created_at    timestamptz NOT NULL
);
CREATE INDEX broadcasts_team_idx ON broadcasts (care_team_id, created_at DESC);
-- Key rotation walks the bodies sealed under old keys.
CREATE INDEX broadcasts_key_idx ON broadcasts (key_id, id);

-- One row per thread a broadcast goes to, taken when it is created and
-- numbered into batches (one River job each). A batch marks its rows sent,
-- with the message id, in the transaction that appends the messages, so a
-- re-run after a crash finds only what is still pending. failed: the thread
-- refused the message on the job's last attempt.
CREATE TABLE broadcast_threads (
    broadcast_id  uuid NOT NULL REFERENCES broadcasts (id),
    thread_id     uuid NOT NULL REFERENCES threads (id),
    batch         integer NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    message_id    uuid UNIQUE,
    error         text,
    PRIMARY KEY (broadcast_id, thread_id)
);
CREATE INDEX broadcast_threads_batch_idx ON broadcast_threads (broadcast_id, batch, thread_id) WHERE status = 'pending';

-- A broadcast's copy names its broadcast; the database itself refuses a
-- second copy in one thread.
ALTER TABLE messages ADD COLUMN broadcast_id uuid REFERENCES broadcasts (id);
CREATE UNIQUE INDEX messages_broadcast_uq ON messages (broadcast_id, thread_id) WHERE broadcast_id IS NOT NULL;

-- Attachments: a file uploaded to a thread (JPEG, PNG, HEIC or PDF, sniffed
-- from its bytes). The row holds what a reader may see of it; sha256 is the
-- hex SHA-256 of the plaintext, also written to the upload's audit entry.
CREATE TABLE attachments (
    id            uuid PRIMARY KEY,
    thread_id     uuid NOT NULL REFERENCES threads (id),
    uploader_id   uuid REFERENCES users (id),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/heic', 'application/pdf')),
    size          bigint NOT NULL CHECK (size > 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at    timestamptz NOT NULL
);
CREATE INDEX attachments_thread_idx ON attachments (thread_id, id);

-- The default attachment store: the sealed bytes (AES-256-GCM under key_id,
-- bound to "attachment", the thread and the attachment id).
CREATE TABLE attachment_blobs (
    attachment_id  uuid PRIMARY KEY REFERENCES attachments (id),
    key_id         text NOT NULL,
    data           bytea NOT NULL
);
ALTER TABLE attachment_blobs ALTER COLUMN data SET STORAGE EXTERNAL; -- already encrypted: compressing gains nothing
CREATE INDEX attachment_blobs_key_idx ON attachment_blobs (key_id, attachment_id);

-- +goose Down
DROP TABLE attachment_blobs, attachments;
DROP INDEX messages_broadcast_uq;
ALTER TABLE messages DROP COLUMN broadcast_id;
DROP TABLE broadcast_threads, broadcasts;
