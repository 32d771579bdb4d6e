-- +goose Up
-- Core schema: identities, care teams, patients, readings (time-partitioned),
-- alerts, devices, notifications, deliveries and the audit trail.

CREATE TABLE care_teams (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    escalation  jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE patients (
    id            uuid PRIMARY KEY,
    display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    timezone      text NOT NULL,
    care_team_id  uuid NOT NULL REFERENCES care_teams (id),
    programs      text[] NOT NULL DEFAULT '{}',
    external_id   text UNIQUE,
    enrolled_at   timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_care_team_idx ON patients (care_team_id);

CREATE TABLE users (
    id           uuid PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text NOT NULL CHECK (role IN ('admin', 'clinician', 'scheduler', 'patient', 'device')),
    patient_id   uuid REFERENCES patients (id),
    timezone     text,
    quiet_start  text,
    quiet_end    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz,
    CHECK ((role IN ('patient', 'device')) = (patient_id IS NOT NULL))
);

-- Opaque bearer tokens: only the SHA-256 of the token is stored.
CREATE TABLE tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    hash        bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX tokens_user_idx ON tokens (user_id);

CREATE TABLE care_team_members (
    care_team_id  uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id),
    role          text NOT NULL CHECK (role IN ('clinician', 'lead', 'scheduler')),
    PRIMARY KEY (care_team_id, user_id)
);
CREATE INDEX care_team_members_user_idx ON care_team_members (user_id);

-- Readings are range-partitioned by month of observation so that retention
-- (DROP a partition) and high-rate ingest stay cheap. Partitions are created
-- ahead of time by the engine (see engine/partition.go) and on demand for
-- backfilled months; there is no default partition, so rows never have to be
-- moved out of one.
CREATE TABLE readings (
    id           uuid NOT NULL,
    patient_id   uuid NOT NULL,
    kind         text NOT NULL,
    value        double precision NOT NULL,
    systolic     double precision,
    diastolic    double precision,
    unit         text NOT NULL,
    observed_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    source_id    text,
    recorded_by  uuid,
    PRIMARY KEY (patient_id, observed_at, id)
) PARTITION BY RANGE (observed_at);
CREATE INDEX readings_patient_kind_idx ON readings (patient_id, kind, observed_at);

-- source_id deduplication must span partitions, so it lives in its own table.
CREATE TABLE reading_sources (
    patient_id   uuid NOT NULL,
    source_id    text NOT NULL,
    reading_id   uuid NOT NULL,
    observed_at  timestamptz NOT NULL,
    PRIMARY KEY (patient_id, source_id)
);

-- +goose StatementBegin
CREATE FUNCTION tend_ensure_reading_partition(month timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    start_at timestamptz := date_trunc('month', month AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    end_at   timestamptz := start_at + interval '1 month';
    name     text := format('readings_y%sm%s', to_char(start_at AT TIME ZONE 'UTC', 'YYYY'), to_char(start_at AT TIME ZONE 'UTC', 'MM'));
BEGIN
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)', name, start_at, end_at);
EXCEPTION WHEN duplicate_table THEN
    NULL; -- created concurrently by another process
END;
$$;
-- +goose StatementEnd

SELECT tend_ensure_reading_partition(now() + make_interval(months => m)) FROM generate_series(-1, 2) AS m;

CREATE TABLE alerts (
    id                     uuid PRIMARY KEY,
    patient_id             uuid NOT NULL REFERENCES patients (id),
    care_team_id           uuid NOT NULL REFERENCES care_teams (id),
    rule_id                text NOT NULL,
    rule_version           integer NOT NULL,
    urgency                text NOT NULL CHECK (urgency IN ('critical', 'high', 'medium', 'low')),
    urgency_rank           smallint NOT NULL,
    title                  text NOT NULL,
    status                 text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'snoozed', 'resolved')),
    occurrences            integer NOT NULL DEFAULT 1,
    first_reading_id       uuid,
    last_reading_id        uuid,
    first_observed_at      timestamptz NOT NULL,
    last_observed_at       timestamptz NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    acknowledged_at        timestamptz,
    acknowledged_by        uuid REFERENCES users (id),
    resolved_at            timestamptz,
    resolved_by            uuid REFERENCES users (id),
    disposition            text,
    note                   text,
    snoozed_until          timestamptz,
    assigned_to            uuid REFERENCES users (id),
    notified_at            timestamptz,
    notified_urgency_rank  smallint NOT NULL DEFAULT 0,
    undelivered            boolean NOT NULL DEFAULT false
);
-- At most one unresolved alert per patient and rule: new findings update it.
CREATE UNIQUE INDEX alerts_open_uq ON alerts (patient_id, rule_id) WHERE status <> 'resolved';
CREATE INDEX alerts_triage_idx ON alerts (care_team_id, urgency_rank DESC, created_at) WHERE status <> 'resolved';
CREATE INDEX alerts_patient_idx ON alerts (patient_id, created_at DESC);

