package messaging_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/enginetest/pushtest"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rpm"
)

// TestMessagePushWaitsForTheHold: a patient's message schedules its push
// for the end of the hold (30 s by the injected clock); at the hold's end a
// message the clinician read meanwhile is not pushed, and one left unread is
// pushed exactly once (to each of the clinician's devices), however often
// the job runs.
func TestMessagePushWaitsForTheHold(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	w := pushtest.NewQuiet(t, time.Date(2026, 6, 10, 12, 0, 0, 0, chi)) // outside quiet hours
	ctx := context.Background()
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, w.Eng, pat)

	unread, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "Is it fine to take ibuprofen?"})
	if err != nil {
		t.Fatal(err)
	}
	read, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "Never mind, found the leaflet"})
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := w.Pool.QueryRow(ctx, `SELECT scheduled_at FROM river_job WHERE kind = 'message.push' AND args->>'message_id' = $1`,
		unread.ID.String()).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if want := w.Clock.Now().Add(30 * time.Second); !at.Equal(want) {
		t.Fatalf("push scheduled at %s, want the end of the hold %s", at, want)
	}
	// The clinician's app reads the second message within the hold (which
	// also covers the first: read marks are watermarks).
	w.Clock.Set(w.Clock.Now().Add(10 * time.Second))
	st, err := w.Eng.MarkRead(ctx, w.Clinician, th.ID, unread.ID)
	if err != nil || st.ReadUpTo != unread.Seq {
		t.Fatalf("mark read = %+v, %v", st, err)
	}
	w.Clock.Set(w.Clock.Now().Add(20 * time.Second))
	if users, err := w.Eng.PushMessage(ctx, unread.ID); err != nil || len(users) != 0 {
		t.Fatalf("push of a message read in time = %v, %v; want nobody", users, err)
	}
	for range 2 { // a re-run after a crash notifies nobody twice
		users, err := w.Eng.PushMessage(ctx, read.ID)
		if err != nil || len(users) != 1 || users[0] != w.Clinician.UserID {
			t.Fatalf("push of the unread message = %v, %v; want the clinician", users, err)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE message_id = $1`, unread.ID); n != 0 {
		t.Errorf("%d notifications of the message read in time, want 0", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE message_id = $1 AND user_id = $2 AND type = 'message'
		AND urgency = 'medium' AND held_until IS NULL`, read.ID, w.Clinician.UserID); n != 1 {
		t.Errorf("%d notifications of the unread message, want exactly 1", n)
	}
	var devices int
	if err := w.Pool.QueryRow(ctx, `SELECT count(*) FROM devices WHERE user_id = $1 AND enabled`, w.Clinician.UserID).Scan(&devices); err != nil {
		t.Fatal(err)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job j JOIN notifications n ON n.id = (j.args->>'notification_id')::uuid
		WHERE j.kind = 'notify.deliver' AND n.message_id = $1`, read.ID); n != devices || n == 0 {
		t.Errorf("%d delivery jobs, want one per device (%d)", n, devices)
	}
}

// TestUrgentMessageGoesThroughQuietHours: at 23:00, inside the patient's
// quiet hours, a clinician's urgent message is pushed at once at high
// urgency, while an ordinary one waits for the catch-up at 07:00.
func TestUrgentMessageGoesThroughQuietHours(t *testing.T) {
	t.Parallel()
	chi := enginetest.Chicago(t)
	w := pushtest.NewQuiet(t, time.Date(2026, 6, 10, 23, 0, 0, 0, chi))
	ctx := context.Background()
	pat := w.PatientUser(t)
	if _, err := w.Eng.SetPreferences(ctx, pat, engine.Preferences{Timezone: "America/Chicago",
		QuietHours: &engine.QuietHours{Start: "22:00", End: "07:00"}}); err != nil {
		t.Fatal(err)
	}
	sub := w.Push.NewSubscription()
	if _, _, err := w.Eng.RegisterDevice(ctx, pat, engine.NewDevice{Platform: notify.WebPush, Endpoint: sub.Endpoint,
		P256dh: sub.P256dh, Auth: sub.Auth}); err != nil {
		t.Fatal(err)
	}
	th := enginetest.PatientThread(t, w.Eng, pat)
	if _, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "hello", Urgent: true}); err == nil {
		t.Fatal("a patient marked a message urgent")
	}
	urgent, err := w.Eng.PostMessage(ctx, w.Clinician, th.ID, engine.NewMessage{Body: "Please call us tonight", Urgent: true})
	if err != nil {
		t.Fatal(err)
	}
	normal, err := w.Eng.PostMessage(ctx, w.Clinician, th.ID, engine.NewMessage{Body: "Lab results are in"})
	if err != nil {
		t.Fatal(err)
	}
	w.Clock.Set(w.Clock.Now().Add(30 * time.Second))
	for _, m := range []engine.PostedMessage{urgent, normal} {
		if users, err := w.Eng.PushMessage(ctx, m.ID); err != nil || len(users) != 1 || users[0] != pat.UserID {
			t.Fatalf("push = %v, %v; want the patient alone", users, err)
		}
	}
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE message_id = $1 AND type = 'care_team_message'
		AND urgency = 'high' AND held_until IS NULL`, urgent.ID); n != 1 {
		t.Errorf("urgent message: %d immediate high notifications, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job j JOIN notifications n ON n.id = (j.args->>'notification_id')::uuid
		WHERE j.kind = 'notify.deliver' AND n.message_id = $1`, urgent.ID); n != 1 {
		t.Errorf("urgent message: %d delivery jobs, want 1", n)
	}
	wantEnd := time.Date(2026, 6, 11, 7, 0, 0, 0, chi)
	if n := w.Count(t, `SELECT count(*) FROM notifications WHERE message_id = $1 AND held_until = $2`, normal.ID, wantEnd); n != 1 {
		t.Errorf("ordinary message: %d notifications held until 07:00, want 1", n)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'notify.catchup' AND args->>'user_id' = $1`, pat.UserID.String()); n != 1 {
		t.Errorf("%d catch-up jobs for the patient, want 1", n)
	}
}

// TestMessagePushEndToEnd runs the workers: an unread message reaches the
// clinician's browser exactly once after a short hold, with generic words
// and ids only; no push payload, log line or error carries the text.
func TestMessagePushEndToEnd(t *testing.T) {
	t.Parallel()
	logs := &enginetest.SyncBuffer{}
	w := pushtest.New(t, pushtest.Opts{RunWorkers: true, Tune: func(c *engine.Config) {
		c.MessagePushHold = 300 * time.Millisecond
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	ctx := enginetest.WaitCtx(t)
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, w.Eng, pat)
	const secret = "my husband found me confused on the kitchen floor"
	m, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: secret})
	if err != nil {
		t.Fatal(err)
	}
	got, err := w.Push.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got[0].Payload), m.ID.String()) || !strings.Contains(string(got[0].Payload), "New message") {
		t.Errorf("push payload %s: want the message id and generic words", got[0].Payload)
	}
	enginetest.WaitFor(t, func() bool { return len(w.FCM.Received()) >= 1 && len(w.APNs.Received()) >= 1 })
	time.Sleep(200 * time.Millisecond) // would a second push come?
	if n := len(w.Push.Received()); n != 1 {
		t.Errorf("%d Web Push deliveries, want exactly 1", n)
	}
	// A tampered body: the reader gets a clear error, and the text appears
	// nowhere.
	if _, err := w.Pool.Exec(ctx, `UPDATE messages SET body = set_byte(body, 20, get_byte(body, 20) # 1) WHERE id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	page, err := w.Eng.ListMessages(ctx, w.Clinician, th.ID, engine.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, r := range w.Push.Received() {
		texts = append(texts, string(r.Payload))
	}
	for _, r := range w.FCM.Received() {
		texts = append(texts, string(r.Raw))
	}
	for _, r := range w.APNs.Received() {
		texts = append(texts, string(r.Payload))
	}
	texts = append(texts, logs.String(), page.Items[0].Error)
	for _, s := range texts {
		if strings.Contains(s, secret) || strings.Contains(s, "kitchen") {
			t.Errorf("message text leaked: %.300s", s)
		}
	}
	if page.Items[0].Body != "" || page.Items[0].Error == "" {
		t.Errorf("tampered message = %+v, want an error and no body", page.Items[0])
	}
}

// TestTamperedCiphertextsNeverOpen: a changed ciphertext, or one copied from
// another message (same key), does not open: the reader gets a clear error
// instead of a body, never garbage; a symptom note likewise.
func TestTamperedCiphertextsNeverOpen(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, w.Eng, pat)
	var ids []uuid.UUID
	for _, b := range []string{"first message", "second message", "third message"} {
		m, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: b})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Swap the first two bodies; flip one bit of the third.
	if _, err := w.Pool.Exec(ctx, `UPDATE messages m SET body = o.body FROM messages o
		WHERE (m.id, o.id) IN (($1, $2), ($2, $1))`, ids[0], ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Pool.Exec(ctx, `UPDATE messages SET body = set_byte(body, 15, get_byte(body, 15) # 128) WHERE id = $1`, ids[2]); err != nil {
		t.Fatal(err)
	}
	page, err := w.Eng.ListMessages(ctx, w.Clinician, th.ID, engine.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Items {
		if m.Body != "" || !strings.Contains(m.Error, "does not decrypt") {
			t.Errorf("message %d = body %q, error %q; want no body and a clear error", m.Seq, m.Body, m.Error)
		}
	}
	// A symptom note moved to another report does not open either.
	var reports []uuid.UUID
	for _, note := range []string{"worse at night", "after the new pills"} {
		res, err := w.Eng.ReportSymptoms(ctx, pat, engine.NewSymptomReport{PatientID: w.Patient.ID, Note: note,
			Symptoms: []rpm.Symptom{{Code: "headache", Severity: 3}}})
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, res.ID)
	}
	if _, err := w.Pool.Exec(ctx, `UPDATE symptom_reports SET note_sealed = (SELECT note_sealed FROM symptom_reports WHERE id = $2)
		WHERE id = $1`, reports[0], reports[1]); err != nil {
		t.Fatal(err)
	}
	_, _, err = w.Eng.ListSymptomReports(ctx, w.Clinician, engine.SymptomReportFilter{PatientID: w.Patient.ID})
	if err == nil || !strings.Contains(err.Error(), "does not decrypt") || strings.Contains(err.Error(), "pills") {
		t.Errorf("listing a moved note = %v, want a clear error without the note", err)
	}
}

