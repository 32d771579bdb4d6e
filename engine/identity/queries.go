package identity

import "github.com/tendhealth/tend/engine/internal/devicekeys"

// This file holds every SQL statement the package runs, by name.
// TestQueriesPrepare prepares each against the migrated schema, so a typo or a
// dropped column fails the tests; it also fails when a ...SQL constant or
// variable here is missing from queries.

// queries lists every statement of this file by name.
var queries = map[string]string{
	"upsertDeviceSQL":    upsertDeviceSQL,
	"listDevicesSQL":     listDevicesSQL,
	"deleteDeviceSQL":    deleteDeviceSQL,
	"patientExistsSQL":   patientExistsSQL,
	"insertUserSQL":      insertUserSQL,
	"orgExistsSQL":       orgExistsSQL,
	"insertTokenSQL":     insertTokenSQL,
	"lookupTokenSQL":     lookupTokenSQL,
	"getPreferencesSQL":  getPreferencesSQL,
	"setPreferencesSQL":  setPreferencesSQL,
	"userExistsSQL":      userExistsSQL,
	"listTokensSQL":      listTokensSQL,
	"revokeTokenSQL":     revokeTokenSQL,
	"listUsersSQL":       listUsersSQL,
	"directorySQL":       directorySQL,
	"setUserDisabledSQL": setUserDisabledSQL,
	"setOIDCSubjectSQL":  setOIDCSubjectSQL,
	"lookupSubjectSQL":   lookupSubjectSQL,
	"selfSQL":            selfSQL,
	"endedTokensSQL":     endedTokensSQL,

	"countE2EEDevicesSQL": countE2EEDevicesSQL,
	"insertE2EEDeviceSQL": insertE2EEDeviceSQL,
	"listE2EEDevicesSQL":  listE2EEDevicesSQL,
	"revokeE2EEDeviceSQL": revokeE2EEDeviceSQL,
}

// selfSQL reads user $1 (the caller).
const selfSQL = `SELECT id, name, role, patient_id, created_at, disabled_at, oidc_subject, org_id FROM users WHERE id = $1`

// endedTokensSQL lists the hashes of tokens that stopped working at or after
// $1 (and at or before $2, for expiries): revoked, expired, or their user
// disabled. Long-lived connections (MQTT) poll it to close what a
// revocation ended; each branch reads a partial index (migration 00021).
const endedTokensSQL = `SELECT hash FROM tokens WHERE revoked_at >= $1
	UNION SELECT hash FROM tokens WHERE expires_at >= $1 AND expires_at <= $2
	UNION SELECT t.hash FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.disabled_at >= $1`

// setOIDCSubjectSQL maps OpenID Connect subject $2 (NULL: none) to user $1
// of organisation $3 (NULL: any).
const setOIDCSubjectSQL = `UPDATE users SET oidc_subject = $2 WHERE id = $1 AND org_id IS NOT DISTINCT FROM coalesce($3::uuid, org_id)
	RETURNING id, name, role, patient_id, created_at, disabled_at, oidc_subject, org_id`

// lookupSubjectSQL finds the enabled user mapped to OpenID Connect subject $1.
const lookupSubjectSQL = `SELECT id, role, patient_id, org_id FROM users WHERE oidc_subject = $1 AND disabled_at IS NULL`

// upsertDeviceSQL registers a device, or re-enables and updates the user's device at the same
// address; tells whether it is new.
const upsertDeviceSQL = `INSERT INTO devices (id, user_id, platform, address, p256dh, auth, topic, sandbox, created_at, updated_at)
			VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, ''), nullif($7, ''), $8, $9, $9)
			ON CONFLICT (user_id, platform, address) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth,
				topic = excluded.topic, sandbox = excluded.sandbox, enabled = true, disabled_reason = NULL, updated_at = excluded.updated_at
			RETURNING id, xmax = 0, created_at, last_success_at`

// listDevicesSQL lists user $1's devices, leaving out deleted ones.
const listDevicesSQL = `SELECT id, platform, sandbox, coalesce(topic, ''), enabled, disabled_reason, created_at, last_success_at
		FROM devices WHERE user_id = $1 AND coalesce(disabled_reason, '') <> 'deleted' ORDER BY created_at`

// deleteDeviceSQL marks user $2's device $1 as deleted.
const deleteDeviceSQL = `UPDATE devices SET enabled = false, disabled_reason = 'deleted', updated_at = $3
			WHERE id = $1 AND user_id = $2 AND coalesce(disabled_reason, '') <> 'deleted'`

// patientExistsSQL tells whether patient $1 exists.
// patientExistsSQL tells whether patient $1 exists in organisation $2 (NULL:
// any).
const patientExistsSQL = `SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1 AND org_id = coalesce($2, org_id))`

// insertUserSQL stores a user.
// in organisation $6, a patient's or device's user in their patient's.
const insertUserSQL = `INSERT INTO users (id, name, role, patient_id, created_at, org_id)
	VALUES ($1, $2, $3, $4, $5, CASE WHEN $4::uuid IS NULL THEN $6 ELSE (SELECT p.org_id FROM patients p WHERE p.id = $4) END)
	RETURNING org_id`

// orgExistsSQL tells whether organisation $1 exists.
const orgExistsSQL = `SELECT EXISTS (SELECT 1 FROM organisations WHERE id = $1)`

// Users in an actor's reach: the statements below that read or change users
// on an admin's behalf take the actor's organisation (NULL: any, for Tend
// itself and an operator) and whether only admins are in reach (an
// operator's), as "org_id IS NOT DISTINCT FROM coalesce($o::uuid, org_id) AND (NOT $a::boolean
// OR role = 'admin')".

