-- +goose Up
-- Rules managed in the database (versioned), personalised rule parameters,
-- rule evaluation errors, symptom reports and the missing-data job's state.

-- Every change to a rule is a new row; the active pack is compiled from the
-- latest version of every rule. Rows are never updated or deleted, so
-- (count(*), max(seq)) changes whenever a change commits: other processes poll
-- it to refresh their pack.
CREATE TABLE rule_versions (
    seq         bigserial UNIQUE,
    rule_id     text NOT NULL CHECK (length(rule_id) BETWEEN 1 AND 64),
    version     integer NOT NULL CHECK (version >= 1),
    -- definition is the rule in rules.Rule JSON shape, without version and
    -- enabled (those are the columns).
    definition  jsonb NOT NULL,
    enabled     boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid REFERENCES users (id),  -- NULL: Tend itself (the seed of the default pack)
    PRIMARY KEY (rule_id, version)
);

-- A patient's own rule parameters: {"<rule id>": {"<param>": value}}.
CREATE TABLE patient_params (
    patient_id  uuid PRIMARY KEY REFERENCES patients (id),
    overrides   jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  uuid REFERENCES users (id)
);

-- Rules that could not be evaluated on a reading (empty window, missing
-- baseline, cost limit): surfaced to admins, never treated as false. error
-- holds no PHI.
CREATE TABLE rule_eval_errors (
    id            bigserial PRIMARY KEY,
    rule_id       text NOT NULL,
    rule_version  integer NOT NULL,
    patient_id    uuid NOT NULL,
    reading_id    uuid,
    error         text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rule_eval_errors_rule_idx ON rule_eval_errors (rule_id, id);

CREATE TABLE symptom_reports (
    id               uuid PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    -- symptoms: [{"code": "chest_pain", "severity": 7, "text": "…"}]
    symptoms         jsonb NOT NULL,
    note             text,
    reported_at      timestamptz NOT NULL,
    reported_by      uuid,
    idempotency_key  text,
    UNIQUE (patient_id, idempotency_key)
);
CREATE INDEX symptom_reports_patient_idx ON symptom_reports (patient_id, reported_at);

-- The alerts a symptom report raised or updated (alert_findings.reading_id is
-- NULL for them).
CREATE TABLE symptom_report_alerts (
    report_id  uuid NOT NULL REFERENCES symptom_reports (id),
    alert_id   uuid NOT NULL REFERENCES alerts (id),
    PRIMARY KEY (report_id, alert_id)
);

-- When each periodic rule job last completed (the missing-data check passes
-- it as rules.MissingInput.Since, so each gap fires once).
CREATE TABLE rule_job_runs (
    name    text PRIMARY KEY,
    ran_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE rule_job_runs, symptom_report_alerts, symptom_reports, rule_eval_errors, patient_params, rule_versions;
