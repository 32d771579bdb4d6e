-- +goose Up
-- Retake before paging. A reading that crosses a single-reading threshold
-- (but not the rule's hard limit) first asks the patient to measure again:
-- the finding waits here, the patient's devices get a generic "please
-- measure again" push, and a River job is scheduled at retake_by. The next
-- reading of the kind decides it (confirmed: the team is paged with both
-- readings; not_confirmed: nobody is paged); with none by retake_by it times
-- out and pages, so nothing is lost.
CREATE TABLE retakes (
    id                 uuid PRIMARY KEY,
    patient_id         uuid NOT NULL REFERENCES patients (id),
    rule_id            text NOT NULL,
    kind               text NOT NULL,
    reading_id         uuid NOT NULL,
    observed_at        timestamptz NOT NULL,
    retake_by          timestamptz NOT NULL,
    finding            jsonb NOT NULL,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'confirmed', 'not_confirmed', 'timed_out')),
    retake_reading_id  uuid,
    decided_at         timestamptz,
    created_at         timestamptz NOT NULL
);
-- At most one pending retake per patient and rule.
CREATE UNIQUE INDEX retakes_pending_idx ON retakes (patient_id, rule_id) WHERE status = 'pending';

-- +goose Down
DROP TABLE retakes;
