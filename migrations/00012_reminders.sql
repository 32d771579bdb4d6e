-- +goose Up
-- Medication and measurement reminders. A schedule belongs to a patient; its
-- times are local to the patient's time zone (patients.timezone). spec holds
-- the schedule as written (rpm.Schedule, JSON), including the medication and
-- dose, which are health information: they never leave through a push or a log.
CREATE TABLE schedules (
    id          uuid PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients (id),
    type        text NOT NULL CHECK (type IN ('medication', 'measurement')),
    spec        jsonb NOT NULL,
    paused      boolean NOT NULL DEFAULT false,
    created_by  uuid REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz
);
CREATE INDEX schedules_patient_idx ON schedules (patient_id) WHERE deleted_at IS NULL;

-- A dose is one occurrence of a schedule (a medication dose or a measurement
-- due), materialised ahead of its time. occurrence_key (schedule id / local
-- date / local time) makes it unique: expanding the same window twice, in two
-- processes at once, stores it once.
CREATE TABLE doses (
    id              uuid PRIMARY KEY,
    schedule_id     uuid NOT NULL REFERENCES schedules (id),
    patient_id      uuid NOT NULL REFERENCES patients (id),
    occurrence_key  text NOT NULL UNIQUE,
    due_at          timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'taken', 'skipped', 'missed', 'cancelled')),
    reminded_at     timestamptz,
    reminded_again_at timestamptz,
    decided_at      timestamptz,
    taken_at        timestamptz,
    decided_by      uuid REFERENCES users (id),
    job_ids         bigint[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL
);
CREATE INDEX doses_patient_due_idx ON doses (patient_id, due_at);
CREATE INDEX doses_schedule_due_idx ON doses (schedule_id, due_at);
CREATE INDEX doses_missed_idx ON doses (patient_id, decided_at) WHERE status = 'missed';

-- What a reminder push says depends only on this: "medication" or the vital
-- kind to measure, never the medication itself.
ALTER TABLE notifications ADD COLUMN reminder_kind text;

-- +goose Down
ALTER TABLE notifications DROP COLUMN reminder_kind;
DROP TABLE doses;
DROP TABLE schedules;
