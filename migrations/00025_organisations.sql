-- +goose Up
-- Organisations: many clinics on one Tend. Every user (but an operator), care
-- team and patient belongs to one organisation; what belongs to a user, a
-- team or a patient (tokens, devices, keys, readings, alerts, threads,
-- broadcasts, schedules) belongs to theirs. Composite foreign keys keep the
-- organisation of related rows equal, so that no write, however it is made,
-- can put a clinician of one organisation on another's team or a patient on
-- another's team.
--
-- An existing database moves into one default organisation, whose id is
-- fixed so that code and operators can name it.
CREATE TABLE organisations (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    -- Branding shown by the console and the patient app.
    brand_name      text CHECK (length(brand_name) BETWEEN 1 AND 200),
    brand_primary   text CHECK (brand_primary ~ '^#[0-9a-f]{6}$'),
    brand_accent    text CHECK (brand_accent ~ '^#[0-9a-f]{6}$'),
    logo            bytea CHECK (octet_length(logo) <= 262144),
    logo_type       text CHECK (logo_type IN ('image/png', 'image/svg+xml', 'image/webp', 'image/jpeg')),
    -- The default time zone of the organisation's users, teams and patients
    -- when they name none, and its quiet hours (HH:MM in that zone) for users
    -- who set none of their own.
    timezone        text NOT NULL DEFAULT 'UTC',
    quiet_start     text CHECK (quiet_start ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    quiet_end       text CHECK (quiet_end ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    -- Retention periods in days; NULL keeps the data for ever.
    retain_readings_days    integer CHECK (retain_readings_days BETWEEN 1 AND 36500),
    retain_messages_days    integer CHECK (retain_messages_days BETWEEN 1 AND 36500),
    retain_attachments_days integer CHECK (retain_attachments_days BETWEEN 1 AND 36500),
    retain_deliveries_days  integer CHECK (retain_deliveries_days BETWEEN 1 AND 36500),
    -- The organisation's record key (an MLKEM768-X25519 public key) that its
    -- end-to-end encrypted messages are also wrapped to; NULL: none, or for
    -- the default organisation the server's TEND_RECORD_PUBLIC_KEY.
    record_public_key bytea CHECK (octet_length(record_public_key) = 1216),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL) AND (quiet_start IS NULL OR quiet_start <> quiet_end)),
    CHECK ((logo IS NULL) = (logo_type IS NULL))
);
INSERT INTO organisations (id, name, slug) VALUES ('00000000-0000-0000-0000-000000000001', 'Default organisation', 'default');

-- Care teams.
ALTER TABLE care_teams ADD COLUMN org_id uuid REFERENCES organisations (id);
UPDATE care_teams SET org_id = '00000000-0000-0000-0000-000000000001';
ALTER TABLE care_teams ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE care_teams ADD CONSTRAINT care_teams_id_org_key UNIQUE (id, org_id);
CREATE INDEX care_teams_org_idx ON care_teams (org_id);

-- Patients, on a team of their organisation.
ALTER TABLE patients ADD COLUMN org_id uuid REFERENCES organisations (id);
UPDATE patients SET org_id = '00000000-0000-0000-0000-000000000001';
ALTER TABLE patients ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE patients ADD CONSTRAINT patients_id_org_key UNIQUE (id, org_id);
ALTER TABLE patients ADD CONSTRAINT patients_team_org_fk FOREIGN KEY (care_team_id, org_id) REFERENCES care_teams (id, org_id);
CREATE INDEX patients_org_idx ON patients (org_id);

-- Users: an operator (super_admin) belongs to no organisation, everyone else
-- to one; a patient's or device's user to their patient's.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('super_admin', 'admin', 'clinician', 'scheduler', 'patient', 'device'));
ALTER TABLE users ADD COLUMN org_id uuid REFERENCES organisations (id);
UPDATE users SET org_id = '00000000-0000-0000-0000-000000000001';
ALTER TABLE users ADD CONSTRAINT users_org_ck CHECK ((role = 'super_admin') = (org_id IS NULL));
ALTER TABLE users ADD CONSTRAINT users_id_org_key UNIQUE (id, org_id);
ALTER TABLE users ADD CONSTRAINT users_patient_org_fk FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id);
CREATE INDEX users_org_idx ON users (org_id, name);

-- Team membership within one organisation.
ALTER TABLE care_team_members ADD COLUMN org_id uuid;
UPDATE care_team_members SET org_id = '00000000-0000-0000-0000-000000000001';
ALTER TABLE care_team_members ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE care_team_members ADD CONSTRAINT care_team_members_team_org_fk
    FOREIGN KEY (care_team_id, org_id) REFERENCES care_teams (id, org_id) ON DELETE CASCADE;
ALTER TABLE care_team_members ADD CONSTRAINT care_team_members_user_org_fk
    FOREIGN KEY (user_id, org_id) REFERENCES users (id, org_id);

