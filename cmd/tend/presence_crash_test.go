package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestPresenceCrash: a patient holds the live stream of a `tend serve`
// process; a clinician of their team watches from another process. When
// the first process is killed (-9), it cannot say goodbye: its heartbeat
// row goes stale, the other process sweeps it, and the clinician sees the
// patient go offline within 30 seconds.
func TestPresenceCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tend serve and waits for its presence to go stale")
	}
	ctx := context.Background()
	dbURL := enginetest.NewDatabase(t)
	pool, err := openPool(ctx, dbURL, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	eng, err := engine.New(engine.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	sys := engine.System("test")
	user := func(name string, role engine.Role, patient [16]byte) (engine.User, string) {
		u, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: name, Role: role, PatientID: patient})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := eng.CreateToken(ctx, sys, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return u, tok
	}
	doc, docTok := user("Clinician", engine.RoleClinician, [16]byte{})
	team, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Crash", Members: []engine.TeamMember{{UserID: doc.ID, Role: "clinician"}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: "P", Timezone: "UTC", CareTeamID: team.ID})
	if err != nil {
		t.Fatal(err)
	}
	pat, patTok := user("Patient", engine.RolePatient, p.ID)

	// Process B: in this test binary.
	srv, err := api.New(api.Config{Engine: eng, RateLimit: -1, StreamHeartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(eng.CloseStreams)
	watch := sseLines(t, hs.URL, docTok)

	// Process A: tend serve, killed below.
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$", "-test.count=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "TEND_TEST_SERVE=1", "TEND_DATABASE_URL="+dbURL, "TEND_ADDR="+addr,
		"TEND_LOG_LEVEL=warn", "TEND_RATE_LIMIT=-1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	enginetest.WaitFor(t, func() bool {
		r, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == http.StatusOK
	})
	sseLines(t, "http://"+addr, patTok)

	waitState := func(state string) {
		t.Helper()
		guard := time.After(90 * time.Second) // a hang guard, not the measure
		for {
			select {
			case line, ok := <-watch:
				if !ok {
					t.Fatalf("the clinician's stream ended before the patient was %s", state)
				}
				if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"user_id":"`+pat.ID.String()+`"`) &&
					strings.Contains(line, `"state":"`+state+`"`) {
					return
				}
			case <-guard:
				t.Fatalf("the patient was not %s within 90 s", state)
			}
		}
	}
	waitState("online")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	waitState("offline")
	took := time.Since(killed)
	t.Logf("offline %v after the kill", took.Round(time.Millisecond))
	if took > 30*time.Second {
		t.Errorf("the patient stayed online %v after their process was killed, want at most 30 s", took)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM presence WHERE user_id = $1`, pat.ID).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the dead process's row is still there (%d, %v)", rows, err)
	}
}

// sseLines opens GET /v1/stream of base as token and returns its lines; the
// channel closes when the stream ends or a minute passes without a line (a
// hang guard: heartbeats come every second or 15).
func sseLines(t *testing.T, base, token string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-time.After(time.Minute):
				return
			}
		}
	}()
	return lines
}
