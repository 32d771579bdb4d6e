-- +goose Up
-- The versions of the default rule pack applied to this database. On start,
-- Tend compares the stored rules with its default pack: a rule still as Tend
-- seeded it gets the new pack's definition as a new version (audited), a new
-- rule of the pack is added, and a rule an admin changed is left alone. Each
-- pack version is applied once.
CREATE TABLE rule_pack_versions (
    version     integer PRIMARY KEY CHECK (version >= 1),
    applied_at  timestamptz NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);

-- +goose Down
DROP TABLE rule_pack_versions;
