-- +goose Up
-- The hash chain moves to a table of its own, so that an audit entry is only
-- ever inserted.
--
-- Until now the sealer stored each entry's place and hashes in the entry's own
-- row: an UPDATE per entry, that is a new version of the row, an entry in each
-- of the table's indexes and about 750 bytes of WAL, more than the reading and
-- its audit entry together. Now it inserts one narrow row per entry into
-- audit_chain (seq, entry_id, prev_hash, hash, sealed_at); the entry's content
-- and its canonical form are unchanged, so every hash already stored stays
-- valid and is moved here as it is.
--
-- Finding the entries not yet chained without a column to mark them: entry ids
-- come from a sequence in the order transactions ask for them, not in the
-- order they commit. The sealer keeps a low-water mark (every entry with an id
-- up to it is chained or will never commit) and looks for unchained entries
-- above it only. It raises the mark to an id it read from the sequence in an
-- earlier pass once every transaction of this database older than that pass
-- has ended: an
-- entry's id is taken after its transaction has its transaction id
-- (tend_audit_entry_id), and the pass took its own transaction id after
-- reading the sequence, so a transaction holding an id up to the one read is
-- older than the pass.
CREATE TABLE audit_chain (
    seq       bigint PRIMARY KEY,
    entry_id  bigint NOT NULL UNIQUE,
    prev_hash bytea NOT NULL,
    hash      bytea NOT NULL,
    sealed_at timestamptz NOT NULL
);
INSERT INTO audit_chain (seq, entry_id, prev_hash, hash, sealed_at)
SELECT seq, id, prev_hash, hash, coalesce(sealed_at, at) FROM audit_entries WHERE seq IS NOT NULL;

-- The sealer's state, one row: low is the low-water mark; mark_id the
-- sequence's last id read by an earlier pass, mark_xid that pass's own
-- transaction id, taken after it read the sequence.
CREATE TABLE audit_seal_state (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    low      bigint NOT NULL,
    mark_id  bigint,
    mark_xid xid8
);

DROP TRIGGER audit_entries_no_update ON audit_entries;
DROP FUNCTION tend_audit_seal(integer);
DROP VIEW audit_entry_canonical;
-- Drops audit_entries_seq_uq and audit_entries_unsealed_idx with them.
ALTER TABLE audit_entries DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash, DROP COLUMN sealed_at;
-- Nothing is writing entries now (the ALTER waited for every writer), so
-- every entry below the first unchained one is chained.
INSERT INTO audit_seal_state (low)
SELECT coalesce((SELECT min(e.id) - 1 FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = e.id)),
                (SELECT max(id) FROM audit_entries), 0);

-- tend_audit_entry_id is the id of a new entry: taken from the sequence
-- after the transaction has its own transaction id (see above).
-- +goose StatementBegin
CREATE FUNCTION tend_audit_entry_id() RETURNS bigint LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval('audit_entries_id_seq'::regclass) END;
END;
-- +goose StatementEnd
ALTER TABLE audit_entries ALTER COLUMN id SET DEFAULT tend_audit_entry_id();

-- audit_entry_canonical: as in migration 00015, without the chain columns.
CREATE VIEW audit_entry_canonical AS
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

