-- +goose Up
-- Requests to measure. A symptom rule may ask the patient to measure a vital
-- sign now instead of paging (`ask` in the rule language: a report of
-- breathlessness asks for an SpO2 reading). The request waits in retakes like
-- a retake: one pending per patient and rule, a generic "please take a
-- reading" push to the patient's devices, a River job at retake_by. Its
-- reading_id holds the symptom report's id (reading_id has no foreign key:
-- readings are partitioned), repeated in symptom_report_id, which has one.
-- The next reading of the kind answers it (answered); with none by retake_by
-- it goes unanswered. A request pages no one either way: the reading that
-- answers it is judged by the reading rules like any other.
ALTER TABLE retakes
    ADD COLUMN symptom_report_id uuid REFERENCES symptom_reports (id),
    DROP CONSTRAINT retakes_status_check,
    ADD CONSTRAINT retakes_status_check
        CHECK (status IN ('pending', 'confirmed', 'not_confirmed', 'timed_out', 'answered', 'unanswered')),
    -- A request to measure is answered or unanswered, a retake confirmed,
    -- not confirmed or timed out; never the other's outcomes.
    ADD CONSTRAINT retakes_ask_check CHECK (CASE WHEN symptom_report_id IS NULL
        THEN status NOT IN ('answered', 'unanswered')
        ELSE reading_id = symptom_report_id AND status IN ('pending', 'answered', 'unanswered') END);

-- +goose Down
DELETE FROM retakes WHERE symptom_report_id IS NOT NULL;
ALTER TABLE retakes
    DROP CONSTRAINT retakes_ask_check,
    DROP CONSTRAINT retakes_status_check,
    DROP COLUMN symptom_report_id,
    ADD CONSTRAINT retakes_status_check CHECK (status IN ('pending', 'confirmed', 'not_confirmed', 'timed_out'));