-- Every rule firing, including those inhibited by a more urgent one on the
-- same reading and late findings that paged no one.
CREATE TABLE alert_findings (
    id            bigserial PRIMARY KEY,
    alert_id      uuid NOT NULL REFERENCES alerts (id),
    reading_id    uuid,
    rule_id       text NOT NULL,
    rule_version  integer NOT NULL,
    urgency       text NOT NULL,
    late          boolean NOT NULL DEFAULT false,
    observed_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_findings_alert_idx ON alert_findings (alert_id, id);

CREATE TABLE alert_events (
    id        bigserial PRIMARY KEY,
    alert_id  uuid NOT NULL REFERENCES alerts (id),
    action    text NOT NULL,
    actor_id  uuid,
    at        timestamptz NOT NULL DEFAULT now(),
    detail    jsonb
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id, id);

CREATE TABLE devices (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id),
    platform         text NOT NULL CHECK (platform IN ('fcm', 'apns', 'webpush')),
    -- address is the FCM/APNs token or the Web Push endpoint: unique per platform.
    address          text NOT NULL,
    p256dh           text,
    auth             text,
    topic            text,
    sandbox          boolean NOT NULL DEFAULT false,
    enabled          boolean NOT NULL DEFAULT true,
    disabled_reason  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_success_at  timestamptz,
    UNIQUE (platform, address)
);
CREATE INDEX devices_user_idx ON devices (user_id) WHERE enabled;

-- A notification is one thing to tell one user; it fans out to a delivery
-- job per device of that user.
CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    type        text NOT NULL,
    alert_id    uuid REFERENCES alerts (id),
    urgency     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_alert_idx ON notifications (alert_id);

-- One row per delivery attempt and its outcome.
CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    notification_id  uuid NOT NULL REFERENCES notifications (id),
    device_id        uuid NOT NULL REFERENCES devices (id),
    job_id           bigint,
    attempt          integer NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('sent', 'retrying', 'failed', 'unregistered', 'undeliverable')),
    provider_status  integer,
    provider_id      text,
    error_code       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_notification_idx ON deliveries (notification_id, device_id);
CREATE UNIQUE INDEX deliveries_sent_uq ON deliveries (notification_id, device_id) WHERE outcome = 'sent';

CREATE TABLE audit_entries (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_id     uuid,
    actor_role   text NOT NULL,
    action       text NOT NULL,
    patient_id   uuid,
    object_type  text NOT NULL,
    object_id    text,
    request_id   text,
    detail       jsonb
);
CREATE INDEX audit_entries_patient_idx ON audit_entries (patient_id, id);

-- +goose Down
DROP TABLE audit_entries, deliveries, notifications, devices, alert_events, alert_findings, alerts,
    reading_sources, readings, care_team_members, tokens, users, patients, care_teams;
DROP FUNCTION tend_ensure_reading_partition(timestamptz);
