-- +goose Up
-- Rule pack overrides per organisation. The default pack (org_id NULL) is
-- shared by every organisation; an organisation's admins change a rule by
-- writing versions of their own (org_id set), with which that organisation's
-- patients are evaluated instead of the default pack's. Versions count per
-- organisation and rule; an override's first version follows the version of
-- the default pack it replaces, so that a rule's version never goes back in
-- the organisation's view. Rows are still only ever inserted.
ALTER TABLE rule_versions ADD COLUMN org_id uuid REFERENCES organisations (id);
ALTER TABLE rule_versions DROP CONSTRAINT rule_versions_pkey;
CREATE UNIQUE INDEX rule_versions_default_key ON rule_versions (rule_id, version) WHERE org_id IS NULL;
CREATE UNIQUE INDEX rule_versions_org_key ON rule_versions (org_id, rule_id, version) WHERE org_id IS NOT NULL;
-- An override's author belongs to its organisation.
ALTER TABLE rule_versions ADD CONSTRAINT rule_versions_author_org_fk FOREIGN KEY (created_by, org_id) REFERENCES users (id, org_id);

-- Before organisations, an admin's change edited the one pack: it was the
-- default organisation's (then the only one), and it moves to it, so that the
-- default pack stays Tend's own and a new organisation starts from it rather
-- than from another clinic's edits. A rule's versions from the first one a
-- person wrote on become the default organisation's.
UPDATE rule_versions v SET org_id = '00000000-0000-0000-0000-000000000001'
FROM (SELECT rule_id, min(version) AS first FROM rule_versions WHERE created_by IS NOT NULL GROUP BY rule_id) e
WHERE v.rule_id = e.rule_id AND v.version >= e.first;

-- +goose Down
-- Going down keeps one pack: it refuses while an organisation other than the
-- default one has overrides, and puts the default organisation's back into
-- the pack as its latest versions (numbered after the pack's own versions of
-- each rule, which they then replace, as they did).
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM rule_versions WHERE org_id <> '00000000-0000-0000-0000-000000000001') THEN
        RAISE EXCEPTION 'organisations other than the default one have rule overrides: remove them before migrating down';
    END IF;
END
$$;
-- +goose StatementEnd
WITH o AS (
    SELECT rule_id, min(version) AS first FROM rule_versions WHERE org_id IS NOT NULL GROUP BY rule_id
), s AS (
    SELECT o.rule_id, greatest(0, coalesce((SELECT max(d.version) FROM rule_versions d
        WHERE d.org_id IS NULL AND d.rule_id = o.rule_id), 0) - o.first + 1) AS shift
    FROM o
)
UPDATE rule_versions v SET org_id = NULL, version = v.version + s.shift
FROM s WHERE v.rule_id = s.rule_id AND v.org_id IS NOT NULL;
ALTER TABLE rule_versions DROP CONSTRAINT rule_versions_author_org_fk;
DROP INDEX rule_versions_org_key;
DROP INDEX rule_versions_default_key;
ALTER TABLE rule_versions ADD PRIMARY KEY (rule_id, version);
ALTER TABLE rule_versions DROP COLUMN org_id;
