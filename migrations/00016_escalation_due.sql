-- +goose Up
-- When an open alert's next escalation step is due (NULL: none pending). A
-- periodic sweep escalates the open alerts whose time has come in batches;
-- acknowledging or resolving an alert clears it. The index holds only the
-- alerts that wait for a step, so the sweep reads nothing else.
ALTER TABLE alerts ADD COLUMN escalation_due_at timestamptz;
CREATE INDEX alerts_escalation_due_idx ON alerts (escalation_due_at)
    WHERE status = 'open' AND escalation_due_at IS NOT NULL;

-- +goose Down
DROP INDEX alerts_escalation_due_idx;
ALTER TABLE alerts DROP COLUMN escalation_due_at;
