-- +goose Up
-- How many delivery jobs each notification fanned out to, recorded when it is
-- routed, so that "did this critical alert reach any device?" is answered
-- from Tend's own tables (notifications and deliveries) rather than from
-- River's job table.
ALTER TABLE notifications ADD COLUMN device_count integer NOT NULL DEFAULT 0 CHECK (device_count >= 0);
-- Existing notifications: the devices their deliveries were recorded for.
UPDATE notifications n SET device_count = (SELECT count(DISTINCT d.device_id) FROM deliveries d WHERE d.notification_id = n.id);

-- +goose Down
ALTER TABLE notifications DROP COLUMN device_count;
