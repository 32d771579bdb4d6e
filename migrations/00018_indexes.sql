-- +goose Up
-- Indexes for two listings that scanned or sorted.
--
-- The audit trail filtered by actor (GET /v1/audit?actor_id=…) read the whole
-- table in id order and kept the actor's entries; it now reads the actor's
-- entries alone, in id order.
CREATE INDEX audit_entries_actor_idx ON audit_entries (actor_id, id);

-- FHIR Communication search reads a patient's thread newest first, between
-- two times: the index serves the range and the order, so a page reads its
-- own rows instead of sorting the thread's every message.
CREATE INDEX messages_thread_created_idx ON messages (thread_id, created_at DESC, id DESC);

-- +goose Down
DROP INDEX messages_thread_created_idx;
DROP INDEX audit_entries_actor_idx;
