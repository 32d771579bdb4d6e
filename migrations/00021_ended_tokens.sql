-- +goose Up
-- Long-lived connections (MQTT) ask twice a second which tokens stopped
-- working lately: revoked, expired, or their user disabled. Each index holds
-- only the rows that have such a time, so the question reads a handful of
-- rows however many tokens exist.
CREATE INDEX tokens_revoked_at_idx ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX users_disabled_at_idx ON users (disabled_at) WHERE disabled_at IS NOT NULL;

-- +goose Down
DROP INDEX users_disabled_at_idx;
DROP INDEX tokens_expires_at_idx;
DROP INDEX tokens_revoked_at_idx;
