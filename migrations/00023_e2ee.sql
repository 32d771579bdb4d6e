-- +goose Up
-- End-to-end encrypted conversations (docs/e2ee.md). Each client device of a
-- user registers its public keys: an HPKE MLKEM768-X25519 key that content
-- keys are wrapped to, and an Ed25519 key its envelopes are signed with. The
-- private halves never reach the server. A revoked device is kept (its id is
-- in old envelopes) but receives nothing new.
CREATE TABLE e2ee_devices (
    id                  uuid PRIMARY KEY,
    user_id             uuid NOT NULL REFERENCES users (id),
    label               text NOT NULL DEFAULT '',
    hpke_public_key     bytea NOT NULL,
    signing_public_key  bytea NOT NULL,
    fingerprint         bytea NOT NULL,
    created_at          timestamptz NOT NULL,
    revoked_at          timestamptz
);
CREATE INDEX e2ee_devices_user_idx ON e2ee_devices (user_id, created_at) WHERE revoked_at IS NULL;

-- A thread turned end-to-end encrypted stays so: its messages are envelopes.
ALTER TABLE threads ADD COLUMN encrypted boolean NOT NULL DEFAULT false;

-- An encrypted message's body is its envelope (sealed at rest like any body);
-- its sender device and the sender's own sequence number are kept beside it so
-- that a replayed envelope is refused, and the SHA-256 of its ciphertext is
-- what the audit trail records.
ALTER TABLE messages DROP CONSTRAINT messages_kind_check,
    ADD CONSTRAINT messages_kind_check CHECK (kind IN ('text', 'symptom_report', 'encrypted')),
    ADD COLUMN sender_device_id uuid REFERENCES e2ee_devices (id),
    ADD COLUMN sender_seq bigint,
    ADD COLUMN ciphertext_sha256 bytea;
CREATE UNIQUE INDEX messages_sender_seq_uq ON messages (thread_id, sender_device_id, sender_seq)
    WHERE sender_device_id IS NOT NULL;

-- +goose Down
DROP INDEX messages_sender_seq_uq;
ALTER TABLE messages DROP COLUMN ciphertext_sha256, DROP COLUMN sender_seq, DROP COLUMN sender_device_id,
    DROP CONSTRAINT messages_kind_check,
    ADD CONSTRAINT messages_kind_check CHECK (kind IN ('text', 'symptom_report'));
ALTER TABLE threads DROP COLUMN encrypted;
DROP TABLE e2ee_devices;
