-- +goose Up
-- Due times swept in batches instead of a River job each.
--
-- When an open alert's next escalation step is due (NULL: none pending). A
-- periodic sweep escalates the open alerts whose time has come; acknowledging
-- or resolving an alert clears it. The index holds only the alerts that wait
-- for a step, so the sweep reads nothing else.
ALTER TABLE alerts ADD COLUMN escalation_due_at timestamptz;
CREATE INDEX alerts_escalation_due_idx ON alerts (escalation_due_at)
    WHERE status = 'open' AND escalation_due_at IS NOT NULL;

-- When a dose's missed-dose check is due: the end of its grace period (NULL:
-- none, or a dose stored earlier, which has its own reminder.missed job). A
-- periodic sweep decides the pending doses whose time has come.
ALTER TABLE doses ADD COLUMN missed_check_at timestamptz;
CREATE INDEX doses_missed_check_idx ON doses (missed_check_at)
    WHERE status = 'pending' AND missed_check_at IS NOT NULL;

-- +goose Down
DROP INDEX doses_missed_check_idx;
ALTER TABLE doses DROP COLUMN missed_check_at;
DROP INDEX alerts_escalation_due_idx;
ALTER TABLE alerts DROP COLUMN escalation_due_at;
