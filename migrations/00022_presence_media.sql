-- +goose Up
-- Presence: who is reachable now. Each tend process keeps one row per user
-- connected to it (the live stream, or a patient's device over MQTT),
-- refreshed every few seconds; a user is online while any row of theirs is
-- fresh. A process that dies leaves rows that go stale and are swept by the
-- others. Rows are keyed by user, not patient: presence holds no health
-- information and is never audited per change.
CREATE TABLE presence (
    user_id     uuid NOT NULL REFERENCES users (id),
    process_id  uuid NOT NULL,
    seen_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, process_id)
);
CREATE INDEX presence_seen_idx ON presence (seen_at);
CREATE INDEX presence_process_idx ON presence (process_id);

-- A user's presence settings and when they were last seen: away is what
-- their client reported after its idle time; hidden is a staff member's
-- choice to appear offline.
CREATE TABLE user_presence (
    user_id       uuid PRIMARY KEY REFERENCES users (id),
    away          boolean NOT NULL DEFAULT false,
    hidden        boolean NOT NULL DEFAULT false,
    last_seen_at  timestamptz
);

-- Escalation policy option: skip the clinicians who are offline at the first
-- step (care_teams.escalation holds the policy as JSON; nothing to add).

-- Audio and video attachments, stored as sent, with their length when the
-- container says it.
ALTER TABLE attachments DROP CONSTRAINT attachments_content_type_check;
ALTER TABLE attachments ADD CONSTRAINT attachments_content_type_check CHECK (content_type IN (
    'image/jpeg', 'image/png', 'image/heic', 'application/pdf',
    'audio/mp4', 'audio/ogg', 'audio/mpeg', 'video/mp4', 'video/webm'));
ALTER TABLE attachments ADD COLUMN duration_ms bigint CHECK (duration_ms >= 0);

-- +goose Down
ALTER TABLE attachments DROP COLUMN duration_ms;
ALTER TABLE attachments DROP CONSTRAINT attachments_content_type_check;
ALTER TABLE attachments ADD CONSTRAINT attachments_content_type_check CHECK (content_type IN (
    'image/jpeg', 'image/png', 'image/heic', 'application/pdf'));
DROP TABLE user_presence;
DROP TABLE presence;
