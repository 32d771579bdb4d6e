package pgtest

import (
	"strings"
	"testing"
)

// TestPatientKeyProblems: the check catches a statement on a patient-owned
// table that does not name its patient, accepts one that does and the
// reviewed ones, and catches a stale or needless entry of a reviewed list.
func TestPatientKeyProblems(t *testing.T) {
	tables := map[string]string{"readings": `\bpatient_id\b`, "patients": `\bid\b`, "messages": `\bthread_id\b`}
	for _, tc := range []struct {
		sql  string
		want string // "" for no problem
	}{
		{`SELECT value FROM readings WHERE kind = $1`, "without its patient key"},
		{`SELECT value FROM readings_y2026m12 WHERE kind = $1`, "without its patient key"},
		{`UPDATE messages SET body = $2 WHERE id = $1`, "without its patient key"},
		{`SELECT value FROM readings WHERE patient_id = $1 AND kind = $2`, ""},
		{`SELECT display_name FROM patients WHERE id = $1`, ""},
		{`-- from readings, in a comment only
		  SELECT 1`, ""},
		{`SELECT count(*) FROM users`, ""},
	} {
		got := patientKeyProblems(tables, "engine/x", "queries.go", map[string]string{"fooSQL": tc.sql})
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%q: %v, want no problem", tc.sql, got)
		case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
			t.Errorf("%q: %v, want %q", tc.sql, got, tc.want)
		}
	}
	// A reviewed statement passes; one that names its patient must leave the list.
	got := patientKeyProblems(tables, "engine/triage", "queries.go", map[string]string{
		"countAlertsSQL": `SELECT 1`, // stands for a reviewed statement whose table it no longer reads
		"ackAlertSQL":    `UPDATE readings SET kind = $2 WHERE id = $1`,
	})
	if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), "countAlertsSQL is on a reviewed list but names its patient") {
		t.Errorf("needless entry not reported: %v", got)
	}
	if !strings.Contains(strings.Join(got, "\n"), "names engine/triage.resolveAlertSQL, which queries.go does not declare") {
		t.Errorf("stale entry not reported: %v", got)
	}
}