-- tend_audit_seal chains at most max_rows committed unchained entries, in id
-- order, after the current head, and returns how many it chained. Only one
-- sealer runs at a time: a second caller returns 0 at once. It needs READ
-- COMMITTED (a snapshot per statement, so that it sees what committed while it
-- ran), and takes a new mark only when its transaction has no transaction id
-- yet (its first write comes after reading the sequence).
-- +goose StatementBegin
CREATE FUNCTION tend_audit_seal(max_rows integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    st        audit_seal_state;
    caught_up boolean;
    new_id    bigint;
    new_xid   xid8;
    from_id   bigint;
    head_seq  bigint;
    head_hash bytea;
    r         record;
    ids       bigint[] := '{}';
    seqs      bigint[] := '{}';
    prevs     bytea[] := '{}';
    hashes    bytea[] := '{}';
    h         bytea;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'tend_audit_seal needs READ COMMITTED';
    END IF;
    IF NOT pg_try_advisory_xact_lock(7274015) THEN
        RETURN 0;
    END IF;
    SELECT * INTO STRICT st FROM audit_seal_state;
    -- Has every transaction that could hold an id up to mark_id ended? Then
    -- the statements below see every such entry that committed. The
    -- snapshot's xmin answers for the whole server; when it says no, pg_locks
    -- (which stops every lock taker while it is read, so not on every pass)
    -- answers for this database's transactions (and prepared ones, and any
    -- whose database is not shown): those of other databases cannot insert
    -- entries.
    caught_up := st.mark_xid IS NOT NULL AND (pg_snapshot_xmin(pg_current_snapshot()) >= st.mark_xid OR NOT EXISTS (
        SELECT 1 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
          AND (a.datid IS NULL OR a.datid = (SELECT oid FROM pg_database WHERE datname = current_database()))
          AND age(l.transactionid) >= age(xid(st.mark_xid))));
    -- The next mark: the sequence's last id, then a transaction id for this
    -- pass, which is newer than that of any transaction holding such an id.
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO new_id FROM audit_entries_id_seq;
        new_xid := pg_current_xact_id();
    END IF;
    SELECT seq, hash INTO head_seq, head_hash FROM audit_chain ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    END IF;
    -- Where to look: above low when the mark is caught up (late commits below
    -- the chain's highest entry included), else above that highest entry
    -- only, so that a pass costs the new entries, not the lag of the mark
    -- behind a long transaction.
    from_id := st.low;
    IF NOT caught_up THEN
        SELECT greatest(st.low, max(entry_id)) INTO from_id FROM audit_chain;
        from_id := coalesce(from_id, st.low);
    END IF;
    -- Planned afresh each pass (EXECUTE), so that the planner sees how few
    -- entries lie above from_id, and each looked up in the chain's entry_id
    -- index (a subquery per entry: as NOT EXISTS, the planner may choose to
    -- hash the whole chain instead).
    FOR r IN EXECUTE 'SELECT v.id, v.canonical FROM audit_entry_canonical v
             WHERE v.id > $1 AND (SELECT c.seq FROM audit_chain c WHERE c.entry_id = v.id) IS NULL
             ORDER BY v.id LIMIT $2' USING from_id, max_rows LOOP
        head_seq := head_seq + 1;
        h := sha256(head_hash || r.canonical);
        ids := ids || r.id;
        seqs := seqs || head_seq;
        prevs := prevs || head_hash;
        hashes := hashes || h;
        head_hash := h;
    END LOOP;
    IF cardinality(ids) > 0 THEN
        INSERT INTO audit_chain (seq, entry_id, prev_hash, hash, sealed_at)
        SELECT u.seq, u.id, u.prev, u.h, clock_timestamp() FROM unnest(ids, seqs, prevs, hashes) AS u(id, seq, prev, h);
    END IF;
    -- Once everything up to mark_id is chained, raise the low-water mark to it
    -- and keep the new mark.
    IF new_xid IS NOT NULL AND (st.mark_xid IS NULL OR (caught_up AND cardinality(ids) < max_rows)) THEN
        UPDATE audit_seal_state SET low = CASE WHEN caught_up THEN greatest(low, mark_id) ELSE low END,
            mark_id = new_id, mark_xid = new_xid;
    END IF;
    RETURN cardinality(ids);
END
$$;
-- +goose StatementEnd

-- Nothing changes an entry or a link, not even the sealer.
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION tend_audit_refuse();
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION tend_audit_refuse();
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION tend_audit_refuse();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION tend_audit_refuse();

-- The application role reads entries and links, inserts entries without an
-- id (so that every id comes from tend_audit_entry_id), and chains only
-- through tend_audit_seal.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tend_app') THEN
        RAISE NOTICE 'tend_app does not exist; grant it by hand, see docs/security.md';
        RETURN;
    END IF;
    REVOKE ALL ON audit_entries, audit_chain, audit_seal_state FROM tend_app;
    GRANT SELECT ON audit_entries, audit_chain, audit_entry_canonical TO tend_app;
    GRANT INSERT (at, actor_id, actor_role, action, patient_id, object_type, object_id, request_id, detail, outcome)
        ON audit_entries TO tend_app;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION tend_audit_seal(integer);
DROP VIEW audit_entry_canonical;
DROP TRIGGER audit_entries_no_update ON audit_entries;
ALTER TABLE audit_entries ALTER COLUMN id SET DEFAULT nextval('audit_entries_id_seq'::regclass);
DROP FUNCTION tend_audit_entry_id();
ALTER TABLE audit_entries ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea, ADD COLUMN sealed_at timestamptz;
UPDATE audit_entries e SET seq = c.seq, prev_hash = c.prev_hash, hash = c.hash, sealed_at = c.sealed_at
FROM audit_chain c WHERE c.entry_id = e.id;
CREATE UNIQUE INDEX audit_entries_seq_uq ON audit_entries (seq) WHERE seq IS NOT NULL;
CREATE INDEX audit_entries_unsealed_idx ON audit_entries (id) WHERE seq IS NULL;
DROP TABLE audit_seal_state, audit_chain;

-- Migration 00015's view, sealer and update trigger.
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

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries FOR EACH ROW
    WHEN (NOT (coalesce(current_setting('tend.audit_sealing', true), '') = 'on'
               AND OLD.seq IS NULL AND OLD.hash IS NULL AND NEW.seq IS NOT NULL AND NEW.hash IS NOT NULL
               AND (OLD.id, OLD.at, OLD.actor_id, OLD.actor_role, OLD.action, OLD.patient_id, OLD.object_type,
                    OLD.object_id, OLD.request_id, OLD.detail, OLD.outcome)
                   IS NOT DISTINCT FROM
                   (NEW.id, NEW.at, NEW.actor_id, NEW.actor_role, NEW.action, NEW.patient_id, NEW.object_type,
                    NEW.object_id, NEW.request_id, NEW.detail, NEW.outcome)))
    EXECUTE FUNCTION tend_audit_refuse();

-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tend_app') THEN
        GRANT SELECT ON audit_entry_canonical TO tend_app;
        GRANT INSERT (id) ON audit_entries TO tend_app;
    END IF;
END
$$;
-- +goose StatementEnd
