-- +goose Up
-- Erasure by crypto-shredding, and the restriction of processing.
--
-- Each patient gets a data key on first need: 32 random bytes, stored only
-- wrapped (sealed) under the server's keyring, bound to the patient. The
-- bodies of their threads' messages, their symptom reports' notes and their
-- attachments are sealed under it (key id "p:<patient id>" in the row).
-- Erasing the patient deletes the row: from then on nothing, not even the
-- server's keys, opens what was sealed under it. Key rotation re-wraps these
-- rows rather than re-sealing every record.
CREATE TABLE patient_keys (
    patient_id   uuid PRIMARY KEY,
    org_id       uuid NOT NULL,
    wrap_key_id  text NOT NULL,
    wrapped      bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    FOREIGN KEY (patient_id, org_id) REFERENCES patients (id, org_id)
);
CREATE INDEX patient_keys_wrap_idx ON patient_keys (wrap_key_id, patient_id);

-- erased_at: when the patient was erased (pseudonymised, key destroyed); an
-- erased patient never gets a new key. restricted_at: processing restricted
-- (GDPR article 18) since then: no rules, alerts, retakes or reminders.
ALTER TABLE patients ADD COLUMN erased_at timestamptz;
ALTER TABLE patients ADD COLUMN restricted_at timestamptz;

-- +goose Down
-- Going down would lose every patient key and with it everything sealed
-- under them: it refuses while any exists, or while a patient is erased.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM patient_keys) OR EXISTS (SELECT 1 FROM patients WHERE erased_at IS NOT NULL) THEN
        RAISE EXCEPTION 'patient data keys or erased patients exist: migrating down would make their records unreadable';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE patients DROP COLUMN restricted_at;
ALTER TABLE patients DROP COLUMN erased_at;
DROP TABLE patient_keys;
