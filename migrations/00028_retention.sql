-- +goose Up
-- Retention (engine/retention) deletes each organisation's delivery records
-- older than its period, a batch at a time, walking the organisation's users:
-- a user's notifications oldest first. Nothing indexed notifications by user
-- and time (only the partial index of held ones), so each batch would have
-- read the whole table.
CREATE INDEX notifications_user_created_idx ON notifications (user_id, created_at);

-- A catch-up is referenced by the notifications it summarised
-- (catchup_id). Deleting any notification makes PostgreSQL check that no
-- notification references it, which without an index reads the whole table
-- once per deleted row; retention also asks it of each catch-up it keeps or
-- deletes. Only summarised notifications have a catchup_id.
CREATE INDEX notifications_catchup_idx ON notifications (catchup_id) WHERE catchup_id IS NOT NULL;

-- +goose Down
DROP INDEX notifications_catchup_idx;
DROP INDEX notifications_user_created_idx;
