package reminder_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rpm"
)

// remWorld is a world whose clock the test moves, with a patient in a given
// time zone who has a phone, a scheduler on the patient's team, and an
// engine on the injected clock (no workers: the test runs the jobs).
type remWorld struct {
	*enginetest.World
	clk       *enginetest.Clock
	Eng       *engine.Engine
	pat       engine.Patient
	patActor  engine.Actor
	scheduler engine.Actor
	zone      *time.Location
	Sub       string // the patient's push endpoint
}

func newRemWorld(t *testing.T, zone string, start time.Time) *remWorld {
	t.Helper()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	r := &remWorld{World: w, zone: loc}
	r.Eng, r.clk = w.NewClockedEngine(t, start, engine.Config{})
	sch, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Pat Scheduler", Role: engine.RoleScheduler})
	if err != nil {
		t.Fatal(err)
	}
	r.scheduler = engine.Actor{UserID: sch.ID, Role: engine.RoleScheduler, RequestID: "test"}
	team, err := w.Eng.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Adherence", MemberIDs: []uuid.UUID{w.Clinician.UserID, sch.ID}})
	if err != nil {
		t.Fatal(err)
	}
	r.pat, err = w.Eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Kim Ro", Timezone: zone, CareTeamID: team.ID,
		Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Kim", Role: engine.RolePatient, PatientID: r.pat.ID})
	if err != nil {
		t.Fatal(err)
	}
	r.patActor = engine.Actor{UserID: u.ID, Role: engine.RolePatient, PatientID: r.pat.ID, RequestID: "test"}
	sub := w.Push.NewSubscription()
	r.Sub = sub.Endpoint
	if _, _, err := w.Eng.RegisterDevice(ctx, r.patActor, engine.NewDevice{Platform: notify.WebPush, Endpoint: sub.Endpoint,
		P256dh: sub.P256dh, Auth: sub.Auth}); err != nil {
		t.Fatal(err)
	}
	return r
}

func intp(v int) *int { return &v }

