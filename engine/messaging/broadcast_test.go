package messaging_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// addPatients enrols n more patients in team, each with their threads, in
// one statement (as care would, without the per-patient transactions).
func addPatients(t testing.TB, w *enginetest.World, team uuid.UUID, n int) {
	t.Helper()
	if _, err := w.Pool.Exec(context.Background(), `
		WITH p AS (
			INSERT INTO patients (id, display_name, timezone, care_team_id, programs, org_id)
			SELECT gen_random_uuid(), 'P' || i, 'Europe/Berlin', $1, '{hypertension}', '00000000-0000-0000-0000-000000000001' FROM generate_series(1, $2) i
			RETURNING id, care_team_id, created_at)
		INSERT INTO threads (id, kind, care_team_id, patient_id, last_activity_at, created_at)
		SELECT gen_random_uuid(), k.kind, p.care_team_id, p.id, p.created_at, p.created_at
		FROM p CROSS JOIN (VALUES ('patient'), ('staff_patient')) AS k(kind)`, team, n); err != nil {
		t.Fatal(err)
	}
}

// makeLead makes w's clinician a lead of the patient's team.
func makeLead(t testing.TB, w *enginetest.World) {
	t.Helper()
	if _, err := w.Pool.Exec(context.Background(), `UPDATE care_team_members SET role = 'lead' WHERE user_id = $1`,
		w.Clinician.UserID); err != nil {
		t.Fatal(err)
	}
}

// copiesPerThread returns, for every patient thread of the team, how many
// copies of broadcast id it holds.
func copiesPerThread(t testing.TB, w *enginetest.World, team, id uuid.UUID) map[uuid.UUID]int {
	t.Helper()
	rows, err := w.Pool.Query(context.Background(), `SELECT t.id, count(m.id) FROM threads t
		LEFT JOIN messages m ON m.thread_id = t.id AND m.broadcast_id = $2
		WHERE t.care_team_id = $1 AND t.kind = 'patient' GROUP BY t.id`, team, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]int{}
	for rows.Next() {
		var th uuid.UUID
		var n int
		if err := rows.Scan(&th, &n); err != nil {
			t.Fatal(err)
		}
		out[th] = n
	}
	return out
}

// batchesOf returns the batch numbers of a broadcast's fan-out jobs.
func batchesOf(t testing.TB, w *enginetest.World, id uuid.UUID) []int {
	t.Helper()
	return enginetest.Column[int](t, w, `SELECT (args->>'batch')::int FROM river_job
		WHERE kind = 'message.broadcast' AND args->>'broadcast_id' = $1 ORDER BY 1`, id.String())
}

