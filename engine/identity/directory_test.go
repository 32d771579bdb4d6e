package identity_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestDirectory: staff find staff by a part of a name, a role, a team role
// or a team's name, with their teams; disabled users, patients and devices
// are never listed; patients and devices cannot search; pages follow the
// cursor; a bad cursor or an over-long q is a field error.
func TestDirectory(t *testing.T) {
	t.Parallel()
	w := enginetest.NewWorld(t, false)
	ctx := context.Background()
	user := func(name string, role engine.Role) uuid.UUID {
		u, err := w.Eng.CreateUser(ctx, w.Admin, engine.NewUser{Name: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	lead, sched, gone := user("Dr Bea Lind", engine.RoleClinician), user("Sol Park", engine.RoleScheduler), user("Dr Gone", engine.RoleClinician)
	if _, err := w.Eng.CreateCareTeam(ctx, w.Admin, engine.NewCareTeam{Name: "Pulmonary night", Members: []engine.TeamMember{
		{UserID: lead, Role: "lead"}, {UserID: sched, Role: "scheduler"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Eng.SetUserDisabled(ctx, w.Admin, gone, true); err != nil {
		t.Fatal(err)
	}
	names := func(q string) []string {
		t.Helper()
		items, _, err := w.Eng.Directory(ctx, w.Clinician, engine.DirectoryFilter{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range items {
			out = append(out, e.Name)
		}
		return out
	}
	for q, want := range map[string][]string{
		"":          {"Dr Ada Osei", "Dr Bea Lind", "Sol Park"},
		"bea":       {"Dr Bea Lind"},
		"scheduler": {"Sol Park"},
		"lead":      {"Dr Bea Lind"},
		"pulmonary": {"Dr Bea Lind", "Sol Park"},
		"cardio":    {"Dr Ada Osei"},
		"Sam Lee":   nil, // a patient
		"cuff":      nil, // a device
		"Gone":      nil, // disabled
		"%":         nil, // a wildcard is a character
	} {
		if got := names(q); !slices.Equal(got, want) {
			t.Errorf("q=%q: %v, want %v", q, got, want)
		}
	}
	items, _, err := w.Eng.Directory(ctx, w.Clinician, engine.DirectoryFilter{Query: "Bea"})
	if err != nil || len(items) != 1 || len(items[0].Teams) != 1 || items[0].Teams[0].Name != "Pulmonary night" ||
		items[0].Teams[0].Role != "lead" || items[0].Role != engine.RoleClinician {
		t.Errorf("Bea: %+v, %v", items, err)
	}
	first, next, err := w.Eng.Directory(ctx, w.Clinician, engine.DirectoryFilter{Limit: 2})
	if err != nil || len(first) != 2 || next == "" {
		t.Fatalf("first page %v %q %v", first, next, err)
	}
	rest, last, err := w.Eng.Directory(ctx, w.Clinician, engine.DirectoryFilter{Limit: 2, Cursor: next})
	if err != nil || len(rest) != 1 || rest[0].Name != "Sol Park" || last != "" {
		t.Errorf("second page %v %q %v", rest, last, err)
	}
	for _, who := range []engine.Actor{w.Device, w.PatientUser(t)} {
		if _, _, err := w.Eng.Directory(ctx, who, engine.DirectoryFilter{}); !errors.Is(err, engine.ErrForbidden) {
			t.Errorf("%s searched the directory: %v", who.Role, err)
		}
	}
	_, _, err = w.Eng.Directory(ctx, w.Clinician, engine.DirectoryFilter{Cursor: "nope"})
	enginetest.WantFields(t, err, "cursor")
	long := make([]byte, 201)
	for i := range long {
		long[i] = 'a'
	}
	_, _, err = w.Eng.Directory(ctx, w.Clinician, engine.DirectoryFilter{Query: string(long)})
	enginetest.WantFields(t, err, "q")
}