-- Audit entries name their organisation (NULL: an operator's action outside
-- any organisation, or Tend's own work on no organisation's data).
-- (Entries are never updated: the existing ones take the value as the
-- column's default, which is then dropped.)
ALTER TABLE audit_entries ADD COLUMN org_id uuid DEFAULT '00000000-0000-0000-0000-000000000001';
ALTER TABLE audit_entries ALTER COLUMN org_id DROP DEFAULT;
CREATE INDEX audit_entries_org_idx ON audit_entries (org_id, id);

-- The canonical form gains the organisation for entries outside the default
-- organisation only, so every hash stored before organisations stays valid
-- (engine/audit's Link.Canonical computes the same bytes).
CREATE OR REPLACE VIEW audit_entry_canonical AS
SELECT e.id, convert_to('tend.audit.v1', 'UTF8')
        || CASE WHEN e.id::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.id::text, 'UTF8'))) || convert_to(e.id::text, 'UTF8') END
        || CASE WHEN (extract(epoch FROM e.at) * 1000000)::bigint::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to((extract(epoch FROM e.at) * 1000000)::bigint::text, 'UTF8'))) || convert_to((extract(epoch FROM e.at) * 1000000)::bigint::text, 'UTF8') END
        || CASE WHEN e.actor_id::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.actor_id::text, 'UTF8'))) || convert_to(e.actor_id::text, 'UTF8') END
        || CASE WHEN e.actor_role IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.actor_role, 'UTF8'))) || convert_to(e.actor_role, 'UTF8') END
        || CASE WHEN e.action IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.action, 'UTF8'))) || convert_to(e.action, 'UTF8') END
        || CASE WHEN e.patient_id::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.patient_id::text, 'UTF8'))) || convert_to(e.patient_id::text, 'UTF8') END
        || CASE WHEN e.object_type IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.object_type, 'UTF8'))) || convert_to(e.object_type, 'UTF8') END
        || CASE WHEN e.object_id IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.object_id, 'UTF8'))) || convert_to(e.object_id, 'UTF8') END
        || CASE WHEN e.request_id IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.request_id, 'UTF8'))) || convert_to(e.request_id, 'UTF8') END
        || CASE WHEN e.outcome IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.outcome, 'UTF8'))) || convert_to(e.outcome, 'UTF8') END
        || CASE WHEN e.detail::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.detail::text, 'UTF8'))) || convert_to(e.detail::text, 'UTF8') END
        || CASE WHEN e.org_id IS NOT DISTINCT FROM '00000000-0000-0000-0000-000000000001'::uuid THEN ''::bytea
                WHEN e.org_id IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.org_id::text, 'UTF8'))) || convert_to(e.org_id::text, 'UTF8') END AS canonical
FROM audit_entries e;

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tend_app') THEN
        RETURN;
    END IF;
    GRANT INSERT (org_id) ON audit_entries TO tend_app;
    GRANT SELECT ON audit_entry_canonical TO tend_app;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Going down keeps only the default organisation's world: it refuses while
-- another organisation, an operator or an audit entry outside the default
-- organisation exists (that entry's hash covers its organisation).
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM organisations WHERE id <> '00000000-0000-0000-0000-000000000001')
       OR EXISTS (SELECT 1 FROM users WHERE role = 'super_admin')
       OR EXISTS (SELECT 1 FROM audit_entries WHERE org_id IS DISTINCT FROM '00000000-0000-0000-0000-000000000001') THEN
        RAISE EXCEPTION 'organisations other than the default one (or operators) exist: remove them before migrating down';
    END IF;
END
$$;
-- +goose StatementEnd
CREATE OR REPLACE VIEW audit_entry_canonical AS
SELECT e.id, convert_to('tend.audit.v1', 'UTF8')
        || CASE WHEN e.id::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.id::text, 'UTF8'))) || convert_to(e.id::text, 'UTF8') END
        || CASE WHEN (extract(epoch FROM e.at) * 1000000)::bigint::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to((extract(epoch FROM e.at) * 1000000)::bigint::text, 'UTF8'))) || convert_to((extract(epoch FROM e.at) * 1000000)::bigint::text, 'UTF8') END
        || CASE WHEN e.actor_id::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.actor_id::text, 'UTF8'))) || convert_to(e.actor_id::text, 'UTF8') END
        || CASE WHEN e.actor_role IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.actor_role, 'UTF8'))) || convert_to(e.actor_role, 'UTF8') END
        || CASE WHEN e.action IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.action, 'UTF8'))) || convert_to(e.action, 'UTF8') END
        || CASE WHEN e.patient_id::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.patient_id::text, 'UTF8'))) || convert_to(e.patient_id::text, 'UTF8') END
        || CASE WHEN e.object_type IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.object_type, 'UTF8'))) || convert_to(e.object_type, 'UTF8') END
        || CASE WHEN e.object_id IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.object_id, 'UTF8'))) || convert_to(e.object_id, 'UTF8') END
        || CASE WHEN e.request_id IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.request_id, 'UTF8'))) || convert_to(e.request_id, 'UTF8') END
        || CASE WHEN e.outcome IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.outcome, 'UTF8'))) || convert_to(e.outcome, 'UTF8') END
        || CASE WHEN e.detail::text IS NULL THEN '\x00'::bytea
                ELSE '\x01'::bytea || int4send(octet_length(convert_to(e.detail::text, 'UTF8'))) || convert_to(e.detail::text, 'UTF8') END AS canonical
FROM audit_entries e;
DROP INDEX audit_entries_org_idx;
ALTER TABLE audit_entries DROP COLUMN org_id;
ALTER TABLE care_team_members DROP COLUMN org_id;
ALTER TABLE users DROP CONSTRAINT users_org_ck, DROP CONSTRAINT users_patient_org_fk;
ALTER TABLE users DROP COLUMN org_id;
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'clinician', 'scheduler', 'patient', 'device'));
ALTER TABLE patients DROP CONSTRAINT patients_team_org_fk;
ALTER TABLE patients DROP COLUMN org_id;
ALTER TABLE care_teams DROP COLUMN org_id;
DROP TABLE organisations;
