-- +goose Up
-- Quiet hours. A user's time zone and quiet window live in users.timezone,
-- quiet_start and quiet_end (00001), now checked. A medium or low
-- notification routed to a user inside their window is held (held_until is
-- the window's end, no delivery job); at the end one catch-up notification
-- (type 'catchup', item_count = how many alerts waited) goes to each of the
-- user's devices and marks the held ones with its id (catchup_id).

ALTER TABLE users ADD CONSTRAINT users_quiet_hours_ck CHECK (
    (quiet_start IS NULL) = (quiet_end IS NULL)
    AND (quiet_start IS NULL OR (
        timezone IS NOT NULL
        AND quiet_start ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
        AND quiet_end ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
        AND quiet_start <> quiet_end)));

ALTER TABLE notifications
    ADD COLUMN held_until  timestamptz,
    ADD COLUMN catchup_id  uuid REFERENCES notifications (id),
    ADD COLUMN item_count  integer CHECK (item_count > 0);

-- The notifications still waiting for a catch-up, per user.
CREATE INDEX notifications_held_idx ON notifications (user_id, held_until)
    WHERE held_until IS NOT NULL AND catchup_id IS NULL;

-- The tend_alerts_undelivered gauge counts these at every scrape.
CREATE INDEX alerts_undelivered_idx ON alerts (id) WHERE undelivered AND status <> 'resolved';

-- +goose Down
DROP INDEX alerts_undelivered_idx;
DROP INDEX notifications_held_idx;
ALTER TABLE notifications DROP COLUMN item_count, DROP COLUMN catchup_id, DROP COLUMN held_until;
ALTER TABLE users DROP CONSTRAINT users_quiet_hours_ck;
