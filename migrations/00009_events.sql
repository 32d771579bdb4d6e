-- +goose Up
-- The event log behind the live stream (GET /v1/stream). Every change a
-- client may want to see at once — an alert created or updated, later a
-- message — appends an event in the transaction that makes the change, and
-- a NOTIFY on channel tend_events (sent at commit) tells every process.
-- Clients that reconnect replay what they missed from here by event id; old
-- events are pruned.
CREATE TABLE events (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    type          text NOT NULL CHECK (length(type) BETWEEN 1 AND 64),
    care_team_id  uuid,
    patient_id    uuid,
    payload       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_at_idx ON events (at);

-- +goose Down
DROP TABLE events;
