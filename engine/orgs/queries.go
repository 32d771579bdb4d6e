package orgs

import (
	"fmt"
	"strings"
)

// queries lists every statement of this file, so that a test prepares each
// against the migrated schema.
var queries = map[string]string{
	"insertOrgSQL": insertOrgSQL,
	"listOrgsSQL":  listOrgsSQL,
	"getOrgSQL":    getOrgSQL,
	"updateOrgSQL": updateOrgSQL,
	"setLogoSQL":   setLogoSQL,
	"getLogoSQL":   getLogoSQL,
}

// columns are an organisation's columns in scan's order.
const columns = `id, name, slug, brand_name, brand_primary, brand_accent, logo IS NOT NULL, timezone, quiet_start, quiet_end,
	retain_readings_days, retain_messages_days, retain_attachments_days, retain_deliveries_days, record_public_key, created_at, updated_at`

// insertOrgSQL creates organisation $1 named $2 with slug $3 and time zone $4 at $5.
const insertOrgSQL = `INSERT INTO organisations (id, name, slug, timezone, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $5) RETURNING ` + columns

// listOrgsSQL lists organisation $1 (NULL: all) by name.
const listOrgsSQL = `SELECT ` + columns + ` FROM organisations WHERE id = coalesce($1::uuid, id) ORDER BY name, id LIMIT 1000`

// getOrgSQL reads organisation $1.
const getOrgSQL = `SELECT ` + columns + ` FROM organisations WHERE id = $1`

// updateOrgSQL sets every updatable column of organisation $1 at $2: each
// to its parameter ($3 on, in updatable's order) when its flag in $15 is
// true, else keeps it.
var updateOrgSQL = `UPDATE organisations SET ` + assignments() + `, updated_at = $2 WHERE id = $1 RETURNING ` + columns

// types are the SQL types of updatable's columns.
var types = []string{"text", "text", "text", "text", "text", "text", "text", "integer", "integer", "integer", "integer", "bytea"}

func assignments() string {
	out := make([]string, len(updatable))
	for i, col := range updatable {
		out[i] = fmt.Sprintf("%s = CASE WHEN ($%d::boolean[])[%d] THEN $%d::%s ELSE %s END", col, 3+len(updatable), i+1, 3+i, types[i], col)
	}
	return strings.Join(out, ", ")
}

// setLogoSQL sets organisation $1's logo to $2 of type $3 (both NULL: none) at $4.
const setLogoSQL = `UPDATE organisations SET logo = $2, logo_type = $3, updated_at = $4 WHERE id = $1 RETURNING ` + columns

// getLogoSQL reads organisation $1's logo.
const getLogoSQL = `SELECT logo, logo_type, updated_at FROM organisations WHERE id = $1`
