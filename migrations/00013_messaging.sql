-- +goose Up
-- Secure messaging. A thread is one conversation:
--   patient        the patient and their care team (one per patient and team)
--   staff_patient  the care team about one patient, never shown to the patient
--   team           a care team's staff channel (one per team)
--   direct         two staff members (user_a < user_b, one thread per pair)
-- Who may see a thread is decided when it is read (engine/internal/scope), so a
-- member removed from a team loses access at once and one added sees the
-- history. last_seq numbers the thread's messages; receipts are watermarks
-- over it.
CREATE TABLE threads (
    id                uuid PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('patient', 'staff_patient', 'team', 'direct')),
    care_team_id      uuid REFERENCES care_teams (id),
    patient_id        uuid REFERENCES patients (id),
    user_a            uuid REFERENCES users (id),
    user_b            uuid REFERENCES users (id),
    last_seq          bigint NOT NULL DEFAULT 0,
    last_message_at   timestamptz,
    last_activity_at  timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    CHECK (CASE kind
        WHEN 'patient' THEN care_team_id IS NOT NULL AND patient_id IS NOT NULL AND user_a IS NULL
        WHEN 'staff_patient' THEN care_team_id IS NOT NULL AND patient_id IS NOT NULL AND user_a IS NULL
        WHEN 'team' THEN care_team_id IS NOT NULL AND patient_id IS NULL AND user_a IS NULL
        ELSE care_team_id IS NULL AND patient_id IS NULL AND user_a IS NOT NULL AND user_b IS NOT NULL AND user_a < user_b
    END)
);
CREATE UNIQUE INDEX threads_patient_uq ON threads (patient_id, care_team_id, kind) WHERE kind IN ('patient', 'staff_patient');
CREATE UNIQUE INDEX threads_team_uq ON threads (care_team_id) WHERE kind = 'team';
CREATE UNIQUE INDEX threads_direct_uq ON threads (user_a, user_b) WHERE kind = 'direct';
-- A member's thread list: the team's threads by last activity.
CREATE INDEX threads_team_activity_idx ON threads (care_team_id, last_activity_at DESC, id DESC);
CREATE INDEX threads_user_b_idx ON threads (user_b) WHERE kind = 'direct';

-- A message. body is sealed (AES-256-GCM, package sealed) under key key_id,
-- bound to the thread and message ids; for a symptom report it is the
-- report's JSON. client_id makes a retried post return the same message.
CREATE TABLE messages (
    id                 uuid PRIMARY KEY,
    thread_id          uuid NOT NULL REFERENCES threads (id),
    seq                bigint NOT NULL,
    sender_id          uuid REFERENCES users (id),
    sender_role        text NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('text', 'symptom_report')),
    key_id             text NOT NULL,
    body               bytea NOT NULL,
    urgent             boolean NOT NULL DEFAULT false,
    client_id          text,
    attachment_ids     uuid[] NOT NULL DEFAULT '{}',
    symptom_report_id  uuid REFERENCES symptom_reports (id),
    created_at         timestamptz NOT NULL,
    UNIQUE (thread_id, seq)
);
CREATE UNIQUE INDEX messages_client_uq ON messages (thread_id, sender_id, client_id) WHERE client_id IS NOT NULL;
-- Key rotation walks the rows sealed under old keys.
CREATE INDEX messages_key_idx ON messages (key_id, id);

-- Receipts: per thread and user, the highest message seq delivered to one of
-- the user's clients and the highest the user read. Both only grow.
CREATE TABLE thread_receipts (
    thread_id        uuid NOT NULL REFERENCES threads (id),
    user_id          uuid NOT NULL REFERENCES users (id),
    delivered_up_to  bigint NOT NULL DEFAULT 0,
    read_up_to       bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (thread_id, user_id)
);
CREATE INDEX thread_receipts_user_idx ON thread_receipts (user_id);

-- Symptom notes are sealed like message bodies; note stays for rows written
-- before encryption (tend keys rotate seals them).
ALTER TABLE symptom_reports ADD COLUMN note_key_id text, ADD COLUMN note_sealed bytea;
CREATE INDEX symptom_reports_note_key_idx ON symptom_reports (note_key_id, id) WHERE note_key_id IS NOT NULL;

-- A message push names its message (never its text).
-- A catch-up counts the messages among the items it summarises.
ALTER TABLE notifications ADD COLUMN message_id uuid REFERENCES messages (id), ADD COLUMN thread_id uuid,
    ADD COLUMN message_count integer;
CREATE UNIQUE INDEX notifications_message_uq ON notifications (message_id, user_id) WHERE message_id IS NOT NULL;

-- Message events name their thread: the stream sends them to its participants only.
ALTER TABLE events ADD COLUMN thread_id uuid;

-- Existing care teams and patients get their threads.
INSERT INTO threads (id, kind, care_team_id, last_activity_at, created_at)
    SELECT gen_random_uuid(), 'team', t.id, t.created_at, t.created_at FROM care_teams t;
INSERT INTO threads (id, kind, care_team_id, patient_id, last_activity_at, created_at)
    SELECT gen_random_uuid(), k.kind, p.care_team_id, p.id, p.created_at, p.created_at
    FROM patients p CROSS JOIN (VALUES ('patient'), ('staff_patient')) AS k(kind);

-- +goose Down
ALTER TABLE events DROP COLUMN thread_id;
DROP INDEX notifications_message_uq;
ALTER TABLE notifications DROP COLUMN message_count, DROP COLUMN thread_id, DROP COLUMN message_id;
DROP INDEX symptom_reports_note_key_idx;
ALTER TABLE symptom_reports DROP COLUMN note_sealed, DROP COLUMN note_key_id;
DROP TABLE thread_receipts, messages, threads;
