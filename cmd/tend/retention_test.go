package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// TestRetentionRunCommand: without periods tend retention run does nothing;
// with a 30-day readings period, --dry-run counts the one reading older than
// it and deletes nothing, a run deletes it (the newer one stays) and says
// so, and a second run has nothing left.
func TestRetentionRunCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := enginetest.NewDatabase(t)
	env := envMap(map[string]string{"TEND_DATABASE_URL": db})
	eng, done, err := adminEngine(ctx, env, io.Discard, db)
	if err != nil {
		t.Fatal(err)
	}
	clinician, p := teamWithPatient(t, ctx, eng, "Team", "Dr A", "Pat")
	now := time.Now()
	for _, at := range []time.Time{now.Add(-40 * 24 * time.Hour), now.Add(-time.Hour)} {
		if _, err := eng.Ingest(ctx, clinician, engine.IngestRequest{PatientID: p.ID,
			Readings: []rpm.Reading{enginetest.BP(121, 79, at, "")}}); err != nil {
			t.Fatal(err)
		}
	}
	done()
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	readings := func() int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM readings WHERE patient_id = $1`, p.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runEnv(ctx, env, append([]string{"retention", "run"}, args...), &out, io.Discard); err != nil {
			t.Fatalf("tend retention run %v: %v", args, err)
		}
		return out.String()
	}

	if out := run(); out != "" || readings() != 2 {
		t.Fatalf("no periods: printed %q, %d readings left; want nothing done", out, readings())
	}
	if _, err := pool.Exec(ctx, `UPDATE organisations SET retain_readings_days = 30`); err != nil {
		t.Fatal(err)
	}
	if out := run("--dry-run"); !strings.Contains(out, "\treadings\t") || !strings.HasSuffix(out, "would delete 1\n") ||
		strings.Count(out, "\n") != 1 || readings() != 2 {
		t.Fatalf("dry run printed %q, %d readings left; want one line that would delete 1, nothing deleted", out, readings())
	}
	cutoff := "\treadings\tbefore " + now.Add(-30*24*time.Hour).UTC().Format("2006-01-02T")
	if out := run(); !strings.Contains(out, cutoff) || !strings.HasSuffix(out, "\tdeleted 1\n") || readings() != 1 {
		t.Fatalf("run printed %q, %d readings left; want deleted 1, one left", out, readings())
	}
	if out := run(); !strings.HasSuffix(out, "deleted 0\n") {
		t.Fatalf("second run printed %q, want deleted 0", out)
	}
}
