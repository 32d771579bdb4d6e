package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// pngBytes is the smallest file the attachment sniffer takes for a PNG.
var pngBytes = []byte("\x89PNG\r\n\x1a\n0000")

// world is two organisations' data, old and new: the test's default
// organisation (w) keeps everything for 30 days, a second one ("other")
// keeps readings for a year and the rest for ever.
type world struct {
	*enginetest.World
	eng   *engine.Engine
	clock *enginetest.Clock
	other uuid.UUID
	// otherPatient is the second organisation's patient.
	otherPatient uuid.UUID
	// pendingAlert's delivery jobs have not run; pendingMessage's push has
	// not run.
	pendingAlert, pendingMessage uuid.UUID
	// messageNote has a notification newer than the deliveries period.
	messageNote uuid.UUID
	// thread is the default organisation's patient thread.
	threadID uuid.UUID
	// cutoff is 30 days before the run.
	cutoff time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	old := now.Add(-100 * 24 * time.Hour)
	w := &world{World: enginetest.NewWorld(t, false), cutoff: now.Add(-30 * 24 * time.Hour)}
	w.eng, w.clock = w.NewClockedEngine(t, old, engine.Config{RetentionBatch: 2})
	w.exec(t, `UPDATE organisations SET retain_readings_days = 30, retain_messages_days = 30, retain_attachments_days = 30,
		retain_deliveries_days = 30`)
	w.other = uuid.New()
	w.exec(t, `INSERT INTO organisations (id, name, slug, retain_readings_days) VALUES ($1, 'Other clinic', 'other', 365)`, w.other)

	// The second organisation: a team, a clinician, a patient and their cuff.
	admin := engine.System("test")
	admin.OrgID = w.other
	doc, err := w.eng.CreateUser(ctx, admin, engine.NewUser{Name: "Dr Lin", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	team, err := w.eng.CreateCareTeam(ctx, admin, engine.NewCareTeam{Name: "COPD", MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		t.Fatal(err)
	}
	otherDoc := engine.Actor{UserID: doc.ID, Role: engine.RoleClinician, OrgID: w.other, RequestID: "test"}
	p, err := w.eng.CreatePatient(ctx, otherDoc, engine.NewPatient{DisplayName: "Kit Moss", Timezone: "UTC",
		CareTeamID: team.ID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	w.otherPatient = p.ID

	// 100 days ago: readings, messages, an attachment and alerts in both.
	for i, at := range []time.Duration{0, time.Hour, 2 * time.Hour} {
		w.ingest(t, w.Clinician, w.Patient.ID, old.Add(-at), "old-"+string(rune('a'+i)))
	}
	w.ingest(t, otherDoc, w.otherPatient, old, "other-old")
	thread, otherThread := w.thread(t, w.Clinician, w.Patient.ID), w.thread(t, otherDoc, w.otherPatient)
	att := w.upload(t, w.Clinician, thread)
	w.upload(t, otherDoc, otherThread)
	var messages []uuid.UUID
	for i := range 3 {
		in := engine.NewMessage{Body: "Please measure again tomorrow"}
		if i == 0 {
			in.AttachmentIDs = []uuid.UUID{att}
		}
		messages = append(messages, w.post(t, w.Clinician, thread, in))
		w.clock.Advance(time.Minute)
	}
	w.post(t, otherDoc, otherThread, engine.NewMessage{Body: "Hello"})
	done := enginetest.RaiseCritical(t, w.World, w.eng, w.clock.Now())
	w.clock.Advance(time.Minute)
	w.pendingAlert = w.raiseOther(t)
	w.pendingMessage = messages[2]
	// River ran every job but the pending alert's deliveries and the last
	// message's push; the done alert's delivery was recorded.
	w.exec(t, `UPDATE river_job SET state = 'completed', finalized_at = $1
		WHERE NOT (kind = 'notify.deliver' AND args->>'alert_id' = $2) AND NOT (kind = 'message.push' AND args->>'message_id' = $3)`,
		w.clock.Now(), w.pendingAlert.String(), w.pendingMessage.String())
	w.exec(t, `INSERT INTO deliveries (notification_id, device_id, attempt, outcome, created_at)
		SELECT n.id, d.id, 1, 'sent', n.created_at FROM notifications n JOIN devices d ON d.user_id = n.user_id
		WHERE n.alert_id = $1`, done)

	// Quiet hours: one notification still held (no catch-up yet), and two
	// summarised by a catch-up made after them, whose delivery was done.
	catchup := uuid.New()
	w.exec(t, `INSERT INTO notifications (id, user_id, type, urgency, held_until, created_at) VALUES
		($1, $2, 'alert', 'medium', $3, $3)`, uuid.New(), w.Clinician.UserID, old.Add(time.Hour))
	w.exec(t, `INSERT INTO notifications (id, user_id, type, urgency, item_count, created_at) VALUES ($1, $2, 'catchup', 'medium', 2, $3)`,
		catchup, w.Clinician.UserID, old.Add(8*time.Hour))
	w.exec(t, `INSERT INTO notifications (id, user_id, type, urgency, held_until, catchup_id, created_at)
		SELECT gen_random_uuid(), $1, 'alert', 'medium', $2, $3, $4::timestamptz - g * interval '1 minute' FROM generate_series(1, 2) g`,
		w.Clinician.UserID, old.Add(8*time.Hour), catchup, old.Add(2*time.Hour))

	// A push of an old message, recorded (and sent) recently: it outlives
	// the message.
	w.exec(t, `INSERT INTO notifications (id, user_id, type, urgency, message_id, thread_id, created_at)
		VALUES ($1, $2, 'message', 'medium', $3, $4, $5)`, uuid.New(), w.Clinician.UserID, messages[1], thread, now.Add(-time.Hour))
	w.messageNote, w.threadID = messages[1], thread

	// Now: one of each that stays.
	w.clock.Set(now)
	w.ingest(t, w.Clinician, w.Patient.ID, now.Add(-time.Minute), "new")
	w.post(t, w.Clinician, thread, engine.NewMessage{Body: "Thanks", AttachmentIDs: []uuid.UUID{w.upload(t, w.Clinician, thread)}})
	return w
}

func (w *world) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := w.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (w *world) ingest(t *testing.T, a engine.Actor, patient uuid.UUID, at time.Time, source string) {
	t.Helper()
	if _, err := w.eng.Ingest(context.Background(), a, engine.IngestRequest{PatientID: patient,
		Readings: []rpm.Reading{enginetest.BP(122, 78, at, source)}}); err != nil {
		t.Fatal(err)
	}
}

// raiseOther raises a critical alert for a second patient of the default
// organisation and returns it.
func (w *world) raiseOther(t *testing.T) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	p, err := w.eng.CreatePatient(ctx, w.Clinician, engine.NewPatient{DisplayName: "Ada Park", Timezone: "UTC",
		CareTeamID: w.Patient.CareTeamID, Programs: []string{"hypertension"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.eng.Ingest(ctx, w.Clinician, engine.IngestRequest{PatientID: p.ID,
		Readings: []rpm.Reading{enginetest.BP(245, 100, w.clock.Now(), "")}})
	if err != nil || len(res.Alerts) != 1 {
		t.Fatalf("ingest = %+v, %v; want one alert", res, err)
	}
	return res.Alerts[0].ID
}

func (w *world) thread(t *testing.T, a engine.Actor, patient uuid.UUID) uuid.UUID {
	t.Helper()
	threads, _, err := w.eng.ListThreads(context.Background(), a, engine.ThreadFilter{PatientID: patient})
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		if th.Kind == "patient" {
			return th.ID
		}
	}
	t.Fatalf("no patient thread in %+v", threads)
	return uuid.Nil
}

func (w *world) upload(t *testing.T, a engine.Actor, thread uuid.UUID) uuid.UUID {
	t.Helper()
	att, err := w.eng.UploadAttachment(context.Background(), a, thread, "image/png", pngBytes)
	if err != nil {
		t.Fatal(err)
	}
	return att.ID
}

func (w *world) post(t *testing.T, a engine.Actor, thread uuid.UUID, in engine.NewMessage) uuid.UUID {
	t.Helper()
	p, err := w.eng.PostMessage(context.Background(), a, thread, in)
	if err != nil {
		t.Fatal(err)
	}
	return p.Message.ID
}

// state counts, per organisation, what a run may touch.
type state struct {
	oldReadings, newReadings, oldSources, oldMessages, newMessages, oldAttachments, newAttachments, blobs int
	oldNotifications, oldDeliveries, pendingNotifications                                                 int
}

func (w *world) state(t *testing.T, org uuid.UUID) state {
	t.Helper()
	const threads = `(SELECT t.id FROM threads t JOIN care_teams c ON c.id = t.care_team_id WHERE c.org_id = $1)`
	count := func(sql string, args ...any) int { return w.Count(t, sql, append([]any{org}, args...)...) }
	return state{
		oldReadings:    count(`SELECT count(*) FROM readings r JOIN patients p ON p.id = r.patient_id WHERE p.org_id = $1 AND r.observed_at < $2`, w.cutoff),
		newReadings:    count(`SELECT count(*) FROM readings r JOIN patients p ON p.id = r.patient_id WHERE p.org_id = $1 AND r.observed_at >= $2`, w.cutoff),
		oldSources:     count(`SELECT count(*) FROM reading_sources s JOIN patients p ON p.id = s.patient_id WHERE p.org_id = $1 AND s.observed_at < $2`, w.cutoff),
		oldMessages:    count(`SELECT count(*) FROM messages WHERE thread_id IN `+threads+` AND created_at < $2`, w.cutoff),
		newMessages:    count(`SELECT count(*) FROM messages WHERE thread_id IN `+threads+` AND created_at >= $2`, w.cutoff),
		oldAttachments: count(`SELECT count(*) FROM attachments WHERE thread_id IN `+threads+` AND created_at < $2`, w.cutoff),
		newAttachments: count(`SELECT count(*) FROM attachments WHERE thread_id IN `+threads+` AND created_at >= $2`, w.cutoff),
		blobs:          count(`SELECT count(*) FROM attachment_blobs b JOIN attachments a ON a.id = b.attachment_id WHERE a.thread_id IN ` + threads),
		oldNotifications: count(`SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.org_id = $1 AND n.created_at < $2`,
			w.cutoff),
		oldDeliveries: count(`SELECT count(*) FROM deliveries d JOIN notifications n ON n.id = d.notification_id JOIN users u ON u.id = n.user_id
			WHERE u.org_id = $1 AND n.created_at < $2`, w.cutoff),
		pendingNotifications: count(`SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.org_id = $1
			AND (n.alert_id = $2 OR n.held_until IS NOT NULL AND n.catchup_id IS NULL)`, w.pendingAlert),
	}
}

// TestRetention: a run deletes only the rows older than each
// organisation's periods, and only that organisation's, in batches of the
// configured size, each audited with its counts and organisation; what is
// not finished (a delivery job still to run, a message's push still to run)
// stays; a run cancelled after its first batch leaves the rest for the next
// run, which finishes.
func TestRetention(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	def := w.Admin.HomeOrg()
	before, otherBefore := w.state(t, def), w.state(t, w.other)
	if before.oldReadings < 4 || before.oldSources != 3 || before.oldMessages != 3 || before.oldAttachments != 1 ||
		before.oldNotifications < 5 || before.oldDeliveries == 0 || before.pendingNotifications < 2 || before.newReadings != 1 ||
		before.newMessages != 1 || before.newAttachments != 1 {
		t.Fatalf("the world is not what the test needs: %+v", before)
	}
	if otherBefore.oldReadings != 1 || otherBefore.oldMessages != 1 || otherBefore.oldAttachments != 1 {
		t.Fatalf("the other organisation is not what the test needs: %+v", otherBefore)
	}

	// A dry run counts and deletes nothing.
	dry, err := w.eng.RunRetention(ctx, engine.RetentionOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	wantDry := map[engine.RetentionKind]int64{"readings": int64(before.oldReadings), "messages": 2, "attachments": 1,
		"deliveries": int64(before.oldNotifications - before.pendingNotifications)}
	for _, c := range dry {
		if c.OrgID == w.other && (c.Kind != "readings" || c.Rows != 0) || c.OrgID == def && c.Rows != wantDry[c.Kind] {
			t.Errorf("dry run: %+v; want %d for the default organisation, nothing for the other", c, wantDry[c.Kind])
		}
	}
	if got := w.state(t, def); got != before {
		t.Fatalf("a dry run deleted: %+v, was %+v", got, before)
	}

	// Cancelled after its first batch: two readings went, in one transaction.
	cctx, cancel := context.WithCancel(ctx)
	var batches []engine.RetentionCount
	_, err = w.eng.RunRetention(cctx, engine.RetentionOptions{Progress: func(c engine.RetentionCount) {
		batches = append(batches, c)
		cancel()
	}})
	if !errors.Is(err, context.Canceled) || len(batches) != 1 || batches[0].Rows != 2 || batches[0].Kind != "readings" {
		t.Fatalf("cancelled run: %v, batches %+v; want one batch of 2 readings and context.Canceled", err, batches)
	}
	if got := w.state(t, def).oldReadings; got != before.oldReadings-2 {
		t.Fatalf("after the first batch %d old readings, want %d", got, before.oldReadings-2)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'retention.delete'`); n != 1 {
		t.Fatalf("%d audit entries after one batch, want 1", n)
	}

	threadBefore, err := w.eng.GetThread(ctx, w.Clinician, w.threadID)
	if err != nil {
		t.Fatal(err)
	}

	// The next run finishes.
	batches = nil
	counts, err := w.eng.RunRetention(ctx, engine.RetentionOptions{Progress: func(c engine.RetentionCount) {
		batches = append(batches, c)
	}})
	if err != nil {
		t.Fatal(err)
	}
	after, otherAfter := w.state(t, def), w.state(t, w.other)
	want := before
	want.oldReadings, want.oldSources = 0, 0
	want.oldMessages = 1 // its push is still to run
	want.oldAttachments, want.blobs = 0, before.blobs-1
	want.oldNotifications, want.oldDeliveries = before.pendingNotifications, 0
	if after != want {
		t.Errorf("after retention:\n got %+v\nwant %+v", after, want)
	}
	if otherAfter != otherBefore {
		t.Errorf("the other organisation lost rows: %+v, was %+v", otherAfter, otherBefore)
	}
	if n := w.Count(t, `SELECT count(*) FROM messages WHERE id = $1`, w.pendingMessage); n != 1 {
		t.Error("the message whose push is still to run was deleted")
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE type = 'message' AND message_id IS NULL AND thread_id IS NOT NULL`); n != 1 {
		t.Errorf("%d message notifications kept without their deleted message, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM messages WHERE id = $1`, w.messageNote); n != 0 {
		t.Error("a message with a finished notification was kept")
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.deliver' AND args->>'alert_id' = $1
		AND state = 'available'`, w.pendingAlert.String()); n == 0 {
		t.Error("the pending alert's delivery jobs are gone")
	}
	// The thread keeps its numbering: its page starts at the oldest message
	// kept, with nothing before it, and its read state is unchanged.
	page, err := w.eng.ListMessages(ctx, w.Clinician, w.threadID, engine.MessageFilter{Limit: 50})
	if err != nil || len(page.Items) != 2 || page.Items[0].ID != w.pendingMessage || page.Items[0].Seq != 3 ||
		page.Items[1].Seq != 4 || page.BeforeCursor != nil {
		t.Errorf("thread page after retention = %+v, %v; want the pending message (seq 3) and the new one (4), nothing before", page, err)
	}
	threadAfter, err := w.eng.GetThread(ctx, w.Clinician, w.threadID)
	if err != nil || threadAfter.UnreadCount != threadBefore.UnreadCount || !threadAfter.LastMessageAt.Equal(*threadBefore.LastMessageAt) {
		t.Errorf("thread after retention = %+v, %v; was %+v", threadAfter, err, threadBefore)
	}
	for _, b := range batches {
		if b.Rows < 1 || b.Rows > 2 {
			t.Errorf("batch %+v: want 1 or 2 rows (the batch size is 2)", b)
		}
	}
	total := map[engine.RetentionKind]int64{}
	for _, c := range counts {
		total[c.Kind] += c.Rows
	}
	wantTotal := map[engine.RetentionKind]int64{"readings": int64(before.oldReadings - 2), "messages": 2, "attachments": 1,
		"deliveries": int64(before.oldNotifications - before.pendingNotifications)}
	for k, n := range wantTotal {
		if total[k] != n {
			t.Errorf("second run deleted %d %s, want %d", total[k], k, n)
		}
	}

	// One audit entry per batch, Tend's own, in the organisation, with counts.
	rows, err := w.Pool.Query(ctx, `SELECT actor_role, actor_id IS NULL, org_id, object_id, detail->>'kind', (detail->>'rows')::int
		FROM audit_entries WHERE action = 'retention.delete' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]int64{}
	entries := 0
	for rows.Next() {
		var role, object, kind string
		var noActor bool
		var org *uuid.UUID
		var n int64
		if err := rows.Scan(&role, &noActor, &org, &object, &kind, &n); err != nil {
			t.Fatal(err)
		}
		entries++
		audited[kind] += n
		if role != "system" || !noActor || org == nil || *org != def || object != def.String() {
			t.Errorf("audit entry: role %s, no actor %v, org %v, object %s; want Tend itself in the default organisation", role, noActor, org, object)
		}
	}
	rows.Close()
	if entries != len(batches)+1 {
		t.Errorf("%d audit entries, want one per batch (%d)", entries, len(batches)+1)
	}
	for k, n := range wantTotal {
		if k == "readings" {
			n += 2
		}
		if audited[string(k)] != n {
			t.Errorf("audited %d %s, want %d", audited[string(k)], k, n)
		}
	}

	// Nothing is left to do.
	again, err := w.eng.RunRetention(ctx, engine.RetentionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Rows != 0 {
			t.Errorf("third run deleted %+v", c)
		}
	}
}

// TestRetentionJob: an engine that runs workers applies the periods at
// start (the periodic job, through River).
func TestRetentionJob(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	old := time.Now().Add(-40 * 24 * time.Hour)
	if _, err := w.Eng.Ingest(ctx, w.Device, engine.IngestRequest{PatientID: w.Patient.ID,
		Readings: []rpm.Reading{enginetest.BP(118, 76, old, "cuff-1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `UPDATE organisations SET retain_readings_days = 30`); err != nil {
		t.Fatal(err)
	}
	w.NewEngine(t, true)
	enginetest.WaitFor(t, func() bool {
		return w.Count(t, `SELECT count(*) FROM readings WHERE patient_id = $1`, w.Patient.ID) == 0
	})
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'retention.delete' AND detail->>'kind' = 'readings'`); n != 1 {
		t.Errorf("%d audit entries for the job's batch, want 1", n)
	}
}