// TestBroadcastCrashAndResume: a broadcast to 53 patients in batches of 10.
// Batch 0 runs; batch 1 is killed mid-way (its context ends while the copies
// are being inserted); then every batch runs again, batch 3 twice at once.
// Each thread holds exactly one copy and done == total. Each copy is a
// clinician's message: sealed, audited, streamed, and pushed after the hold.
func TestBroadcastCrashAndResume(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng := w.NewEngineWith(t, engine.Config{BroadcastBatch: 10})
	makeLead(t, w)
	team := w.Patient.CareTeamID
	addPatients(t, w, team, 52)
	const text = "The clinic is closed on Monday"
	b, err := eng.Broadcast(ctx, w.Clinician, team, engine.NewBroadcast{Body: text})
	if err != nil {
		t.Fatal(err)
	}
	if b.Total != 53 || b.Done != 0 || b.Status != "running" {
		t.Fatalf("broadcast = %+v", b)
	}
	if got := batchesOf(t, w, b.ID); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("fan-out jobs for batches %v, want 0-5", got)
	}
	if res, err := eng.BroadcastBatch(ctx, b.ID, 0, false); err != nil || res.Sent != 10 {
		t.Fatalf("batch 0 = %+v, %v", res, err)
	}

	// Kill batch 1 while its copies are being inserted.
	if _, err := w.Pool.Exec(ctx, `CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(10); RETURN NULL; END $$;
		CREATE TRIGGER slow_insert AFTER INSERT ON messages FOR EACH STATEMENT EXECUTE FUNCTION slow_insert()`); err != nil {
		t.Fatal(err)
	}
	killed, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = eng.BroadcastBatch(killed, b.ID, 1, false)
	cancel()
	if err == nil {
		t.Fatal("batch 1 survived its cancelled context")
	}
	if _, err := w.Pool.Exec(ctx, `DROP TRIGGER slow_insert ON messages; DROP FUNCTION slow_insert()`); err != nil {
		t.Fatal(err)
	}
	mid, err := eng.GetBroadcast(ctx, w.Clinician, b.ID)
	if err != nil || mid.Done != 10 || mid.Status != "running" {
		t.Fatalf("after the crash: %+v, %v; want 10 done", mid, err)
	}

	// Resume: every batch again, batch 0 included, and batch 3 twice at once
	// (a rescued job whose first run is still going).
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, batch := range []int{0, 1, 2, 3, 3, 4, 5} {
		wg.Go(func() {
			if _, err := eng.BroadcastBatch(ctx, b.ID, batch, false); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("resumed batch: %v", err)
	}
	// And once more, as River would after a crash right after COMMIT.
	for batch := range 6 {
		if res, err := eng.BroadcastBatch(ctx, b.ID, batch, true); err != nil || res.Sent != 0 || res.Failed != 0 {
			t.Errorf("re-run of completed batch %d = %+v, %v; want nothing to do", batch, res, err)
		}
	}
	copies := copiesPerThread(t, w, team, b.ID)
	if len(copies) != 53 {
		t.Fatalf("%d patient threads, want 53", len(copies))
	}
	for th, n := range copies {
		if n != 1 {
			t.Errorf("thread %s holds %d copies", th, n)
		}
	}
	done, err := eng.GetBroadcast(ctx, w.Clinician, b.ID)
	if err != nil || done.Done != done.Total || done.Total != 53 || done.Failed != 0 || done.Status != "completed" {
		t.Fatalf("progress = %+v, %v; want 53 of 53 done", done, err)
	}

	// Each copy is audited, streamed and pushed after the hold, and reads as
	// a clinician's message in the patient's thread.
	for what, sql := range map[string]string{
		"audit entries": `SELECT count(*) FROM audit_entries WHERE action = 'message.create' AND detail->>'broadcast_id' = $1`,
		"events":        `SELECT count(*) FROM events WHERE type = 'message.created' AND payload->>'broadcast_id' = $1`,
		"push jobs": `SELECT count(*) FROM river_job j JOIN messages m ON m.id = (j.args->>'message_id')::uuid
			WHERE j.kind = 'message.push' AND m.broadcast_id = $1::uuid AND j.scheduled_at > m.created_at`,
	} {
		if n := w.Count(t, sql, b.ID.String()); n != 53 {
			t.Errorf("%s: %d, want 53", what, n)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM messages WHERE broadcast_id = $1 AND body::text LIKE '%closed%'`, b.ID); n != 0 {
		t.Errorf("%d copies stored in clear text", n)
	}
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, eng, pat)
	page, err := eng.ListMessages(ctx, pat, th.ID, engine.MessageFilter{})
	if err != nil || len(page.Items) != 1 || page.Items[0].Body != text || page.Items[0].SenderRole != "clinician" ||
		page.Items[0].SenderID == nil || *page.Items[0].SenderID != w.Clinician.UserID {
		t.Fatalf("patient's thread = %+v, %v", page.Items, err)
	}
	pushed, err := eng.PushMessage(ctx, page.Items[0].ID)
	if err != nil || !slices.Equal(pushed, []uuid.UUID{pat.UserID}) {
		t.Fatalf("push of the copy went to %v, %v; want the patient", pushed, err)
	}
}

// TestBroadcastFailedThread: a thread that refuses its copy fails the batch
// until the job's last attempt, which appends thread by thread: that thread
// is counted failed, the others done.
func TestBroadcastFailedThread(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	var logs enginetest.SyncBuffer
	eng := w.NewEngineWith(t, engine.Config{BroadcastBatch: 10, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	makeLead(t, w)
	team := w.Patient.CareTeamID
	addPatients(t, w, team, 4)
	var bad uuid.UUID
	if err := w.Pool.QueryRow(ctx, `SELECT id FROM threads WHERE care_team_id = $1 AND kind = 'patient' ORDER BY id LIMIT 1`,
		team).Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.thread_id = '`+bad.String()+`' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	b, err := eng.Broadcast(ctx, w.Clinician, team, engine.NewBroadcast{Body: "Flu shots on Friday", Urgent: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.BroadcastBatch(ctx, b.ID, 0, false); err == nil {
		t.Fatal("a batch with a refusing thread succeeded before its last attempt")
	}
	if got, _ := eng.GetBroadcast(ctx, w.Clinician, b.ID); got.Done != 0 {
		t.Fatalf("a failed attempt left %d copies", got.Done)
	}
	res, err := eng.BroadcastBatch(ctx, b.ID, 0, true)
	if err != nil || res.Sent != 4 || res.Failed != 1 {
		t.Fatalf("last attempt = %+v, %v; want 4 sent, 1 failed", res, err)
	}
	got, err := eng.GetBroadcast(ctx, w.Clinician, b.ID)
	if err != nil || got.Total != 5 || got.Done != 4 || got.Failed != 1 || got.Status != "completed" {
		t.Fatalf("progress = %+v, %v", got, err)
	}
	if copies := copiesPerThread(t, w, team, b.ID); copies[bad] != 0 || len(copies) != 5 {
		t.Fatalf("copies = %v", copies)
	}
	if out := logs.String(); !strings.Contains(out, bad.String()) || strings.Contains(out, "Flu shots") {
		t.Errorf("the logs must name the thread that failed and nothing of the message:\n%s", out)
	}
}

// TestBroadcastRunsOnWorkers: with workers running, a broadcast completes
// on its own through River.
func TestBroadcastRunsOnWorkers(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	eng := w.NewEngineWith(t, engine.Config{RunWorkers: true, BroadcastBatch: 7})
	makeLead(t, w)
	addPatients(t, w, w.Patient.CareTeamID, 20)
	b, err := eng.Broadcast(ctx, w.Clinician, w.Patient.CareTeamID, engine.NewBroadcast{Body: "New opening hours"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := eng.GetBroadcast(ctx, w.Clinician, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == "completed" {
			if got.Done != 21 || got.Failed != 0 {
				t.Fatalf("completed: %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broadcast still %+v after 30 s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for th, n := range copiesPerThread(t, w, w.Patient.CareTeamID, b.ID) {
		if n != 1 {
			t.Errorf("thread %s holds %d copies", th, n)
		}
	}
}

// TestBroadcastScope: only the team's leads and admins broadcast; other
// members are forbidden, outsiders find nothing; an empty team's broadcast
// is complete at once.
func TestBroadcastScope(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	team := w.Patient.CareTeamID
	if _, err := w.Eng.Broadcast(ctx, w.Clinician, team, engine.NewBroadcast{Body: "x"}); !errors.Is(err, engine.ErrForbidden) {
		t.Errorf("a clinician who is no lead: %v, want forbidden", err)
	}
	pat := w.PatientUser(t)
	for name, a := range map[string]engine.Actor{"patient": pat, "device": w.Device} {
		if _, err := w.Eng.Broadcast(ctx, a, team, engine.NewBroadcast{Body: "x"}); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
	empty, err := w.Eng.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Empty"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.Eng.Broadcast(ctx, w.Admin, empty.ID, engine.NewBroadcast{Body: "Hello"})
	if err != nil || b.Total != 0 || b.Status != "completed" {
		t.Fatalf("empty team's broadcast = %+v, %v", b, err)
	}
	if _, err := w.Eng.Broadcast(ctx, w.Admin, uuid.New(), engine.NewBroadcast{Body: "Hello"}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("no such team: %v", err)
	}
	var v interface{ Error() string }
	if _, err := w.Eng.Broadcast(ctx, w.Admin, team, engine.NewBroadcast{Body: ""}); !errors.As(err, &v) || errors.Is(err, engine.ErrNotFound) {
		t.Errorf("empty body: %v", err)
	}
}
