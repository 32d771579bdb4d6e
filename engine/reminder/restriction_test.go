package reminder_test

import (
	"context"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// TestRestrictionStopsReminders: while the patient's processing is
// restricted no reminder is sent, a dose past its grace period is cancelled
// rather than missed (no missed-dose alert), and no new doses are
// materialised; lifting the restriction materialises doses again, which are
// reminded and judged as before.
func TestRestrictionStopsReminders(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	ctx := context.Background()
	s := r.medication(t, "08:00", "20:00")
	keys := r.keys(t, s.ID)
	if len(keys) != 4 {
		t.Fatalf("doses %v, want 4", keys)
	}
	if _, err := r.Eng.RestrictPatient(ctx, r.Admin, r.pat.ID, "objection to processing"); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(start.Add(2 * time.Hour)) // 08:00
	if _, err := r.Eng.Remind(ctx, keys[0], false); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder'`); n != 0 {
		t.Errorf("%d reminders sent while restricted", n)
	}
	r.clk.Set(start.Add(15 * time.Hour)) // 21:00: both of today's doses past their grace
	for _, k := range keys[:2] {
		if st, _, err := r.Eng.CheckMissed(ctx, k); err != nil || st != "cancelled" {
			t.Fatalf("missed check while restricted = %q, %v; want cancelled", st, err)
		}
	}
	if n := r.Count(t, `SELECT count(*) FROM alerts`) + r.Count(t, `SELECT count(*) FROM doses WHERE status = 'missed'`); n != 0 {
		t.Errorf("%d alerts and missed doses while restricted", n)
	}
	r.clk.Set(start.Add(72 * time.Hour))
	if _, err := r.Eng.Materialise(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.keys(t, s.ID); len(got) != 4 {
		t.Errorf("%d doses after materialising while restricted, want the 4 of before", len(got))
	}

	if _, err := r.Eng.LiftPatientRestriction(ctx, r.Admin, r.pat.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Eng.Materialise(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := pendingKeys(t, r, s.ID, r.clk.Now())
	if len(fresh) == 0 || len(r.keys(t, s.ID)) <= 4 {
		t.Fatalf("no doses materialised after lifting the restriction: %v", fresh)
	}
	if _, err := r.Eng.Remind(ctx, fresh[0], false); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder'`); n != 1 {
		t.Errorf("%d reminders after lifting, want 1", n)
	}
	r.clk.Set(r.clk.Now().Add(24 * time.Hour))
	if st, _, err := r.Eng.CheckMissed(ctx, fresh[0]); err != nil || st != rpm.DoseMissed {
		t.Errorf("missed check after lifting = %q, %v; want missed", st, err)
	}
}

// pendingKeys lists the occurrence keys of a schedule's pending doses due
// after after, by due time.
func pendingKeys(t *testing.T, r *remWorld, scheduleID string, after time.Time) []string {
	t.Helper()
	var out []string
	rows, err := r.Pool.Query(context.Background(), `SELECT occurrence_key FROM doses WHERE schedule_id = $1 AND status = 'pending' AND due_at > $2
		ORDER BY due_at`, scheduleID, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}
