-- +goose Up
-- The sealer's hashing moves out of the database and into Tend.
--
-- tend_audit_seal built each entry's canonical form and its SHA-256 in
-- PL/pgSQL, one entry at a time: about a third of the database's time under
-- single-reading load, on the same cores as the ingest it competes with. Now a
-- pass is two calls in one READ COMMITTED transaction:
--
--   1. tend_audit_unchained(max_rows) takes the sealer's advisory lock (or
--      returns nothing when another sealer holds it), moves the low-water mark
--      exactly as tend_audit_seal does, and returns the committed unchained
--      entries in id order, each column of their canonical form as text (so
--      that Tend builds the canonical form from the bytes it receives), and
--      tend_audit_head() the chain's head (seq and hash), which the lock holds
--      still;
--   2. Tend computes each link (engine/audit's Link.Canonical, the same bytes
--      as the view audit_entry_canonical, which TestCanonicalMatchesDatabase
--      keeps equal) and tend_audit_link inserts them.
--
-- tend_audit_link checks that the links join up: the first follows the head,
-- each follows the one before it (seq + 1, prev_hash = the previous hash),
-- each names an existing entry not chained before. It does not recompute the
-- hashes: `tend audit verify` does, from the entries, with its own
-- implementation of the canonical form, and names any link whose hash does not
-- match its entry.
--
-- tend_audit_seal stays, unchanged, so a process of the previous version
-- seals with it during a rolling upgrade; both take the same advisory lock.

-- tend_audit_head is the chain's last link's seq and hash, or 0 and 32 zero
-- bytes (the first entry's previous hash) when nothing is chained.
-- +goose StatementBegin
CREATE FUNCTION tend_audit_head(OUT seq bigint, OUT hash bytea) LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(h.seq, 0), coalesce(h.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
    FROM (VALUES (1)) AS one(x)
    LEFT JOIN LATERAL (SELECT c.seq, c.hash FROM audit_chain c ORDER BY c.seq DESC LIMIT 1) AS h ON true;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tend_audit_unchained(max_rows integer)
RETURNS TABLE (id text, at_micros text, actor_id text, actor_role text, action text, patient_id text,
               object_type text, object_id text, request_id text, outcome text, detail text, org_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    st        audit_seal_state;
    caught_up boolean;
    new_id    bigint;
    new_xid   xid8;
    from_id   bigint;
    n         integer;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'tend_audit_unchained needs READ COMMITTED';
    END IF;
    IF NOT pg_try_advisory_xact_lock(7274015) THEN
        RETURN;
    END IF;
    SELECT * INTO STRICT st FROM audit_seal_state;
    -- As in tend_audit_seal (migration 00024): has every transaction that
    -- could hold an id up to mark_id ended?
    caught_up := st.mark_xid IS NOT NULL AND (pg_snapshot_xmin(pg_current_snapshot()) >= st.mark_xid OR NOT EXISTS (
        SELECT 1 FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
          AND (a.datid IS NULL OR a.datid = (SELECT oid FROM pg_database WHERE datname = current_database()))
          AND age(l.transactionid) >= age(xid(st.mark_xid))));
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO new_id FROM audit_entries_id_seq;
        new_xid := pg_current_xact_id();
    END IF;
    from_id := st.low;
    IF NOT caught_up THEN
        SELECT greatest(st.low, max(c.entry_id)) INTO from_id FROM audit_chain c;
        from_id := coalesce(from_id, st.low);
    END IF;
    -- Planned afresh each pass, each entry looked up in the chain's entry_id
    -- index (see tend_audit_seal).
    RETURN QUERY EXECUTE 'SELECT e.id::text, (extract(epoch FROM e.at) * 1000000)::bigint::text,
             e.actor_id::text, e.actor_role, e.action, e.patient_id::text, e.object_type, e.object_id, e.request_id,
             e.outcome, e.detail::text, e.org_id::text
             FROM audit_entries e
             WHERE e.id > $1 AND (SELECT c.seq FROM audit_chain c WHERE c.entry_id = e.id) IS NULL
             ORDER BY e.id LIMIT $2' USING from_id, max_rows;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF new_xid IS NOT NULL AND (st.mark_xid IS NULL OR (caught_up AND n < max_rows)) THEN
        UPDATE audit_seal_state SET low = CASE WHEN caught_up THEN greatest(low, mark_id) ELSE low END,
            mark_id = new_id, mark_xid = new_xid;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tend_audit_link(seqs bigint[], ids bigint[], prevs bytea[], hashes bytea[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n      integer := cardinality(ids);
    h_seq  bigint;
    h_hash bytea;
    linked integer;
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    IF cardinality(seqs) <> n OR cardinality(prevs) <> n OR cardinality(hashes) <> n THEN
        RAISE EXCEPTION 'tend_audit_link: arrays of different lengths';
    END IF;
    -- The caller's pass holds the lock already (tend_audit_unchained); a
    -- caller that does not must not link while another sealer does.
    IF NOT pg_try_advisory_xact_lock(7274015) THEN
        RAISE EXCEPTION 'tend_audit_link: another sealer holds the lock';
    END IF;
    SELECT h.seq, h.hash INTO h_seq, h_hash FROM tend_audit_head() h;
    FOR i IN 1 .. n LOOP
        IF seqs[i] <> h_seq + i OR prevs[i] IS DISTINCT FROM (CASE WHEN i = 1 THEN h_hash ELSE hashes[i - 1] END)
           OR octet_length(hashes[i]) IS DISTINCT FROM 32 THEN
            RAISE EXCEPTION 'tend_audit_link: link % does not follow the chain', seqs[i];
        END IF;
    END LOOP;
    INSERT INTO audit_chain (seq, entry_id, prev_hash, hash, sealed_at)
    SELECT u.seq, u.id, u.prev, u.h, clock_timestamp()
    FROM unnest(ids, seqs, prevs, hashes) AS u(id, seq, prev, h) JOIN audit_entries e ON e.id = u.id;
    GET DIAGNOSTICS linked = ROW_COUNT;
    IF linked <> n THEN
        RAISE EXCEPTION 'tend_audit_link: % of % entries do not exist', n - linked, n;
    END IF;
    RETURN n;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION tend_audit_link(bigint[], bigint[], bytea[], bytea[]);
DROP FUNCTION tend_audit_unchained(integer);
DROP FUNCTION tend_audit_head();
