package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/tendhealth/tend/cmd/tend/internal/pgcluster"
	"github.com/tendhealth/tend/sealed"
)

// harness holds what every scenario shares: the tend binary, a directory
// for clusters and logs, the keys every process gets, and the Web Push
// service that stands in for the clinicians' browsers.
type harness struct {
	bin, dir                  string
	out                       io.Writer
	keys                      string
	vapidPublic, vapidPrivate string
	push                      *pushLog
	failures                  []string
}

func newHarness(bin string, out io.Writer) (*harness, error) {
	dir, err := os.MkdirTemp("", "tend-chaos-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := pgcluster.GiveToPostgres(dir); err != nil {
		return nil, err
	}
	keys, err := sealed.Generate("chaos")
	if err != nil {
		return nil, err
	}
	priv, pub, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		return nil, err
	}
	return &harness{bin: bin, dir: dir, out: out, keys: keys, vapidPublic: pub, vapidPrivate: priv,
		push: newPushLog(300 * time.Millisecond)}, nil
}

func (h *harness) printf(format string, args ...any) {
	fmt.Fprintf(h.out, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.0")}, args...)...)
}

// fail records a failed check; the run goes on and exits non-zero.
func (h *harness) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.failures = append(h.failures, msg)
	h.printf("FAIL: %s", msg)
}

// migrate runs tend migrate up and creates an admin token.
func (h *harness) migrate(ctx context.Context, dbURL string) (adminToken string, err error) {
	env := append(os.Environ(), h.tendEnv(dbURL)...)
	cmd := exec.CommandContext(ctx, h.bin, "migrate", "up")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tend migrate up: %w: %s", err, out)
	}
	cmd = exec.CommandContext(ctx, h.bin, "token", "create", "--role", "admin", "--name", "chaos admin")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("tend token create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// world is what a scenario's load needs: a clinician on call with a browser
// subscribed to pushes, a care team, and its patients.
type world struct {
	clinicianToken string
	teamID         string
	patients       []string
}

// enrol creates the world through the API of base.
func (h *harness) enrol(ctx context.Context, base, adminToken string, patients int) (*world, error) {
	var u struct{ ID string }
	if err := call(ctx, base, adminToken, "/v1/users", map[string]any{"name": "Dr On Call", "role": "clinician"}, &u); err != nil {
		return nil, err
	}
	var tok struct{ Token string }
	if err := call(ctx, base, adminToken, "/v1/users/"+u.ID+"/tokens", map[string]any{}, &tok); err != nil {
		return nil, err
	}
	w := &world{clinicianToken: tok.Token}
	var team struct{ ID string }
	if err := call(ctx, base, adminToken, "/v1/care-teams", map[string]any{"name": "Chaos ward", "member_ids": []string{u.ID}}, &team); err != nil {
		return nil, err
	}
	w.teamID = team.ID
	sub := h.push.sub
	if err := call(ctx, base, w.clinicianToken, "/v1/me/devices", map[string]any{"platform": "webpush",
		"subscription": map[string]any{"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}}, nil); err != nil {
		return nil, err
	}
	w.patients = make([]string, patients)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < patients; i += 8 {
				var p struct{ ID string }
				if err := call(ctx, base, adminToken, "/v1/patients", map[string]any{"display_name": fmt.Sprintf("Patient %d", i),
					"timezone": "UTC", "care_team_id": team.ID, "programs": []string{"hypertension"}}, &p); err != nil {
					errs <- err
					return
				}
				w.patients[i] = p.ID
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return w, nil
}

// call posts body as JSON and decodes a 2xx answer into out.
func call(ctx context.Context, base, token, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
