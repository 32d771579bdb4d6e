-- +goose Up
-- The audit trail becomes tamper-evident.
--
-- Entries are still appended by the transaction whose access they record, and
-- nothing about that insert is serialised. Shortly after they commit, the
-- sealer (tend_audit_seal, called by every process in turn, one at a time
-- under an advisory lock) chains them: it numbers the committed unsealed
-- entries in the order it finds them (seq, 1, 2, 3, … with no gaps) and stores
-- for each the SHA-256 over the previous entry's hash and the entry's
-- canonical content. `tend audit verify` recomputes the chain; a signed
-- checkpoint (`tend audit checkpoint`) pins its head and length.
--
-- Nobody changes an entry: triggers refuse UPDATE, DELETE and TRUNCATE, even
-- for the table's owner, except the sealer's one update that fills the chain
-- columns of a not yet sealed entry and leaves its content alone. The
-- application role tend_app may only SELECT entries and INSERT them without
-- chain columns; it seals through the SECURITY DEFINER function.
ALTER TABLE audit_entries
    ADD COLUMN outcome   text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'refused')),
    ADD COLUMN seq       bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash      bytea,
    ADD COLUMN sealed_at timestamptz;
-- Partial indexes, so that appending an entry touches neither.
CREATE UNIQUE INDEX audit_entries_seq_uq ON audit_entries (seq) WHERE seq IS NOT NULL;
CREATE INDEX audit_entries_unsealed_idx ON audit_entries (id) WHERE seq IS NULL;

-- audit_entry_canonical gives each entry's canonical content: the byte
-- string its hash covers. A version tag, then every content column in a
-- fixed order, each as 0x00 for NULL or 0x01, its length (4 bytes,
-- big-endian) and its UTF-8 text. The time is in microseconds since 1970
-- (UTC); detail is jsonb's own normalised text. (A view rather than a
-- function, so that the sealer's query inlines it: five times faster.)
CREATE VIEW audit_entry_canonical AS
SELECT e.id, e.seq, convert_to('tend.audit.v1', 'UTF8')
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

-- tend_audit_seal chains at most max_rows committed unsealed entries, in id
-- order, after the current head, and returns how many it sealed. Only one
-- sealer runs at a time: a second caller returns 0 at once.
-- +goose StatementBegin
CREATE FUNCTION tend_audit_seal(max_rows integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    head_seq  bigint;
    head_hash bytea;
    r         record;
    ids       bigint[] := '{}';
    seqs      bigint[] := '{}';
    prevs     bytea[] := '{}';
    hashes    bytea[] := '{}';
    h         bytea;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7274015) THEN
        RETURN 0;
    END IF;
    SELECT seq, hash INTO head_seq, head_hash FROM audit_entries WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    END IF;
    FOR r IN SELECT id, canonical FROM audit_entry_canonical WHERE seq IS NULL ORDER BY id LIMIT max_rows LOOP
        head_seq := head_seq + 1;
        h := sha256(head_hash || r.canonical);
        ids := ids || r.id;
        seqs := seqs || head_seq;
        prevs := prevs || head_hash;
        hashes := hashes || h;
        head_hash := h;
    END LOOP;
    IF cardinality(ids) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM set_config('tend.audit_sealing', 'on', true);
    UPDATE audit_entries e SET seq = u.seq, prev_hash = u.prev, hash = u.h, sealed_at = clock_timestamp()
    FROM unnest(ids, seqs, prevs, hashes) AS u(id, seq, prev, h) WHERE e.id = u.id;
    PERFORM set_config('tend.audit_sealing', '', true);
    RETURN cardinality(ids);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tend_audit_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries cannot be changed or removed (%)', TG_OP USING ERRCODE = '42501';
END
$$;
-- +goose StatementEnd

-- Every UPDATE is refused but the sealer's: inside tend_audit_seal, filling
-- the chain columns of an unsealed entry and changing nothing else. (The
-- condition is the trigger's WHEN clause, so the sealer's own updates run
-- no trigger function at all.)
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries FOR EACH ROW
    WHEN (NOT (coalesce(current_setting('tend.audit_sealing', true), '') = 'on'
               AND OLD.seq IS NULL AND OLD.hash IS NULL AND NEW.seq IS NOT NULL AND NEW.hash IS NOT NULL
               AND (OLD.id, OLD.at, OLD.actor_id, OLD.actor_role, OLD.action, OLD.patient_id, OLD.object_type,
                    OLD.object_id, OLD.request_id, OLD.detail, OLD.outcome)
                   IS NOT DISTINCT FROM
                   (NEW.id, NEW.at, NEW.actor_id, NEW.actor_role, NEW.action, NEW.patient_id, NEW.object_type,
                    NEW.object_id, NEW.request_id, NEW.detail, NEW.outcome)))
    EXECUTE FUNCTION tend_audit_refuse();
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION tend_audit_refuse();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION tend_audit_refuse();

-- The application role: a deployment runs migrations as the schema's owner
-- and `tend serve` as a login role that is a member of tend_app. It may read
-- and write every table of the schema, but only INSERT and SELECT audit
-- entries. Creating it needs CREATEROLE; without it the migration notes so
-- and the grants are left to the operator (docs/security.md).
-- +goose StatementBegin
DO $$
BEGIN
    BEGIN
        CREATE ROLE tend_app NOLOGIN;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'tend_app not created (no CREATEROLE); grant it by hand, see docs/security.md';
            RETURN;
    END;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO tend_app', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO tend_app', current_schema());
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO tend_app', current_schema());
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO tend_app', current_schema());
    GRANT SELECT ON audit_entry_canonical TO tend_app;
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tend_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO tend_app', current_schema());
    -- Entries: read, and insert without the chain columns (only the sealer sets them).
    REVOKE ALL ON audit_entries FROM tend_app;
    GRANT SELECT ON audit_entries TO tend_app;
    GRANT INSERT (id, at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome)
        ON audit_entries TO tend_app;
END
$$;
-- +goose StatementEnd

-- Single sign-on: a user signs in with an OpenID Connect ID token whose
-- subject ("sub") an admin has mapped to them (never by e-mail).
ALTER TABLE users ADD COLUMN oidc_subject text UNIQUE CHECK (length(oidc_subject) BETWEEN 1 AND 255);

-- +goose Down
ALTER TABLE users DROP COLUMN oidc_subject;
DROP TRIGGER audit_entries_no_truncate ON audit_entries;
DROP TRIGGER audit_entries_no_delete ON audit_entries;
DROP TRIGGER audit_entries_no_update ON audit_entries;
DROP FUNCTION tend_audit_refuse();
DROP FUNCTION tend_audit_seal(integer);
DROP VIEW audit_entry_canonical;
ALTER TABLE audit_entries DROP COLUMN sealed_at, DROP COLUMN hash, DROP COLUMN prev_hash, DROP COLUMN seq, DROP COLUMN outcome;
