package api_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine"
)

// consolePresenceIdle is the idle time of the console's browser test
// (TEND_PRESENCE_IDLE): short, so that the console reports its user away
// within the test.
const consolePresenceIdle = 3

// teamCast is team A's members whose presence the care-team page shows in
// the console's browser test: one away, one hidden (connected, shown
// offline without a last-seen time) and one gone (offline, last seen),
// each connected straight through the engine (a stream subscription, as
// the API's GET /v1/stream holds one), whatever the console's mode.
type teamCast struct {
	eng                *engine.Engine
	away, hidden, gone engine.Actor
}

// castTeam adds the members to team and sets their presence.
func castTeam(t *testing.T, s *setup, pool *pgxpool.Pool, team string) *teamCast {
	t.Helper()
	ctx := context.Background()
	c := &teamCast{eng: s.eng}
	for _, m := range []struct {
		name string
		a    *engine.Actor
	}{{"Dr Ann Away", &c.away}, {"Dr Hal Hidden", &c.hidden}, {"Dr Gil Gone", &c.gone}} {
		a, err := s.eng.Authenticate(ctx, s.userToken(t, map[string]any{"name": m.name, "role": "clinician"}))
		if err != nil {
			t.Fatal(err)
		}
		*m.a = a
		if _, err := pool.Exec(ctx, `INSERT INTO care_team_members (care_team_id, user_id, role, org_id) VALUES ($1, $2, 'clinician', '00000000-0000-0000-0000-000000000001')`,
			team, a.UserID); err != nil {
			t.Fatal(err)
		}
	}
	away, hidden := "away", true
	c.connect(t, c.away)
	if _, err := s.eng.SetPresence(ctx, c.away, engine.PresenceUpdate{State: &away}); err != nil {
		t.Fatal(err)
	}
	c.connect(t, c.hidden)
	if _, err := s.eng.SetPresence(ctx, c.hidden, engine.PresenceUpdate{Hidden: &hidden}); err != nil {
		t.Fatal(err)
	}
	c.connect(t, c.gone)() // seen now, gone at once
	return c
}

// connect opens a stream subscription for a, drained until it ends, and
// returns its close (also run when the test ends).
func (c *teamCast) connect(t *testing.T, a engine.Actor) func() {
	t.Helper()
	sub, err := c.eng.Subscribe(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-sub.Events():
			case <-sub.Done():
				return
			case <-stop:
				return
			}
		}
	}()
	end := sync.OnceFunc(func() {
		sub.Close()
		close(stop)
	})
	t.Cleanup(end)
	return end
}

// userAway reports whether user's client last said they were away.
func userAway(t *testing.T, pool *pgxpool.Pool, user string) bool {
	t.Helper()
	var away bool
	if err := pool.QueryRow(context.Background(), `SELECT coalesce((SELECT away FROM user_presence WHERE user_id = $1), false)`,
		user).Scan(&away); err != nil {
		t.Fatal(err)
	}
	return away
}

// teamPageResult is what a clinician's care-team page showed of team A's
// members, and how long the console waited without input before it said
// its user was away.
type teamPageResult struct {
	Rows []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Text  string `json:"text"`
	} `json:"rows"`
	Back   string `json:"back"`
	IdleMS int    `json:"idle_ms"`
}

// checkTeamPage checks the member list of team A as its clinician saw it:
// their own row, the away member, the hidden one shown offline without a
// last-seen time, the one gone offline with it — then back online without
// a reload (with the stream; without, when the list was opened again) —
// and that the console waited the idle time before it said away.
func checkTeamPage(t *testing.T, mode string, got teamPageResult, self string, cast *teamCast) {
	t.Helper()
	rows := map[string]string{}
	for _, r := range got.Rows {
		rows[r.ID] = r.Text
	}
	selfWant := "Offline" // without the stream, the clinician holds no connection
	if mode == "stream" {
		selfWant = "Online|Away" // the console may have said away while the test waited
	}
	for id, want := range map[string]string{self: `^Dr Ada Osei \(you\) Clinician (` + selfWant + `)$`,
		cast.away.UserID.String():   `^Dr Ann Away Clinician Away$`,
		cast.hidden.UserID.String(): `^Dr Hal Hidden Clinician Offline$`,
		cast.gone.UserID.String():   `^Dr Gil Gone Clinician Offline, last seen \S.*$`} {
		if !regexp.MustCompile(want).MatchString(rows[id]) {
			t.Errorf("the team page shows member %s as %q, want %s", id, rows[id], want)
		}
	}
	if strings.Join(strings.Fields(got.Back), " ") != "Dr Gil Gone Clinician Online" {
		t.Errorf("the member who came back shows as %q", got.Back)
	}
	if got.IdleMS < consolePresenceIdle*1000 || got.IdleMS > consolePresenceIdle*1000+3000 {
		t.Errorf("the console said away %d ms after the last input, want about %d s", got.IdleMS, consolePresenceIdle)
	}
}
