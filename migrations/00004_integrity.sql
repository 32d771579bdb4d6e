-- +goose Up
-- Integrity fixes.
--
-- A device registration never moves a token away from another account: the
-- same token or endpoint may be registered by several users, once each.
ALTER TABLE devices DROP CONSTRAINT devices_platform_address_key;
ALTER TABLE devices ADD CONSTRAINT devices_user_platform_address_key UNIQUE (user_id, platform, address);
CREATE INDEX devices_address_idx ON devices (platform, address);

-- A member's team role fits the user's role: scheduler users are a team's
-- schedulers, never its clinicians or leads (who are paged for alerts).
UPDATE care_team_members m SET role = 'scheduler'
FROM users u WHERE u.id = m.user_id AND u.role = 'scheduler' AND m.role <> 'scheduler';

-- Worker heartbeats: each process running River workers records its River
-- client id here every few seconds, so that the jobs a crashed process was
-- running are handed to another worker within seconds rather than after
-- River's stuck-job rescue.
CREATE TABLE worker_heartbeats (
    client_id  text PRIMARY KEY CHECK (length(client_id) BETWEEN 1 AND 200),
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);

-- +goose Down
DROP TABLE worker_heartbeats;
DROP INDEX devices_address_idx;
ALTER TABLE devices DROP CONSTRAINT devices_user_platform_address_key;
ALTER TABLE devices ADD CONSTRAINT devices_platform_address_key UNIQUE (platform, address);