func (r *remWorld) medication(t *testing.T, times ...string) engine.Schedule {
	t.Helper()
	s, err := r.Eng.CreateSchedule(context.Background(), r.scheduler, r.pat.ID, rpm.Schedule{Type: rpm.MedicationSchedule,
		Medication: "Furosemide", Dose: "40 mg", Times: times, StartDate: r.clk.Now().In(r.zone).Format(time.DateOnly)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keys lists the occurrence keys of a schedule's doses by due time.
func (r *remWorld) keys(t *testing.T, scheduleID string) []string {
	t.Helper()
	return enginetest.Column[string](t, r.World, `SELECT occurrence_key FROM doses WHERE schedule_id = $1 ORDER BY due_at`, scheduleID)
}

// A twice-daily schedule over a week that crosses a DST change (US, EU) or
// none (India) yields exactly 14 doses, each at 08:00 or 20:00 local time,
// each with one reminder job, however often materialisation runs.
func TestRemindersWeekAcrossDST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone  string
		start string // local start date; DST changes within the week
	}{
		{"America/New_York", "2026-03-05"}, // 8 March
		{"Europe/Berlin", "2026-03-26"},    // 29 March
		{"Asia/Kolkata", "2026-03-05"},     // no DST
		{"America/New_York", "2026-10-29"}, // 1 November, clocks go back
	} {
		t.Run(tc.zone+"/"+tc.start, func(t *testing.T) {
			t.Parallel()
			loc, _ := time.LoadLocation(tc.zone)
			day, _ := time.ParseInLocation(time.DateOnly, tc.start, loc)
			r := newRemWorld(t, tc.zone, day)
			end := day.AddDate(0, 0, 6).Format(time.DateOnly)
			s, err := r.Eng.CreateSchedule(context.Background(), r.scheduler, r.pat.ID, rpm.Schedule{Type: rpm.MedicationSchedule,
				Medication: "Lisinopril", Times: []string{"20:00", "08:00"}, StartDate: tc.start, EndDate: end})
			if err != nil {
				t.Fatal(err)
			}
			for at := day; at.Before(day.AddDate(0, 0, 8)); at = at.Add(5 * time.Hour) {
				r.clk.Set(at)
				if _, err := r.Eng.Materialise(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			dues := enginetest.Column[time.Time](t, r.World, `SELECT due_at FROM doses WHERE schedule_id = $1 ORDER BY due_at`, s.ID)
			for n, due := range dues {
				local := due.In(loc)
				want := []int{8, 20}[n%2]
				if local.Hour() != want || local.Minute() != 0 {
					t.Errorf("dose %d at %s local, want %02d:00", n, local, want)
				}
				if d := local.Format(time.DateOnly); d != day.AddDate(0, 0, n/2).Format(time.DateOnly) {
					t.Errorf("dose %d on %s", n, d)
				}
			}
			if len(dues) != 14 {
				t.Errorf("%d doses over the week, want 14", len(dues))
			}
			if j := r.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder.send' AND args->>'key' LIKE $1`, s.ID+"/%"); j != 14 {
				t.Errorf("%d reminder jobs, want 14", j)
			}
			if j := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1 AND missed_check_at = due_at + interval '1 hour'`, s.ID); j != 14 {
				t.Errorf("%d missed-dose checks due at the end of the grace period, want 14", j)
			}
			if j := r.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder.missed'`); j != 0 {
				t.Errorf("%d missed-dose jobs: the sweep needs none", j)
			}
		})
	}
}

// At its time a dose's reminder reaches the patient's phone with generic
// words, never the medication; a second run or a second worker sends
// nothing more.
func TestReminderPushIsGenericAndSentOnce(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 7, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "Europe/London", start)
	s := r.medication(t, "09:00")
	keys := r.keys(t, s.ID)
	if len(keys) != 2 {
		t.Fatalf("doses %v, want 2 within 48 h", keys)
	}
	r.clk.Set(start.Add(time.Hour)) // 09:00 BST
	other := r.NewEngineWith(t, engine.Config{Now: r.clk.Now})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, e := range []*engine.Engine{r.Eng, other, r.Eng, other} {
		wg.Go(func() {
			_, err := e.Remind(ctx, keys[0], false)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder' AND reminder_kind = 'medication' AND device_count = 1`); n != 1 {
		t.Fatalf("%d reminder notifications after four runs, want 1", n)
	}
	var jobID int64
	if err := r.Pool.QueryRow(ctx, `SELECT id FROM river_job WHERE kind = 'notify.deliver'`).Scan(&jobID); err != nil {
		t.Fatal(err)
	}
	job, err := r.Eng.Jobs().JobGet(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Eng.Shared().Delivery.Work(ctx, job); err != nil {
		t.Fatal(err)
	}
	got := r.Push.Received()
	if len(got) != 1 || got[0].Endpoint != r.Sub {
		t.Fatalf("pushes %+v, want one to the patient", got)
	}
	p := string(got[0].Payload)
	if !strings.Contains(p, "Time for your medication") || strings.Contains(p, "Furosemide") || strings.Contains(p, "40 mg") {
		t.Errorf("payload %s: want the generic text, never the medication", p)
	}
}

// Pausing a schedule drops its future doses and cancels their jobs: a
// reminder job that runs anyway sends nothing. Resuming brings them back.
func TestPausingStopsFutureSends(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "Europe/Paris", start)
	ctx := context.Background()
	s := r.medication(t, "09:00", "21:00")
	keys := r.keys(t, s.ID)
	if len(keys) != 4 {
		t.Fatalf("doses %v, want 4", keys)
	}
	id := uuid.MustParse(s.ID)
	if _, err := r.Eng.UpdateSchedule(ctx, r.scheduler, id, []byte(`{"paused": true}`)); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1`, s.ID); n != 0 {
		t.Errorf("%d doses after pausing, want 0", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM river_job WHERE kind LIKE 'reminder.%' AND state <> 'cancelled'`); n != 0 {
		t.Errorf("%d reminder jobs still scheduled after pausing", n)
	}
	r.clk.Set(start.Add(time.Hour)) // 09:00 CEST
	if _, err := r.Eng.Materialise(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Eng.Remind(ctx, keys[0], false); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder'`); n != 0 {
		t.Errorf("%d reminders sent while paused", n)
	}
	got, err := r.Eng.UpdateSchedule(ctx, r.scheduler, id, []byte(`{"paused": false, "times": ["10:00"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Paused || len(got.Times) != 1 || got.Medication != "Furosemide" {
		t.Errorf("resumed schedule %+v", got)
	}
	keys = r.keys(t, s.ID)
	if len(keys) != 2 || !strings.HasSuffix(keys[0], "/10:00") {
		t.Errorf("doses after resuming at 10:00: %v", keys)
	}
	if _, err := r.Eng.Remind(ctx, keys[0], false); err != nil { // early, by hand: still one send
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder'`); n != 1 {
		t.Errorf("%d reminders after resuming, want 1", n)
	}
	// Deleting cancels what is pending and drops the rest.
	if err := r.Eng.DeleteSchedule(ctx, r.scheduler, id); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1 AND status = 'pending'`, s.ID); n != 0 {
		t.Errorf("%d pending doses after delete", n)
	}
	if _, err := r.Eng.GetSchedule(ctx, r.scheduler, id); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("get deleted schedule: %v, want not found", err)
	}
}

// Two missed doses of one medication within 72 hours raise the
// missed-doses alert (medium) and its push to the clinician in the
// transaction that marks the second dose missed: when that transaction
// fails, neither the missed status nor the alert nor its push remain.
func TestMissedDosesRaiseAlertInOneTransaction(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	ctx := context.Background()
	s := r.medication(t, "08:00", "20:00")
	keys := r.keys(t, s.ID)
	r.clk.Set(start.Add(3 * time.Hour)) // 09:00, grace over
	st, _, err := r.Eng.CheckMissed(ctx, keys[0])
	if err != nil || st != rpm.DoseMissed {
		t.Fatalf("first check = %q, %v; want missed", st, err)
	}
	if n := r.Count(t, `SELECT count(*) FROM alerts`); n != 0 {
		t.Fatalf("%d alerts after one missed dose", n)
	}
	// Too early: the check waits for the grace period.
	if st, wait, err := r.Eng.CheckMissed(ctx, keys[1]); err != nil || st != "" || wait != 12*time.Hour {
		t.Fatalf("early check = %q, %v, %v; want a 12 h wait", st, wait, err)
	}
	r.clk.Set(start.Add(15 * time.Hour)) // 21:00
	if _, err := r.Pool.Exec(ctx, `
		CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure before commit'; END $$;
		CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT ON alerts DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION fail_commit();`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Eng.CheckMissed(ctx, keys[1]); err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE status = 'missed'`); n != 1 {
		t.Errorf("%d missed doses after the failed transaction, want 1", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications`) + r.Count(t, `SELECT count(*) FROM alerts`); n != 0 {
		t.Errorf("%d alerts and notifications after the failed transaction", n)
	}
	if _, err := r.Pool.Exec(ctx, `DROP TRIGGER fail_commit ON alerts`); err != nil {
		t.Fatal(err)
	}
	if st, _, err := r.Eng.CheckMissed(ctx, keys[1]); err != nil || st != rpm.DoseMissed {
		t.Fatalf("second check = %q, %v", st, err)
	}
	if n := r.Count(t, `SELECT count(*) FROM alerts WHERE rule_id = 'missed-doses' AND urgency = 'medium' AND patient_id = $1`, r.pat.ID); n != 1 {
		t.Errorf("%d missed-doses alerts, want 1", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications n JOIN alerts a ON a.id = n.alert_id
		WHERE a.rule_id = 'missed-doses' AND n.user_id = $1`, r.Clinician.UserID); n != 1 {
		t.Errorf("%d notifications to the clinician, want 1", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver'`); n != 1 {
		t.Errorf("%d delivery jobs, want 1", n)
	}
	// Checking again changes nothing.
	if st, _, err := r.Eng.CheckMissed(ctx, keys[1]); err != nil || st != "" {
		t.Errorf("re-check = %q, %v", st, err)
	}
}

// The missed-dose sweep decides each pending dose when its grace period
// ends by the clock, once even with two processes sweeping at once; a dose
// confirmed in time, or not yet due, is left alone; a dose whose check
// turns out early (its grace period grew) waits for its new time.
func TestMissedDoseSweep(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	ctx := context.Background()
	s := r.medication(t, "08:00", "20:00")
	keys := r.keys(t, s.ID)
	other := r.NewEngineWith(t, engine.Config{Now: r.clk.Now})
	sweepBoth := func() int {
		return enginetest.Race(t, 4, [2]*engine.Engine{r.Eng, other}, func(e *engine.Engine) (int, error) { return e.SweepMissed(ctx) })
	}
	r.clk.Set(start.Add(3*time.Hour - time.Second)) // 08:59:59, grace not over
	if n := sweepBoth(); n != 0 {
		t.Fatalf("%d doses decided before their grace period ended", n)
	}
	r.clk.Set(start.Add(3 * time.Hour)) // 09:00
	if n := sweepBoth(); n != 1 {
		t.Fatalf("%d doses decided at 09:00, want 1", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE occurrence_key = $1 AND status = 'missed'`, keys[0]); n != 1 {
		t.Errorf("the 08:00 dose is not missed")
	}
	// The 20:00 dose is confirmed in time: the sweep leaves it.
	var evening uuid.UUID
	if err := r.Pool.QueryRow(ctx, `SELECT id FROM doses WHERE occurrence_key = $1`, keys[1]).Scan(&evening); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(start.Add(13*time.Hour + 30*time.Minute)) // 19:30
	if _, err := r.Eng.ConfirmDose(ctx, r.patActor, evening, engine.DoseConfirmation{Status: rpm.DoseTaken}); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(start.Add(15 * time.Hour)) // 21:00
	if n := sweepBoth(); n != 0 {
		t.Fatalf("%d doses decided at 21:00, want none (the 20:00 dose was taken)", n)
	}
	// The next day's 08:00 dose: its grace period grows to 3 hours after it
	// was stored, so at 09:00 the sweep puts it back until 11:00.
	if _, err := r.Pool.Exec(ctx, `UPDATE schedules SET spec = spec || '{"grace_minutes": 180}' WHERE id = $1`, s.ID); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(start.Add(27 * time.Hour)) // next day 09:00
	if n := sweepBoth(); n != 0 {
		t.Fatalf("%d doses decided inside the longer grace period", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE occurrence_key = $1 AND missed_check_at = $2`, keys[2], start.Add(29*time.Hour)); n != 1 {
		t.Errorf("the next day's dose is not put back until 11:00")
	}
	r.clk.Set(start.Add(29 * time.Hour))
	if n := sweepBoth(); n != 1 {
		t.Fatalf("%d doses decided at 11:00, want 1", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1 AND status = 'missed'`, s.ID); n != 2 {
		t.Errorf("%d missed doses, want 2", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1 AND status = 'taken'`, s.ID); n != 1 {
		t.Errorf("%d taken doses, want 1", n)
	}
	// Two missed doses within 72 hours raise one missed-doses alert.
	if n := r.Count(t, `SELECT count(*) FROM alerts WHERE rule_id = 'missed-doses' AND patient_id = $1`, r.pat.ID); n != 1 {
		t.Errorf("%d missed-doses alerts, want 1", n)
	}
}

// With workers running, the periodic sweep marks a dose missed once its
// grace period has passed by the engine's clock.
func TestMissedDoseSweepRuns(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	r.Eng = r.NewEngineWith(t, engine.Config{Now: r.clk.Now, RunWorkers: true, ReminderInterval: -1,
		MissedDoseInterval: 100 * time.Millisecond})
	s := r.medication(t, "08:00")
	keys := r.keys(t, s.ID)
	r.clk.Set(start.Add(3 * time.Hour)) // 09:00
	enginetest.WaitFor(t, func() bool {
		return r.Count(t, `SELECT count(*) FROM doses WHERE occurrence_key = $1 AND status = 'missed'`, keys[0]) == 1
	})
}

// A confirmed dose is never missed; confirmation is the patient's (or a
// clinician's) and refuses a second answer, another patient, bad input.
func TestConfirmDose(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 7, 50, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	ctx := context.Background()
	s := r.medication(t, "08:00")
	doses, err := r.Eng.ListDoses(ctx, r.patActor, engine.DoseFilter{PatientID: r.pat.ID})
	if err != nil || len(doses) != 2 {
		t.Fatalf("doses %+v, %v", doses, err)
	}
	d := doses[0]
	if d.Date != "2026-06-01" || d.Time != "08:00" || d.Status != "pending" || d.ScheduleID.String() != s.ID {
		t.Errorf("dose %+v", d)
	}
	_, err = r.Eng.ConfirmDose(ctx, r.patActor, d.ID, engine.DoseConfirmation{Status: "lost"})
	enginetest.WantFields(t, err, "status")
	got, err := r.Eng.ConfirmDose(ctx, r.patActor, d.ID, engine.DoseConfirmation{Status: rpm.DoseTaken})
	if err != nil || got.Status != "taken" || got.TakenAt == nil {
		t.Fatalf("confirm = %+v, %v", got, err)
	}
	if _, err := r.Eng.ConfirmDose(ctx, r.Clinician, d.ID, engine.DoseConfirmation{Status: rpm.DoseSkipped}); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("second confirmation: %v, want conflict", err)
	}
	stranger := engine.Actor{UserID: uuid.New(), Role: engine.RolePatient, PatientID: r.Patient.ID}
	if _, err := r.Eng.ConfirmDose(ctx, stranger, doses[1].ID, engine.DoseConfirmation{Status: rpm.DoseTaken}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("another patient's confirmation: %v, want not found", err)
	}
	if _, err := r.Eng.ConfirmDose(ctx, r.patActor, doses[1].ID, engine.DoseConfirmation{Status: rpm.DoseTaken}); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("confirming tomorrow's dose: %v, want conflict", err)
	}
	r.clk.Set(start.Add(2 * time.Hour))
	if st, _, err := r.Eng.CheckMissed(ctx, r.keys(t, s.ID)[0]); err != nil || st != "" {
		t.Errorf("missed check of a taken dose = %q, %v", st, err)
	}
	if n := r.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'dose.confirm' AND patient_id = $1`, r.pat.ID); n != 1 {
		t.Errorf("%d confirmation audit entries, want 1", n)
	}
	a, err := r.Eng.GetAdherence(ctx, r.Clinician, r.pat.ID, start.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a.Total.Due != 1 || a.Total.Taken != 1 || a.Total.Percentage == nil || *a.Total.Percentage != 100 || len(a.Schedules) != 1 {
		t.Errorf("adherence %+v", a)
	}
}

// A measurement occurrence is met by a reading of its kind within its
// window and missed without one.
func TestMeasurementMetByReading(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	ctx := context.Background()
	s, err := r.Eng.CreateSchedule(ctx, r.Clinician, r.pat.ID, rpm.Schedule{Type: rpm.MeasurementSchedule, Kind: rpm.BloodPressure,
		Times: []string{"08:00"}, StartDate: "2026-06-01"})
	if err != nil {
		t.Fatal(err)
	}
	keys := r.keys(t, s.ID)
	cuff := engine.Actor{UserID: r.patActor.UserID, Role: engine.RolePatient, PatientID: r.pat.ID}
	r.clk.Set(start.Add(3 * time.Hour))
	if _, err := r.Eng.Ingest(ctx, cuff, engine.IngestRequest{PatientID: r.pat.ID, Readings: []rpm.Reading{enginetest.BP(121, 79, start.Add(2*time.Hour+10*time.Minute), "")}}); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(start.AddDate(0, 0, 1).Add(4 * time.Hour))
	if st, _, err := r.Eng.CheckMissed(ctx, keys[0]); err != nil || st != rpm.DoseTaken {
		t.Errorf("day 1 = %q, %v; want taken (met by the reading)", st, err)
	}
	if st, _, err := r.Eng.CheckMissed(ctx, keys[1]); err != nil || st != rpm.DoseMissed {
		t.Errorf("day 2 = %q, %v; want missed", st, err)
	}
	// Measured ten minutes before the reminder: no push, the slot is met.
	s2, err := r.Eng.CreateSchedule(ctx, r.Clinician, r.pat.ID, rpm.Schedule{Type: rpm.MeasurementSchedule, Kind: rpm.BloodPressure,
		Times: []string{"12:00"}, StartDate: "2026-06-01"})
	if err != nil {
		t.Fatal(err)
	}
	noon := start.AddDate(0, 0, 1).Add(6 * time.Hour)
	r.clk.Set(noon.Add(-5 * time.Minute))
	if _, err := r.Eng.Ingest(ctx, cuff, engine.IngestRequest{PatientID: r.pat.ID, Readings: []rpm.Reading{enginetest.BP(118, 76, noon.Add(-10*time.Minute), "")}}); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(noon)
	if _, err := r.Eng.Remind(ctx, r.keys(t, s2.ID)[0], false); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder'`); n != 0 {
		t.Errorf("%d reminders for a measurement already taken", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1 AND status = 'taken' AND taken_at IS NOT NULL`, s2.ID); n != 1 {
		t.Errorf("the measured slot is not marked taken")
	}
}

// Schedules: who may write and read them, and invalid input by field.
func TestScheduleAccessAndValidation(t *testing.T) {
	t.Parallel()
	r := newRemWorld(t, "UTC", time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC))
	ctx := context.Background()
	_, err := r.Eng.CreateSchedule(ctx, r.scheduler, r.pat.ID, rpm.Schedule{Type: rpm.MedicationSchedule, Medication: "X",
		Times: []string{"25:00"}, DaysOfWeek: []string{"mon", "funday"}, StartDate: "2026-06-10", EndDate: "2026-06-01", GraceMinutes: intp(0)})
	enginetest.WantFields(t, err, "times[0]", "days_of_week[1]", "end_date", "grace_minutes")
	valid := rpm.Schedule{Type: rpm.MedicationSchedule, Medication: "X", Times: []string{"08:00"}, StartDate: "2026-06-01"}
	if _, err := r.Eng.CreateSchedule(ctx, r.patActor, r.pat.ID, valid); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("patient creating: %v, want forbidden", err)
	}
	// The world's first patient is on another team: out of the scheduler's scope.
	if _, err := r.Eng.CreateSchedule(ctx, r.scheduler, r.Patient.ID, valid); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("out of scope: %v, want not found", err)
	}
	s, err := r.Eng.CreateSchedule(ctx, r.scheduler, r.pat.ID, valid)
	if err != nil {
		t.Fatal(err)
	}
	list, err := r.Eng.ListSchedules(ctx, r.patActor, r.pat.ID)
	if err != nil || len(list) != 1 || list[0].Medication != "X" {
		t.Errorf("patient's list = %+v, %v", list, err)
	}
	id := uuid.MustParse(s.ID)
	_, err = r.Eng.UpdateSchedule(ctx, r.scheduler, id, []byte(`{"times": ["8am"], "colour": "red"}`))
	enginetest.WantFields(t, err, "colour")
	_, err = r.Eng.UpdateSchedule(ctx, r.scheduler, id, []byte(`{"times": ["8am"]}`))
	enginetest.WantFields(t, err, "times[0]")
	_, err = r.Eng.UpdateSchedule(ctx, r.scheduler, id, []byte(`{"type": "measurement"}`))
	enginetest.WantFields(t, err, "type")
	if n := r.Count(t, `SELECT count(*) FROM audit_entries WHERE action LIKE 'schedule.%' AND patient_id = $1`, r.pat.ID); n < 2 {
		t.Errorf("%d schedule audit entries", n)
	}
}

// Two processes materialising at once store each dose once and schedule
// each of its jobs once. The dose row is the claim, not the job: a dose
// stored again (its row lost) gets a second set of jobs, yet every job of
// every dose running in two processes at once reminds each dose once.
func TestMaterialiseTwoWorkersSchedulesOnce(t *testing.T) {
	t.Parallel()
	r := newRemWorld(t, "Asia/Kolkata", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	s := r.medication(t, "08:00", "20:00")
	if _, err := r.Pool.Exec(ctx, `DELETE FROM doses; DELETE FROM river_job`); err != nil {
		t.Fatal(err)
	}
	other := r.NewEngineWith(t, engine.Config{Now: r.clk.Now})
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for _, e := range []*engine.Engine{r.Eng, other, r.Eng, other, r.Eng, other} {
		wg.Go(func() {
			_, err := e.Materialise(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1`, s.ID); n != 4 {
		t.Errorf("%d doses, want 4", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder.send'`); n != 4 {
		t.Errorf("%d reminder jobs, want 4", n)
	}
	if _, err := r.Pool.Exec(ctx, `DELETE FROM doses`); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Materialise(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder.send'`); n != 8 {
		t.Errorf("%d reminder jobs after storing the doses again, want 8 (a second set)", n)
	}
	keys := r.keys(t, s.ID)
	if len(keys) != 4 {
		t.Fatalf("keys = %v", keys)
	}
	for _, key := range keys {
		for _, e := range []*engine.Engine{r.Eng, other, r.Eng, other} {
			wg.Go(func() {
				if _, err := e.Remind(ctx, key, false); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder' AND user_id = $1`, r.patActor.UserID); n != 4 {
		t.Errorf("%d reminders sent for 4 doses, each run by 4 jobs in two processes; want 4", n)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses WHERE schedule_id = $1 AND reminded_at IS NOT NULL`, s.ID); n != 4 {
		t.Errorf("%d doses reminded, want 4", n)
	}
}

// Quiet hours: a measurement reminder (not through quiet hours by default)
// waits for the patient's window to end; a medication reminder goes out at
// once; a second reminder follows when the schedule asks for one.
func TestReminderQuietHoursAndRemindAgain(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 5, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	ctx := context.Background()
	if _, err := r.Eng.SetPreferences(ctx, r.patActor, engine.Preferences{Timezone: "UTC",
		QuietHours: &engine.QuietHours{Start: "22:00", End: "07:00"}}); err != nil {
		t.Fatal(err)
	}
	med, err := r.Eng.CreateSchedule(ctx, r.scheduler, r.pat.ID, rpm.Schedule{Type: rpm.MedicationSchedule, Medication: "X",
		Times: []string{"06:00"}, StartDate: "2026-06-01", RemindAgainMinutes: intp(20)})
	if err != nil {
		t.Fatal(err)
	}
	weigh, err := r.Eng.CreateSchedule(ctx, r.scheduler, r.pat.ID, rpm.Schedule{Type: rpm.MeasurementSchedule, Kind: rpm.BodyWeight,
		Times: []string{"06:30"}, StartDate: "2026-06-01", GraceMinutes: intp(120)})
	if err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'reminder.send' AND args->>'again' = 'true'`); n != 2 {
		t.Errorf("%d second-reminder jobs, want 2 (one per medication dose)", n)
	}
	r.clk.Set(start.Add(time.Hour)) // 06:00, in quiet hours
	if wait, err := r.Eng.Remind(ctx, r.keys(t, med.ID)[0], false); err != nil || wait != 0 {
		t.Fatalf("medication reminder: wait %v, %v", wait, err)
	}
	r.clk.Set(start.Add(90 * time.Minute)) // 06:30
	wait, err := r.Eng.Remind(ctx, r.keys(t, weigh.ID)[0], false)
	if err != nil || wait != 30*time.Minute {
		t.Fatalf("measurement reminder in quiet hours: wait %v, %v; want 30m (until 07:00)", wait, err)
	}
	if n := r.Count(t, `SELECT count(*) FROM notifications WHERE reminder_kind = 'body_weight'`); n != 0 {
		t.Errorf("%d measurement reminders sent in quiet hours", n)
	}
	r.clk.Set(start.Add(2 * time.Hour)) // 07:00, window over
	if wait, err := r.Eng.Remind(ctx, r.keys(t, weigh.ID)[0], false); err != nil || wait != 0 {
		t.Fatalf("after quiet hours: wait %v, %v", wait, err)
	}
	if _, err := r.Eng.Remind(ctx, r.keys(t, med.ID)[0], true); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]int{"medication": 2, "body_weight": 1} {
		if n := r.Count(t, `SELECT count(*) FROM notifications WHERE type = 'reminder' AND reminder_kind = $1`, kind); n != want {
			t.Errorf("%d %s reminders, want %d", n, kind, want)
		}
	}
}

// With workers running, River runs the reminder job at the dose's time and
// the push reaches the patient's phone: "Time to check your blood
// pressure", nothing more.
func TestReminderDeliveredByRiver(t *testing.T) {
	t.Parallel()
	due := time.Now().UTC().Truncate(time.Minute)
	r := newRemWorld(t, "UTC", due.Add(-time.Second))
	r.Eng = r.NewEngineWith(t, engine.Config{Now: r.clk.Now, RunWorkers: true})
	ctx := enginetest.WaitCtx(t)
	if _, err := r.Eng.CreateSchedule(ctx, r.scheduler, r.pat.ID, rpm.Schedule{Type: rpm.MeasurementSchedule, Kind: rpm.BloodPressure,
		Times: []string{due.Format("15:04")}, StartDate: due.Format(time.DateOnly)}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Push.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("no reminder push: %v", err)
	}
	if got[0].Endpoint != r.Sub || !strings.Contains(string(got[0].Payload), "Time to check your blood pressure") {
		t.Errorf("push %s to %s", got[0].Payload, got[0].Endpoint)
	}
	enginetest.WaitFor(t, func() bool {
		return r.Count(t, `SELECT count(*) FROM doses WHERE reminded_at IS NOT NULL`) == 1
	})
}

// A schedule paused while the periodic materialisation is under way gets
// no doses: the materialisation waits for the pause and reads its outcome.
func TestMaterialiseWaitsForAPause(t *testing.T) {
	t.Parallel()
	r := newRemWorld(t, "UTC", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	s := r.medication(t, "08:00", "20:00")
	if _, err := r.Pool.Exec(ctx, `DELETE FROM doses; DELETE FROM river_job`); err != nil {
		t.Fatal(err)
	}
	tx, err := r.Pool.Begin(ctx) // a pause in progress
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE schedules SET paused = true WHERE id = $1`, s.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Eng.Materialise(ctx)
		done <- err
	}()
	enginetest.WaitFor(t, func() bool {
		return r.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := r.Count(t, `SELECT count(*) FROM doses`); n != 0 {
		t.Errorf("%d doses of a schedule paused during materialisation", n)
	}
}

// Missed doses are judged by the patient's organisation's pack: with
// missed-doses disabled for the patient's organisation, two missed doses
// raise nothing.
func TestMissedDosesFollowTheOrganisationsPack(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)
	r := newRemWorld(t, "UTC", start)
	ctx := context.Background()
	if _, _, err := r.Eng.UpdateRule(ctx, enginetest.DefaultOrgAdmin(t, r.World), "missed-doses", []byte(`{"enabled": false}`)); err != nil {
		t.Fatal(err)
	}
	s := r.medication(t, "08:00", "20:00")
	keys := r.keys(t, s.ID)
	r.clk.Set(start.Add(15 * time.Hour)) // 21:00, both doses past their grace
	for _, k := range keys[:2] {
		if st, _, err := r.Eng.CheckMissed(ctx, k); err != nil || st != rpm.DoseMissed {
			t.Fatalf("check = %q, %v; want missed", st, err)
		}
	}
	if n := r.Count(t, `SELECT count(*) FROM alerts WHERE patient_id = $1`, r.pat.ID); n != 0 {
		t.Errorf("%d alerts after two missed doses with missed-doses disabled for the organisation", n)
	}
	// The default pack still has it: Tend's own view is unchanged.
	if rule, ok := r.Eng.Rules().Rule("missed-doses"); !ok || !rule.IsEnabled() {
		t.Error("the default pack's missed-doses was disabled")
	}
}
