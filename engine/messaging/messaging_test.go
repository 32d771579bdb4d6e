package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestPostAndListMessages: a patient's message reaches their team's
// clinician, unread until read; a clinician of another team cannot see the
// thread at all.
func TestPostAndListMessages(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, w.Eng, pat)
	posted, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "My ankles are swollen", ClientID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if !posted.Created || posted.Seq != 1 {
		t.Fatalf("posted = %+v", posted)
	}
	again, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "My ankles are swollen", ClientID: "c1"})
	if err != nil || again.Created || again.ID != posted.ID {
		t.Fatalf("retry = %+v, %v; want the same message", again, err)
	}
	threads, _, err := w.Eng.ListThreads(ctx, w.Clinician, engine.ThreadFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var found *engine.Thread
	for i := range threads {
		if threads[i].ID == th.ID {
			found = &threads[i]
		}
	}
	if found == nil || found.UnreadCount != 1 {
		t.Fatalf("clinician's threads = %+v, want the patient thread with 1 unread", threads)
	}
	page, err := w.Eng.ListMessages(ctx, w.Clinician, th.ID, engine.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Body != "My ankles are swollen" {
		t.Fatalf("messages = %+v", page.Items)
	}
	// Posting and reading are audited with the patient, the thread and the
	// message ids (never the text).
	for _, action := range []string{"message.create", "message.list"} {
		var patient, object string
		var detail []byte
		if err := w.Pool.QueryRow(ctx, `SELECT patient_id::text, object_id, detail::text FROM audit_entries WHERE action = $1
			ORDER BY id DESC LIMIT 1`, action).Scan(&patient, &object, &detail); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		if patient != w.Patient.ID.String() || object != th.ID.String() || !strings.Contains(string(detail), posted.ID.String()) ||
			strings.Contains(string(detail), "ankles") {
			t.Errorf("%s audit entry: patient %s, thread %s, detail %s", action, patient, object, detail)
		}
	}
	other, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Eng.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Other", MemberIDs: []uuid.UUID{other.ID}}); err != nil {
		t.Fatal(err)
	}
	stranger := engine.Actor{UserID: other.ID, Role: engine.RoleClinician}
	if _, err := w.Eng.ListMessages(ctx, stranger, th.ID, engine.MessageFilter{}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("stranger's read = %v, want not found", err)
	}
	if _, err := w.Eng.PostMessage(ctx, stranger, th.ID, engine.NewMessage{Body: "hi"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("stranger's post = %v, want not found", err)
	}
}

// TestConcurrentPostsShareTransactions floods one thread with concurrent
// posts — some retried with the same client id, some by a stranger — as
// group commit packs them into shared transactions: every post gets its own
// answer, the thread's sequence numbers run 1..n without gaps, a retried
// client id stores one message, and the stranger's posts fail alone.
func TestConcurrentPostsShareTransactions(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, w.Eng, pat)
	other, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	stranger := engine.Actor{UserID: other.ID, Role: engine.RoleClinician}
	const n = 60
	type result struct {
		m   engine.PostedMessage
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a, in := pat, engine.NewMessage{Body: fmt.Sprintf("message %d", i)}
			switch {
			case i%10 == 3:
				a = stranger
			case i%10 == 7:
				in = engine.NewMessage{Body: "retried", ClientID: "same"} // six posts, one message
			case i%2 == 0:
				a = w.Clinician
			}
			m, err := w.Eng.PostMessage(ctx, a, th.ID, in)
			results[i] = result{m, err}
		})
	}
	wg.Wait()
	var retried uuid.UUID
	created := 0
	for i, r := range results {
		switch {
		case i%10 == 3:
			if !errors.Is(r.err, engine.ErrNotFound) {
				t.Errorf("stranger's post %d: %v, want not found", i, r.err)
			}
			continue
		case r.err != nil:
			t.Errorf("post %d: %v", i, r.err)
			continue
		case i%10 == 7:
			if retried == uuid.Nil {
				retried = r.m.ID
			}
			if r.m.ID != retried || r.m.Body != "retried" {
				t.Errorf("retry %d returned %s %q, want %s", i, r.m.ID, r.m.Body, retried)
			}
		}
		if r.m.Created {
			created++
		}
	}
	want := n - n/10 - n/10 + 1 // minus the stranger's, the retries but one
	if created != want {
		t.Errorf("%d posts created a message, want %d", created, want)
	}
	var count, maxSeq, lastSeq int
	if err := w.Pool.QueryRow(ctx, `SELECT count(*), max(m.seq), max(t.last_seq) FROM messages m JOIN threads t ON t.id = m.thread_id
		WHERE m.thread_id = $1`, th.ID).Scan(&count, &maxSeq, &lastSeq); err != nil {
		t.Fatal(err)
	}
	if count != want || maxSeq != want || lastSeq != want {
		t.Errorf("%d messages, max seq %d, thread's last seq %d; want %d of each", count, maxSeq, lastSeq, want)
	}
	if n := w.Count(t, `SELECT count(*) FROM audit_entries WHERE action = 'message.create' AND object_id = $1`, th.ID.String()); n != want {
		t.Errorf("%d message.create audit entries, want %d", n, want)
	}
	if n := w.Count(t, `SELECT count(*) FROM river_job WHERE kind = 'message.push'`); n != want {
		t.Errorf("%d push jobs, want %d", n, want)
	}
	if n := w.Count(t, `SELECT count(*) FROM events WHERE type = 'message.created' AND thread_id = $1`, th.ID); n != want {
		t.Errorf("%d message.created events, want %d", n, want)
	}
}