// TestKeyRotation: a new key in front of the old one reads everything and
// seals new messages; tend keys rotate re-seals the old server-sealed ones
// (a team's channel) in batches, and an interrupted run resumes; a patient's
// records stay sealed under their data key, which is re-wrapped; then the new
// key alone opens everything.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	k1, k2 := enginetest.NewKey(t, "k1"), enginetest.NewKey(t, "k2")
	old := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, k1)})
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, old, pat)
	team := teamThread(t, old, w.Clinician)
	for i := range 5 {
		if _, err := old.PostMessage(ctx, w.Clinician, team.ID, engine.NewMessage{Body: strings.Repeat("x", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "my own"}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ReportSymptoms(ctx, pat, engine.NewSymptomReport{PatientID: w.Patient.ID, Note: "note one",
		Symptoms: []rpm.Symptom{{Code: "headache", Severity: 3}}}); err != nil {
		t.Fatal(err)
	}
	if n := w.Count(t, `SELECT count(*) FROM messages WHERE key_id = $1`, "p:"+w.Patient.ID.String()); n != 2 {
		t.Fatalf("%d messages of the patient's thread under their data key, want 2", n)
	}
	both := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, k2+","+k1)})
	if st, err := both.Sealed(ctx); err != nil || !st.Exist || st.Stale != 5+1 { // 5 team messages, the patient's key
		t.Fatalf("sealed = %+v, %v; want 6 records under the old key", st, err)
	}
	readAll := func(eng *engine.Engine, id uuid.UUID) int {
		t.Helper()
		page, err := eng.ListMessages(ctx, w.Clinician, id, engine.MessageFilter{})
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, m := range page.Items {
			if m.Error == "" {
				ok++
			}
		}
		return ok
	}
	if n := readAll(both, team.ID); n != 5 {
		t.Fatalf("with both keys, %d of 5 messages open", n)
	}
	// Interrupted after the first batch of 2.
	stop := errors.New("interrupted")
	done, err := both.RotateKeys(ctx, 2, func(r engine.Rotated) error { return stop })
	if !errors.Is(err, stop) || done.Messages != 2 {
		t.Fatalf("interrupted rotation = %+v, %v", done, err)
	}
	if st, _ := both.Sealed(ctx); st.Stale != 4 {
		t.Fatalf("after one batch, %d records stale, want 4", st.Stale)
	}
	if n := readAll(old, team.ID); n != 3 { // the old key alone no longer opens the two re-sealed
		t.Fatalf("old key alone opens %d messages mid-rotation, want 3", n)
	}
	done, err = both.RotateKeys(ctx, 2, nil)
	if err != nil || done.Messages != 3 || done.Notes != 0 || done.PatientKeys != 1 {
		t.Fatalf("resumed rotation = %+v, %v; want the 3 remaining messages and the patient's key", done, err)
	}
	newOnly := w.NewEngineWith(t, engine.Config{Keys: enginetest.Keyring(t, k2)})
	if n := readAll(newOnly, team.ID); n != 5 {
		t.Fatalf("after rotation the new key alone opens %d of 5 team messages", n)
	}
	if n := readAll(newOnly, th.ID); n != 2 {
		t.Fatalf("after rotation the new key alone opens %d of the patient's 2 messages", n)
	}
	reports, _, err := newOnly.ListSymptomReports(ctx, w.Clinician, engine.SymptomReportFilter{PatientID: w.Patient.ID})
	if err != nil || len(reports) != 1 || reports[0].Note == nil || *reports[0].Note != "note one" {
		t.Fatalf("note after rotation = %+v, %v", reports, err)
	}
	if st, _ := newOnly.Sealed(ctx); st.Stale != 0 {
		t.Fatalf("%d records still stale", st.Stale)
	}
}

// teamThread is the staff channel of the clinician's care team.
func teamThread(t *testing.T, eng *engine.Engine, a engine.Actor) engine.Thread {
	t.Helper()
	threads, _, err := eng.ListThreads(context.Background(), a, engine.ThreadFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		if th.Kind == "team" {
			return th
		}
	}
	t.Fatalf("no team thread in %+v", threads)
	return engine.Thread{}
}
