package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// e2eeDevice is a client device in a test: its keys and registered id.
type e2eeDevice struct {
	actor engine.Actor
	keys  *e2ee.DeviceKeys
	id    string
	seq   uint64
}

func registerDevice(t *testing.T, eng *engine.Engine, a engine.Actor) *e2eeDevice {
	t.Helper()
	k, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	d, err := eng.RegisterE2EEDevice(context.Background(), a, engine.NewE2EEDevice{Label: "test",
		HPKEPublicKey: k.HPKEPublic, SigningPublicKey: k.SigningPublic()})
	if err != nil {
		t.Fatal(err)
	}
	return &e2eeDevice{actor: a, keys: k, id: d.ID.String()}
}

// sealFor seals text from d to the thread's keys as the server lists them.
func (d *e2eeDevice) sealFor(t *testing.T, keys engine.ThreadKeys, text string) *e2ee.Envelope {
	t.Helper()
	d.seq++
	p := e2ee.SealParams{ThreadID: keys.ThreadID.String(), SenderDevice: d.id, SenderSeq: d.seq, SigningKey: d.keys.Signing,
		Record: e2ee.Recipient{ID: keys.RecordKey.ID, PublicKey: keys.RecordKey.PublicKey}}
	for _, dev := range keys.Devices {
		p.Recipients = append(p.Recipients, e2ee.Recipient{ID: dev.ID.String(), PublicKey: dev.HPKEPublicKey})
	}
	env, err := e2ee.Seal(p, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (d *e2eeDevice) open(t *testing.T, m engine.Message, from *e2eeDevice) (string, error) {
	t.Helper()
	var env e2ee.Envelope
	if err := json.Unmarshal(m.Envelope, &env); err != nil {
		t.Fatal(err)
	}
	pt, err := e2ee.Open(&env, e2ee.OpenParams{ThreadID: m.ThreadID.String(), RecipientID: d.id, PrivateKey: d.keys.HPKEPrivate,
		SenderKey: from.keys.SigningPublic()})
	return string(pt), err
}

// e2eeWorld is a World whose engine has a record key, with the patient's
// thread and a device each for the patient and the clinician.
type e2eeWorld struct {
	*enginetest.World
	eng      *engine.Engine
	logs     *enginetest.SyncBuffer // the engine's log lines
	record   *e2ee.DeviceKeys
	thread   uuid.UUID
	pat, doc *e2eeDevice
}

func newE2EEWorld(t *testing.T) *e2eeWorld {
	t.Helper()
	w := enginetest.NewWorld(t, false)
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	logs := &enginetest.SyncBuffer{}
	eng := w.NewEngineWith(t, engine.Config{RecordPublicKey: record.HPKEPublic, RunWorkers: true, MessagePushHold: -1,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, eng, pat)
	return &e2eeWorld{World: w, eng: eng, logs: logs, record: record, thread: th.ID,
		doc: registerDevice(t, eng, w.Clinician), pat: registerDevice(t, eng, pat)}
}

func (w *e2eeWorld) keys(t *testing.T) engine.ThreadKeys {
	t.Helper()
	k, err := w.eng.ThreadKeys(context.Background(), w.Clinician, w.thread)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestEncryptedThread: a thread turned encrypted takes envelopes only; the
// server checks and stores them, each participant device and the record key
// open them, and no plaintext reaches the database.
func TestEncryptedThread(t *testing.T) {
	t.Parallel()
	w := newE2EEWorld(t)
	ctx := context.Background()
	if _, err := w.Eng.EncryptThread(ctx, w.Clinician, w.thread); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("encrypting without a record key: %v, want conflict", err)
	}
	th, err := w.eng.EncryptThread(ctx, w.Clinician, w.thread)
	if err != nil || !th.Encrypted {
		t.Fatalf("encrypt: %+v, %v", th, err)
	}
	if _, err := w.eng.PostMessage(ctx, w.pat.actor, w.thread, engine.NewMessage{Body: "plain"}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("plain post to an encrypted thread: %v, want conflict", err)
	}
	const secret = "my chest hurts when I climb stairs"
	env := w.pat.sealFor(t, w.keys(t), secret)
	posted, err := w.eng.PostEnvelope(ctx, w.pat.actor, w.thread, engine.NewEnvelope{Envelope: env})
	if err != nil || !posted.Created || posted.Kind != "encrypted" {
		t.Fatalf("post envelope: %+v, %v", posted, err)
	}
	again, err := w.eng.PostEnvelope(ctx, w.pat.actor, w.thread, engine.NewEnvelope{Envelope: env})
	if err != nil || again.Created || again.ID != posted.ID {
		t.Fatalf("same envelope again: %+v, %v; want the message already posted", again, err)
	}
	page, err := w.eng.ListMessages(ctx, w.Clinician, w.thread, engine.MessageFilter{})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("list: %+v, %v", page, err)
	}
	if got, err := w.doc.open(t, page.Items[0], w.pat); err != nil || got != secret {
		t.Fatalf("clinician opens %q, %v", got, err)
	}
	record := &e2eeDevice{keys: w.record, id: e2ee.RecordKeyID(w.record.HPKEPublic)}
	if got, err := record.open(t, page.Items[0], w.pat); err != nil || got != secret {
		t.Fatalf("record key opens %q, %v", got, err)
	}
	// A replay under a new ciphertext with a used sequence is refused.
	w.pat.seq--
	if _, err := w.eng.PostEnvelope(ctx, w.pat.actor, w.thread,
		engine.NewEnvelope{Envelope: w.pat.sealFor(t, w.keys(t), "again")}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("used sender_seq: %v, want conflict", err)
	}
	// The audit entry names the ciphertext's hash, never the text.
	var detail string
	if err := w.Pool.QueryRow(ctx, `SELECT detail::text FROM audit_entries WHERE action = 'message.create'
		ORDER BY id DESC LIMIT 1`).Scan(&detail); err != nil || !strings.Contains(detail, "ciphertext_sha256") {
		t.Fatalf("audit detail %s, %v", detail, err)
	}
	// The clinician's push names the message, never its text; no log line
	// holds the text either.
	pushes, err := w.Push.Wait(enginetest.WaitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if p := string(pushes[0].Payload); !strings.Contains(p, posted.ID.String()) || strings.Contains(p, "chest") {
		t.Errorf("push payload %s: want the message id and no text", p)
	}
	if logs := w.logs.String(); logs == "" || strings.Contains(logs, "chest") {
		t.Errorf("logs are empty or hold the text: %.500s", logs)
	}
	if hits := scanDatabase(t, w.World, secret); len(hits) > 0 {
		t.Errorf("the plaintext is stored in %v", hits)
	}
	if hits := scanDatabase(t, w.World, "Cardiology RPM"); len(hits) == 0 {
		t.Error("the scan finds nothing, not even the team's name")
	}
	if strings.Contains(string(page.Items[0].Envelope), "chest") {
		t.Error("the stored envelope holds the plaintext")
	}
}

// scanDatabase lists the columns where text appears in any text, JSON or binary column
// of the database: what a compromised server holds at rest. (Message bodies
// are sealed at rest too; opened, they are envelopes, which the callers
// check.)
func scanDatabase(t *testing.T, w *enginetest.World, text string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := w.Pool.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', 'bytea', 'character varying')`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column, kind string }
	var cols []col
	var hits []string
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.column, &c.kind); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil || len(cols) < 20 {
		t.Fatalf("columns: %d, %v", len(cols), err)
	}
	for _, c := range cols {
		q := `SELECT count(*) FROM "` + c.table + `" WHERE strpos("` + c.column + `"::text, $1) > 0`
		arg := any(text)
		if c.kind == "bytea" {
			q = `SELECT count(*) FROM "` + c.table + `" WHERE position($1::bytea in "` + c.column + `") > 0`
			arg = []byte(text)
		}
		var n int
		if err := w.Pool.QueryRow(ctx, q, arg).Scan(&n); err != nil {
			t.Fatalf("%s.%s: %v", c.table, c.column, err)
		}
		if n > 0 {
			hits = append(hits, c.table+"."+c.column)
		}
	}
	return hits
}

// TestE2EEMembership: an envelope must be wrapped to exactly the thread's
// current devices. A new member's device must be added (409 with the list
// until it is); a revoked device is neither a sender nor a recipient any
// more, and a member removed from the team gets nothing new.
func TestE2EEMembership(t *testing.T) {
	t.Parallel()
	w := newE2EEWorld(t)
	ctx := context.Background()
	if _, err := w.eng.EncryptThread(ctx, w.Clinician, w.thread); err != nil {
		t.Fatal(err)
	}
	before := w.keys(t)
	if len(before.Devices) != 2 {
		t.Fatalf("devices = %d, want the patient's and the clinician's", len(before.Devices))
	}
	// A second clinician joins the team with a device.
	nurse := enginetest.AddClinician(t, w.World, "Nurse Kim")
	nurseDev := registerDevice(t, w.eng, nurse)
	if _, err := w.eng.UpdateCareTeam(ctx, w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		MemberIDs: []uuid.UUID{w.Clinician.UserID, nurse.UserID}}); err != nil {
		t.Fatal(err)
	}
	_, err := w.eng.PostEnvelope(ctx, w.doc.actor, w.thread, engine.NewEnvelope{Envelope: w.doc.sealFor(t, before, "old list")})
	var re *engine.RecipientsError
	if !errors.As(err, &re) || !errors.Is(err, engine.ErrConflict) || len(re.Keys.Devices) != 3 {
		t.Fatalf("envelope missing the new member's device: %v, want a 409 with 3 devices", err)
	}
	posted, err := w.eng.PostEnvelope(ctx, w.doc.actor, w.thread, engine.NewEnvelope{Envelope: w.doc.sealFor(t, re.Keys, "welcome")})
	if err != nil {
		t.Fatal(err)
	}
	page, err := w.eng.ListMessages(ctx, nurse, w.thread, engine.MessageFilter{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != posted.ID {
		t.Fatalf("nurse's page: %+v, %v", page.Items, err)
	}
	if got, err := nurseDev.open(t, page.Items[0], w.doc); err != nil || got != "welcome" {
		t.Fatalf("nurse opens %q, %v", got, err)
	}
	// The nurse revokes the device: it can no longer send, an envelope
	// still wrapped to it is refused, and new messages are not for it.
	if _, err := w.eng.RevokeE2EEDevice(ctx, nurse, uuid.MustParse(nurseDev.id)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.PostEnvelope(ctx, nurse, w.thread, engine.NewEnvelope{Envelope: nurseDev.sealFor(t, re.Keys, "x")}); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("revoked device sends: %v, want conflict", err)
	}
	if _, err := w.eng.PostEnvelope(ctx, w.doc.actor, w.thread, engine.NewEnvelope{Envelope: w.doc.sealFor(t, re.Keys, "x")}); !errors.As(err, &re) {
		t.Fatalf("envelope wrapped to a revoked device: %v, want a RecipientsError", err)
	}
	after := w.keys(t)
	posted, err = w.eng.PostEnvelope(ctx, w.doc.actor, w.thread, engine.NewEnvelope{Envelope: w.doc.sealFor(t, after, "not for the nurse")})
	if err != nil {
		t.Fatal(err)
	}
	page, err = w.eng.ListMessages(ctx, nurse, w.thread, engine.MessageFilter{})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("nurse's page: %v", err)
	}
	if _, err := nurseDev.open(t, page.Items[1], w.doc); !errors.Is(err, e2ee.ErrNotForMe) {
		t.Fatalf("revoked device opens a new message: %v", err)
	}
	// The nurse leaves the team: a new device of theirs is not a recipient.
	if _, err := w.eng.UpdateCareTeam(ctx, w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{
		MemberIDs: []uuid.UUID{w.Clinician.UserID}}); err != nil {
		t.Fatal(err)
	}
	registerDevice(t, w.eng, nurse)
	for _, d := range w.keys(t).Devices {
		if d.UserID == nurse.UserID {
			t.Fatal("a removed member's device is still a recipient")
		}
	}
	// Key registrations and revocations are in the audit trail with their fingerprints.
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action IN ('e2ee_device.register', 'e2ee_device.revoke')
		AND detail ? 'fingerprint'`); n != 5 {
		t.Errorf("key audit entries = %d, want 5 (4 registrations, 1 revocation)", n)
	}
}

// TestEnvelopesConcurrently: envelopes posted at once share transactions
// and round trips (group commit) and each is answered as if alone: every
// valid one is stored once, with its own sequence number, its audit entry
// (with the ciphertext's SHA-256) and its push job; the same envelope twice
// is one message; one wrapped to stale keys is refused with the current
// keys, and ones from outside the thread, from a revoked device or with a
// replayed sender sequence are refused, each writing nothing.
func TestEnvelopesConcurrently(t *testing.T) {
	t.Parallel()
	w := newE2EEWorld(t)
	ctx := context.Background()
	if _, err := w.eng.EncryptThread(ctx, w.Clinician, w.thread); err != nil {
		t.Fatal(err)
	}
	// A device's own posts are sequential (its sender sequence must grow):
	// here each of 20 devices posts once.
	const n = 20
	devices := make([]*e2eeDevice, n)
	for i := range devices {
		devices[i] = registerDevice(t, w.eng, []engine.Actor{w.pat.actor, w.doc.actor}[i%2])
	}
	outsider := registerDevice(t, w.eng, enginetest.AddClinician(t, w.World, "Dr Elsewhere"))
	revoked := registerDevice(t, w.eng, w.doc.actor)
	if _, err := w.eng.RevokeE2EEDevice(ctx, w.doc.actor, uuid.MustParse(revoked.id)); err != nil {
		t.Fatal(err)
	}
	keys := w.keys(t)
	// The doctor's first device posted before: its sender sequence 1 is used.
	if _, err := w.eng.PostEnvelope(ctx, w.doc.actor, w.thread, engine.NewEnvelope{Envelope: w.doc.sealFor(t, keys, "first")}); err != nil {
		t.Fatal(err)
	}
	w.doc.seq = 0
	stale := keys
	stale.Devices = stale.Devices[:1]
	envs := make([]*e2ee.Envelope, n)
	for i, d := range devices {
		k := keys
		if i == n-1 {
			k = stale
		}
		envs[i] = d.sealFor(t, k, fmt.Sprintf("message %d", i))
	}
	envs = append(envs, envs[0]) // the first again, at the same time
	senders := append(slices.Clone(devices), devices[0], outsider, revoked, w.doc)
	for _, d := range senders[n+1:] {
		envs = append(envs, d.sealFor(t, keys, "refused"))
	}
	results, errs := postAtOnce(w.eng, w.thread, senders, envs)
	var re *engine.RecipientsError
	if !errors.As(errs[n-1], &re) || len(re.Keys.Devices) != len(keys.Devices) {
		t.Errorf("stale keys: %v, want a 409 with the current keys", errs[n-1])
	}
	for i, want := range []error{engine.ErrNotFound, engine.ErrConflict, engine.ErrConflict} {
		if err := errs[n+1+i]; !errors.Is(err, want) {
			t.Errorf("refused post %d (outsider, revoked, replay): %v, want %v", i, err, want)
		}
	}
	seqs := map[int64]bool{1: true}
	for i := range n - 1 {
		if errs[i] != nil || results[i].Kind != "encrypted" {
			t.Fatalf("envelope %d: %+v, %v", i, results[i], errs[i])
		}
		seqs[results[i].Seq] = true
	}
	if errs[n] != nil || results[n].ID != results[0].ID {
		t.Errorf("the same envelope twice: %v and %v (%v)", results[0].ID, results[n].ID, errs[n])
	}
	checkStoredEnvelopes(t, w, n, seqs)
}

// postAtOnce posts envs[i] from senders[i] to thread, all at once.
func postAtOnce(eng *engine.Engine, thread uuid.UUID, senders []*e2eeDevice, envs []*e2ee.Envelope) ([]engine.PostedMessage, []error) {
	results := make([]engine.PostedMessage, len(envs))
	errs := make([]error, len(envs))
	var wg sync.WaitGroup
	for i, env := range envs {
		a := senders[i].actor
		wg.Go(func() {
			results[i], errs[i] = eng.PostEnvelope(context.Background(), a, thread, engine.NewEnvelope{Envelope: env})
		})
	}
	wg.Wait()
	return results, errs
}

// checkStoredEnvelopes checks that the thread holds n messages numbered 1 to
// n (seqs), each with its audit entry naming it and its ciphertext's
// SHA-256, and its push job, and nothing more.
func checkStoredEnvelopes(t *testing.T, w *e2eeWorld, n int, seqs map[int64]bool) {
	t.Helper()
	page, err := w.eng.ListMessages(context.Background(), w.Clinician, w.thread, engine.MessageFilter{Limit: 100})
	if err != nil || len(page.Items) != n || len(seqs) != n {
		t.Fatalf("stored %d messages with %d sequence numbers (%v), want %d", len(page.Items), len(seqs), err, n)
	}
	for i := range int64(n) {
		if !seqs[i+1] {
			t.Errorf("sequence numbers %v, want 1 to %d", seqs, n)
		}
	}
	if got := w.Count(t, `SELECT count(*) FROM messages m WHERE m.thread_id = $1 AND EXISTS (SELECT 1 FROM audit_entries a
		WHERE a.action = 'message.create' AND a.detail->'message_ids' ? m.id::text
			AND a.detail->>'ciphertext_sha256' = encode(m.ciphertext_sha256, 'hex'))`, w.thread); got != n {
		t.Errorf("%d messages with their audit entry and ciphertext hash, want %d", got, n)
	}
	if got := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'message.create' AND object_id = $1`, w.thread.String()); got != n {
		t.Errorf("%d message.create audit entries, want %d", got, n)
	}
	if got := w.Count(t, `SELECT count(*) FROM river_job j JOIN messages m ON m.id = (j.args->>'message_id')::uuid
		WHERE j.kind = 'message.push' AND m.thread_id = $1`, w.thread); got != n {
		t.Errorf("%d push jobs, want %d", got, n)
	}
}
