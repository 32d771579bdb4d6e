package rota

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/rpm"
)

func TestOnCallFollowsWallClockAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	day, night := uuid.New(), uuid.New()
	slots := []Slot{
		{UserID: day, Weekday: "sunday", Start: "00:00", End: "08:00"},
		{UserID: night, Weekday: "saturday", Start: "22:00", End: "06:00"},
	}
	for _, c := range []struct {
		utc  string
		want []uuid.UUID
	}{
		// 2026-03-08 is the spring-forward Sunday in New York (EST → EDT at 02:00).
		{"2026-03-08T11:30:00Z", []uuid.UUID{day}},        // 07:30 EDT
		{"2026-03-08T12:30:00Z", nil},                     // 08:30 EDT (07:30 in EST: a fixed offset would be wrong)
		{"2026-03-08T09:30:00Z", []uuid.UUID{day, night}}, // 05:30 EDT: both, the night slot runs past midnight
		{"2026-03-08T10:30:00Z", []uuid.UUID{day}},        // 06:30 EDT
		{"2026-03-08T03:30:00Z", []uuid.UUID{night}},      // Saturday 22:30 EST
		// 2026-11-01 is the fall-back Sunday (EDT → EST at 02:00).
		{"2026-11-01T12:30:00Z", []uuid.UUID{day}}, // 07:30 EST
		{"2026-11-01T13:30:00Z", nil},              // 08:30 EST
		{"2026-11-04T12:00:00Z", nil},              // a Wednesday
	} {
		at, _ := time.Parse(time.RFC3339, c.utc)
		got := OnCall(slots, ny, at)
		if len(got) != len(c.want) {
			t.Errorf("%s: on call %v, want %v", c.utc, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: on call %v, want %v", c.utc, got, c.want)
			}
		}
	}
}

func TestCheckNamesEachField(t *testing.T) {
	member := uuid.New()
	var v rpm.ValidationError
	Check(&v, "on_call", []Slot{
		{UserID: member, Weekday: "Monday", Start: "08:00", End: "24:00"},
		{UserID: uuid.New(), Weekday: "funday", Start: "8am", End: "25:00"},
		{Weekday: "friday", Start: "09:00", End: "09:00"},
	}, func(id uuid.UUID) bool { return id == member })
	want := map[string]bool{"on_call[1].user_id": true, "on_call[1].weekday": true, "on_call[1].start": true,
		"on_call[1].end": true, "on_call[2].user_id": true, "on_call[2].end": true}
	got := map[string]bool{}
	for _, f := range v.Fields {
		got[f.Field] = true
	}
	for f := range want {
		if !got[f] {
			t.Errorf("missing error on %s: %+v", f, v.Fields)
		}
	}
	for f := range got {
		if !want[f] {
			t.Errorf("unexpected error on %s: %+v", f, v.Fields)
		}
	}
}
