package ingest

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pgtest"
)

// fillForPlans gives the database 20,000 patients of one care team, 40,000
// source ids and 40,000 readings, analysed.
const fillForPlans = `INSERT INTO care_teams (id, name, org_id) VALUES ('00000000-0000-0000-0000-00000000aaaa', 'Plans', '` + access.DefaultOrg + `');
	INSERT INTO patients (id, display_name, timezone, care_team_id, org_id)
		SELECT ('00000000-0000-0000-0001-' || lpad(g::text, 12, '0'))::uuid, 'P', 'UTC', '00000000-0000-0000-0000-00000000aaaa', '` + access.DefaultOrg + `'
		FROM generate_series(1, 20000) g;
	INSERT INTO reading_sources (patient_id, source_id, reading_id, observed_at)
		SELECT ('00000000-0000-0000-0001-' || lpad((g % 20000)::text, 12, '0'))::uuid, 'src:' || g, gen_random_uuid(), now()
		FROM generate_series(1, 40000) g;
	INSERT INTO readings (id, patient_id, kind, value, unit, observed_at)
		SELECT gen_random_uuid(), ('00000000-0000-0000-0001-' || lpad((g % 20000)::text, 12, '0'))::uuid, 'spo2', 95, '%',
			date_trunc('month', now()) + (g % 1000) * interval '1 second'
		FROM generate_series(1, 40000) g;
	ANALYZE patients; ANALYZE reading_sources; ANALYZE readings`

// TestGroupStatementsLookUpByKey: a group commit's statements read each
// patient, source id and history window through an index, in the plan the
// engine's pool keeps for a connection's life (generic), whether that plan
// was made on a new database (empty tables, never analysed: a plain join
// hashed the whole table then, for every group, until the table was next
// analysed) or on a filled one.
func TestGroupStatementsLookUpByKey(t *testing.T) {
	const (
		patient = "ARRAY['00000000-0000-0000-0001-000000000005'::uuid]"
		now     = "now()"
	)
	statements := []struct {
		name, sql, table, index string
		args                    []string
	}{
		{"scopeManySQL", scopeManySQL, "patients", "using patients_",
			[]string{patient, "ARRAY['device']", patient, "ARRAY['00000000-0000-0000-0000-000000000006'::uuid]"}},
		{"duplicateSourcesSQL", duplicateSourcesSQL, "reading_sources", "using reading_sources_pkey",
			[]string{patient, "ARRAY['src:5']"}},
		// The month's partition, which holds the rows; an empty partition
		// analysed as such may be scanned (it is re-planned when autovacuum
		// analyses it again).
		{"historySQL", historySQL, "", "",
			[]string{patient, "ARRAY['spo2']", "ARRAY[now() - interval '7 days']", now}},
	}
	for _, filled := range []bool{false, true} {
		pool := pgtest.NewPool(t)
		setup := ""
		if filled {
			setup = fillForPlans
		}
		var month string
		if err := pool.QueryRow(context.Background(), `SELECT to_char(now(), '"readings_y"YYYY"m"MM')`).Scan(&month); err != nil {
			t.Fatal(err)
		}
		for i, s := range statements {
			if i > 0 {
				setup = ""
			}
			if s.table == "" {
				s.table, s.index = month, "using "+month+"_"
			}
			plan := pgtest.GenericPlan(t, pool, setup, s.sql, s.args...)
			whole := regexp.MustCompile(`(Seq Scan|Bitmap Heap Scan) on ` + s.table + `\b`)
			if whole.MatchString(plan) || !strings.Contains(plan, s.index) {
				t.Errorf("%s (filled: %v) does not look %s up by key:\n%s", s.name, filled, s.table, plan)
			}
		}
	}
}
