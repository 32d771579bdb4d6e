-- +goose Up
-- A reading retracted by its source (a FHIR Observation with status
-- entered-in-error naming it by identifier) is kept for the record but marked:
-- rules no longer see it and listings leave it out. NULL means current.
ALTER TABLE readings ADD COLUMN entered_in_error_at timestamptz;

-- +goose Down
ALTER TABLE readings DROP COLUMN entered_in_error_at;
