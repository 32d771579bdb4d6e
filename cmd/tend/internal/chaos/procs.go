package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tendhealth/tend/cmd/tend/internal/pgcluster"
)

// proc is one tend process (serve or worker) that the harness starts, kills
// and starts again. Its output goes to a log file in the harness directory.
type proc struct {
	h    *harness
	name string
	args []string
	env  []string
	base string // http://addr for serve; empty for worker

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	killed    bool // the harness killed or stopped it: its exit is expected
	unplanned int  // exits nobody asked for
}

// newProc describes a tend process; start runs it.
func (h *harness) newProc(name, dbURL string, args ...string) (*proc, error) {
	p := &proc{h: h, name: name, args: args, env: append(os.Environ(), h.tendEnv(dbURL)...)}
	if args[0] == "serve" {
		port, err := pgcluster.FreePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		p.env = append(p.env, "TEND_ADDR="+addr)
		p.base = "http://" + addr
	}
	return p, nil
}

// tendEnv is the configuration every tend process of the harness shares.
func (h *harness) tendEnv(dbURL string) []string {
	return []string{
		"TEND_DATABASE_URL=" + dbURL,
		"TEND_ENCRYPTION_KEYS=" + h.keys,
		"TEND_VAPID_PUBLIC_KEY=" + h.vapidPublic,
		"TEND_VAPID_PRIVATE_KEY=" + h.vapidPrivate,
		"TEND_VAPID_SUBJECT=mailto:ops@example.org",
		"TEND_WEBPUSH_ALLOWED_HOSTS=127.0.0.1",
		"TEND_RATE_LIMIT=-1",
		"TEND_FAILED_AUTH_RATE=-1",
		"TEND_DB_MAX_CONNS=20",
		"TEND_LOG_LEVEL=warn",
	}
}

// start runs the process (again), appending to its log.
func (p *proc) start() error {
	log, err := os.OpenFile(filepath.Join(p.h.dir, p.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.h.bin, p.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.killed = cmd, exited, false
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		log.Close()
		p.mu.Lock()
		if !p.killed {
			p.unplanned++
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// signal sends sig and waits for the process to end (SIGKILL after grace).
func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killed = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// kill is kill -9.
func (p *proc) kill() { p.signal(syscall.SIGKILL, time.Minute) }

// stop is a graceful stop (SIGTERM; SIGKILL after 30 s).
func (p *proc) stop() { p.signal(syscall.SIGTERM, 30*time.Second) }

// unplannedExits counts the times the process ended without being asked.
func (p *proc) unplannedExits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unplanned
}

// waitReady waits until GET /readyz answers 200 (database reachable and
// migrated), or timeout.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s (log: %s)", p.name, timeout, filepath.Join(p.h.dir, p.name+".log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