// insertTokenSQL stores a token for user $2 if the user is enabled and in
// reach ($6, $7); $5 is its expiry (NULL: none). It returns the user's
// organisation.
const insertTokenSQL = `INSERT INTO tokens (id, user_id, hash, created_at, expires_at)
			SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2 AND disabled_at IS NULL
			AND org_id IS NOT DISTINCT FROM coalesce($6::uuid, org_id) AND (NOT $7::boolean OR role = 'admin')
			RETURNING (SELECT org_id FROM users WHERE id = $2)`

// lookupTokenSQL finds the enabled user of the unrevoked, unexpired token with hash $1.
const lookupTokenSQL = `SELECT u.id, u.role, u.patient_id, u.org_id FROM tokens t JOIN users u ON u.id = t.user_id
		WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled_at IS NULL`

// getPreferencesSQL reads enabled user $1's timezone and quiet hours.
const getPreferencesSQL = `SELECT timezone, quiet_start, quiet_end FROM users WHERE id = $1 AND disabled_at IS NULL`

// setPreferencesSQL sets enabled user $1's timezone and quiet hours.
const setPreferencesSQL = `UPDATE users SET timezone = $2, quiet_start = $3, quiet_end = $4 WHERE id = $1 AND disabled_at IS NULL`

// userExistsSQL tells whether user $1 exists in reach ($2, $3).
const userExistsSQL = `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1
	AND org_id IS NOT DISTINCT FROM coalesce($2::uuid, org_id) AND (NOT $3::boolean OR role = 'admin'))`

// listTokensSQL lists user $1's tokens, newest first, without their hashes.
const listTokensSQL = `SELECT id, user_id, created_at, expires_at, revoked_at FROM tokens WHERE user_id = $1
	ORDER BY created_at DESC, id DESC LIMIT 1000`

// revokeTokenSQL revokes token $1 at $2 (keeping an earlier revocation) of a
// user in reach ($3, $4) and returns its user.
const revokeTokenSQL = `UPDATE tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1
	AND user_id IN (SELECT u.id FROM users u WHERE u.org_id IS NOT DISTINCT FROM coalesce($3::uuid, u.org_id) AND (NOT $4::boolean OR u.role = 'admin'))
	RETURNING user_id`

// directorySQL pages through the staff who are not disabled, by name, with
// their teams: matching pattern $1 in the name, the user's role, a team
// role or a team's name, after ($2, $3), at most $4, in organisation $5.
const directorySQL = `SELECT u.id, u.name, u.role,
		coalesce(jsonb_agg(jsonb_build_object('care_team_id', t.id, 'name', t.name, 'role', m.role) ORDER BY t.name, t.id)
			FILTER (WHERE t.id IS NOT NULL), '[]')
	FROM users u
	LEFT JOIN care_team_members m ON m.user_id = u.id
	LEFT JOIN care_teams t ON t.id = m.care_team_id
	WHERE u.role IN ('admin', 'clinician', 'scheduler') AND u.disabled_at IS NULL AND u.org_id = $5
		AND (u.name ILIKE $1 OR u.role ILIKE $1 OR EXISTS (SELECT 1 FROM care_team_members m2
			JOIN care_teams t2 ON t2.id = m2.care_team_id WHERE m2.user_id = u.id AND (t2.name ILIKE $1 OR m2.role ILIKE $1)))
		AND ($2::text IS NULL OR (u.name, u.id) > ($2::text, $3::uuid))
	GROUP BY u.id
	ORDER BY u.name, u.id LIMIT $4`

// listUsersSQL pages through users by name: role $1 (” for all), name
// matching pattern $2, after ($3, $4), at most $5, in reach ($6, $7).
const listUsersSQL = `SELECT id, name, role, patient_id, created_at, disabled_at, oidc_subject, org_id FROM users
	WHERE ($1 = '' OR role = $1) AND name ILIKE $2
		AND org_id IS NOT DISTINCT FROM coalesce($6::uuid, org_id) AND (NOT $7::boolean OR role = 'admin')
		AND ($3::text IS NULL OR (name, id) > ($3::text, $4::uuid))
	ORDER BY name, id LIMIT $5`

// setUserDisabledSQL disables user $1 at $2 (NULL re-enables it) if in reach
// ($3, $4).
const setUserDisabledSQL = `UPDATE users SET disabled_at = $2 WHERE id = $1
	AND org_id IS NOT DISTINCT FROM coalesce($3::uuid, org_id) AND (NOT $4::boolean OR role = 'admin')
	RETURNING id, name, role, patient_id, created_at, disabled_at, oidc_subject, org_id`

// countE2EEDevicesSQL counts user $1's unrevoked end-to-end encryption devices.
const countE2EEDevicesSQL = `SELECT count(*) FROM e2ee_devices WHERE user_id = $1 AND revoked_at IS NULL`

// insertE2EEDeviceSQL registers device $1 of user $2 (label $3, HPKE public
// key $4, Ed25519 public key $5, fingerprint $6) at $7.
const insertE2EEDeviceSQL = `INSERT INTO e2ee_devices AS d (id, user_id, label, hpke_public_key, signing_public_key, fingerprint,
	created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
	RETURNING ` + devicekeys.Columns

// listE2EEDevicesSQL lists user $1's end-to-end encryption devices, oldest first.
const listE2EEDevicesSQL = `SELECT ` + devicekeys.Columns + ` FROM e2ee_devices d WHERE d.user_id = $1 ORDER BY d.created_at, d.id`

// revokeE2EEDeviceSQL revokes device $1 of user $2 at $3 (keeping an
// earlier revocation time) and returns it.
const revokeE2EEDeviceSQL = `UPDATE e2ee_devices d SET revoked_at = coalesce(d.revoked_at, $3) WHERE d.id = $1 AND d.user_id = $2
	RETURNING ` + devicekeys.Columns
