package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

// patientThread returns the patient's thread with their care team, as the
// patient's user sees it in the list.
func patientThread(t *testing.T, eng *engine.Engine, patient engine.Actor) engine.Thread {
	t.Helper()
	threads, _, err := eng.ListThreads(context.Background(), patient, engine.ThreadFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) != 1 || threads[0].Kind != "patient" {
		t.Fatalf("patient's threads = %+v, want their one patient thread", threads)
	}
	return threads[0]
}

// patientUser creates a patient user for w's patient.
func (w *world) patientUser(t *testing.T) engine.Actor {
	t.Helper()
	u, err := w.eng.CreateUser(context.Background(), w.admin, engine.NewUser{Name: "Sam Lee", Role: engine.RolePatient, PatientID: w.patient.ID})
	if err != nil {
		t.Fatal(err)
	}
	return engine.Actor{UserID: u.ID, Role: engine.RolePatient, PatientID: w.patient.ID, RequestID: "test"}
}

// TestPostAndListMessages: a patient's message reaches their team's
// clinician, unread until read; a clinician of another team cannot see the
// thread at all.
func TestPostAndListMessages(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	ctx := context.Background()
	pat := w.patientUser(t)
	th := patientThread(t, w.eng, pat)
	posted, err := w.eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "My ankles are swollen", ClientID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if !posted.Created || posted.Seq != 1 {
		t.Fatalf("posted = %+v", posted)
	}
	again, err := w.eng.PostMessage(ctx, pat, th.ID, engine.NewMessage{Body: "My ankles are swollen", ClientID: "c1"})
	if err != nil || again.Created || again.ID != posted.ID {
		t.Fatalf("retry = %+v, %v; want the same message", again, err)
	}
	threads, _, err := w.eng.ListThreads(ctx, w.clinician, engine.ThreadFilter{})
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
	page, err := w.eng.ListMessages(ctx, w.clinician, th.ID, engine.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Body != "My ankles are swollen" {
		t.Fatalf("messages = %+v", page.Items)
	}
	other, err := w.eng.CreateUser(ctx, w.admin, engine.NewUser{Name: "Dr Other", Role: engine.RoleClinician})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.CreateCareTeam(ctx, w.admin, engine.NewCareTeam{Name: "Other", MemberIDs: []uuid.UUID{other.ID}}); err != nil {
		t.Fatal(err)
	}
	stranger := engine.Actor{UserID: other.ID, Role: engine.RoleClinician}
	if _, err := w.eng.ListMessages(ctx, stranger, th.ID, engine.MessageFilter{}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("stranger's read = %v, want not found", err)
	}
	if _, err := w.eng.PostMessage(ctx, stranger, th.ID, engine.NewMessage{Body: "hi"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("stranger's post = %v, want not found", err)
	}
}
