package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// staffThread returns the staff-only thread about w's patient.
func staffThread(t *testing.T, w *enginetest.World) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := w.Pool.QueryRow(context.Background(), `SELECT id FROM threads WHERE patient_id = $1 AND kind = 'staff_patient'`,
		w.Patient.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// collect reads a subscription's thread events for d (presence events
// are skipped: api/presence_test.go tests them).
func collect(sub *engine.StreamSubscription, d time.Duration) []*engine.StreamMessage {
	var out []*engine.StreamMessage
	timeout := time.After(d)
	for {
		select {
		case m := <-sub.Events():
			if m.Type != "presence" { // presence has its own tests (api/presence_test.go)
				out = append(out, m)
			}
		case <-timeout:
			return out
		}
	}
}

// TestMessageEventsReachParticipantsOnly: message.created, message.read and
// typing reach the thread's participants, in every process; a staff-only
// thread's events never reach the patient; a clinician of another team and
// an admin outside the team receive nothing; the typist is not told of
// their own typing; no event carries message text; a replay obeys the same
// rule.
func TestMessageEventsReachParticipantsOnly(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	keys := enginetest.Keys(t)
	eng1 := w.NewEngineWith(t, engine.Config{Keys: keys})
	eng2 := w.NewEngineWith(t, engine.Config{Keys: keys}) // another process
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, eng1, pat)
	staff := staffThread(t, w)
	other, err := eng1.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng1.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Other", MemberIDs: []uuid.UUID{other.ID}}); err != nil {
		t.Fatal(err)
	}
	adm, err := eng1.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Root", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func(eng *engine.Engine, a engine.Actor) *engine.StreamSubscription {
		t.Helper()
		sub, err := eng.Subscribe(ctx, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Close)
		return sub
	}
	patSub := subscribe(eng1, pat)
	docSub := subscribe(eng2, w.Clinician)
	strangerSub := subscribe(eng1, engine.Actor{UserID: other.ID, Role: engine.RoleClinician})
	adminSub := subscribe(eng2, engine.Actor{UserID: adm.ID, Role: engine.RoleAdmin})

	const text = "the rash is spreading"
	m1, err := eng1.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: text})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng2.PostMessage(ctx, w.Clinician, staff, engine.NewMessage{Body: "staff only: " + text}); err != nil {
		t.Fatal(err)
	}
	if sent, err := eng1.Typing(ctx, pat, th.ID); err != nil || !sent {
		t.Fatalf("typing = %v, %v", sent, err)
	}
	if sent, err := eng1.Typing(ctx, pat, th.ID); err != nil || sent {
		t.Fatalf("a second typing within the interval = %v, %v; want it coalesced", sent, err)
	}
	if _, err := eng2.MarkRead(ctx, w.Clinician, th.ID, m1.ID); err != nil {
		t.Fatal(err)
	}

	type seen struct{ typ, thread string }
	summarise := func(ms []*engine.StreamMessage) []seen {
		var out []seen
		for _, m := range ms {
			if strings.Contains(string(m.Data), "rash") {
				t.Errorf("event %s carries message text: %s", m.Type, m.Data)
			}
			var p struct {
				ThreadID string `json:"thread_id"`
			}
			_ = json.Unmarshal(m.Data, &p)
			out = append(out, seen{m.Type, p.ThreadID})
		}
		return out
	}
	doc := summarise(collect(docSub, 1500*time.Millisecond))
	want := []seen{{"message.created", th.ID.String()}, {"message.created", staff.String()}, {"typing", th.ID.String()},
		{"message.read", th.ID.String()}}
	if len(doc) != len(want) {
		t.Fatalf("clinician (another process) got %v, want %v", doc, want)
	}
	for _, x := range want {
		found := false
		for _, y := range doc {
			found = found || x == y
		}
		if !found {
			t.Errorf("clinician missed %v (got %v)", x, doc)
		}
	}
	patGot := summarise(collect(patSub, 200*time.Millisecond))
	wantPat := []seen{{"message.created", th.ID.String()}, {"message.read", th.ID.String()}}
	if len(patGot) != 2 || patGot[0] != wantPat[0] || patGot[1] != wantPat[1] {
		t.Errorf("patient got %v, want %v (never the staff thread, never their own typing)", patGot, wantPat)
	}
	if got := collect(strangerSub, 100*time.Millisecond); len(got) != 0 {
		t.Errorf("another team's clinician got %d events", len(got))
	}
	if got := collect(adminSub, 100*time.Millisecond); len(got) != 0 {
		t.Errorf("an admin outside the team got %d events", len(got))
	}
	// Replay obeys the same rule.
	zero := int64(0)
	replay, err := eng2.Subscribe(ctx, pat, &zero)
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	for _, m := range replay.Backlog() {
		if strings.Contains(string(m.Data), staff.String()) {
			t.Errorf("the patient's replay holds a staff-only event: %s %s", m.Type, m.Data)
		}
	}
	if len(replay.Backlog()) != 2 {
		t.Errorf("patient's replay has %d events, want 2", len(replay.Backlog()))
	}
}

// TestTeamMembershipDecidesThreadAccess: a clinician removed from the team
// loses the team's threads at once; one added sees their history.
func TestTeamMembershipDecidesThreadAccess(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	pat := w.PatientUser(t)
	th := enginetest.PatientThread(t, w.Eng, pat)
	if _, err := w.Eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "before the change"}); err != nil {
		t.Fatal(err)
	}
	nurse, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: "Nurse Joy", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	newcomer := engine.Actor{UserID: nurse.ID, Role: engine.RoleClinician}
	if _, err := w.Eng.ListMessages(ctx, newcomer, th.ID, engine.MessageFilter{}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("before joining: %v, want not found", err)
	}
	if _, err := w.Eng.UpdateCareTeam(ctx, w.Admin, w.Patient.CareTeamID, engine.CareTeamUpdate{Name: "Cardiology RPM",
		MemberIDs: []uuid.UUID{nurse.ID}}); err != nil {
		t.Fatal(err)
	}
	page, err := w.Eng.ListMessages(ctx, newcomer, th.ID, engine.MessageFilter{})
	if err != nil || len(page.Items) != 1 || page.Items[0].Body != "before the change" {
		t.Fatalf("newcomer's view = %+v, %v; want the history", page.Items, err)
	}
	if _, err := w.Eng.ListMessages(ctx, w.Clinician, th.ID, engine.MessageFilter{}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("removed clinician's read: %v, want not found", err)
	}
	if _, err := w.Eng.PostMessage(ctx, w.Clinician, th.ID, engine.NewMessage{Body: "still here?"}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("removed clinician's post: %v, want not found", err)
	}
	threads, _, err := w.Eng.ListThreads(ctx, w.Clinician, engine.ThreadFilter{})
	if err != nil || len(threads) != 0 {
		t.Errorf("removed clinician's threads = %+v, %v; want none", threads, err)
	}
}
