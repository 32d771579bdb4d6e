-- +goose Up
-- Care-team triage: each team's time zone and weekly on-call rota (slots in
-- that zone: [{"user_id", "weekday" 0=Sunday…6, "start" "HH:MM", "end"
-- "HH:MM"}], an end at or before the start runs past midnight), and the
-- escalation state of each alert: the last level notified, and whether every
-- level of the team's policy has been tried without an acknowledgement.
ALTER TABLE care_teams
    ADD COLUMN timezone text NOT NULL DEFAULT 'UTC',
    ADD COLUMN on_call  jsonb NOT NULL DEFAULT '[]';

ALTER TABLE alerts
    ADD COLUMN escalation_level     smallint NOT NULL DEFAULT 0,
    ADD COLUMN escalation_exhausted boolean NOT NULL DEFAULT false;

-- The triage queue filters by assignee.
CREATE INDEX alerts_assignee_idx ON alerts (assigned_to) WHERE status <> 'resolved' AND assigned_to IS NOT NULL;

-- +goose Down
DROP INDEX alerts_assignee_idx;
ALTER TABLE alerts DROP COLUMN escalation_exhausted, DROP COLUMN escalation_level;
ALTER TABLE care_teams DROP COLUMN on_call, DROP COLUMN timezone;
