package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/cmd/tend/internal/pgcluster"
)

// member is one process of the pg_auto_failover formation (the monitor or a
// node), run by deploy/ha/pg_autoctl.sh as the postgres user.
type member struct {
	name, role string
	port       int
	cmd        *exec.Cmd
	exited     chan struct{}
}

// startMember runs deploy/ha/pg_autoctl.sh role for a member named name.
func (h *harness) startMember(name, role, monitorURL string) (*member, error) {
	port, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	m := &member{name: name, role: role, port: port, exited: make(chan struct{})}
	script, err := filepath.Abs("deploy/ha/pg_autoctl.sh")
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(h.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	env := append(h.autoctlEnv(), "PGDATA="+filepath.Join(h.dir, name), "PGPORT="+strconv.Itoa(port), "HA_MONITOR="+monitorURL)
	// A context that never ends: the member is stopped by killMember.
	m.cmd = pgcluster.Command(context.Background(), "env", append(env, "bash", script, role)...)
	m.cmd.Stdout, m.cmd.Stderr = log, log
	if err := m.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = m.cmd.Wait(); log.Close(); close(m.exited) }()
	return m, nil
}

// autoctlEnv keeps pg_autoctl's files in the harness directory and makes
// the formation a local, throw-away one (trust, no TLS).
func (h *harness) autoctlEnv() []string {
	return []string{
		"XDG_CONFIG_HOME=" + filepath.Join(h.dir, "xdg", "config"),
		"XDG_DATA_HOME=" + filepath.Join(h.dir, "xdg", "data"),
		"XDG_RUNTIME_DIR=" + filepath.Join(h.dir, "xdg", "run"),
		"PG_REGRESS_SOCK_DIR=" + h.dir, "PGHOST=" + h.dir, // sockets in the harness directory
		"HA_HOSTNAME=127.0.0.1", "HA_AUTH=trust", "HA_SSL=--no-ssl",
		"PATH=/usr/local/bin:/usr/bin:/bin", // the postgres user may not search root's own directories
	}
}

// tune runs deploy/ha/pg_autoctl.sh tune against the monitor.
func (h *harness) tune(ctx context.Context, monitorURL, adminURL string) error {
	script, err := filepath.Abs("deploy/ha/pg_autoctl.sh")
	if err != nil {
		return err
	}
	env := append(h.autoctlEnv(), "PGDATA="+filepath.Join(h.dir, "monitor"), "HA_MONITOR="+monitorURL, "HA_MONITOR_ADMIN="+adminURL)
	out, err := pgcluster.Command(ctx, "env", append(env, "bash", script, "tune")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_autoctl.sh tune: %w: %s", err, out)
	}
	return nil
}

// kill is kill -9 of the member's whole process tree (pg_autoctl, its
// postmaster and backends): the host is lost. It returns the postmaster's
// pid.
func (m *member) kill(dir string) int {
	pm := postmasterPID(filepath.Join(dir, m.name))
	for _, pid := range append(descendants(m.cmd.Process.Pid), m.cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-m.exited
	return pm
}

// stop ends the member gracefully (pg_autoctl stops its Postgres), or kills
// it after 30 s.
func (m *member) stop(dir string) {
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.kill(dir)
	}
}

// postmasterPID reads the first line of data/postmaster.pid (0 if absent).
func postmasterPID(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(first))
	return n
}

// descendants lists every process below pid, children first.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so cut at the last ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if fields := strings.Fields(string(stat[i+1:])); len(fields) > 1 {
			ppid, _ := strconv.Atoi(fields[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			walk(c)
			out = append(out, c)
		}
	}
	walk(pid)
	return out
}

// nodeStates is each node's reported state, from the monitor.
func nodeStates(ctx context.Context, monitorURL string) (map[int]string, error) {
	conn, err := pgx.Connect(ctx, monitorURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT nodeport, reportedstate::text FROM pgautofailover.node`)
	if err != nil {
		return nil, err
	}
	states := map[int]string{}
	var port int
	var state string
	_, err = pgx.ForEachRow(rows, []any{&port, &state}, func() error { states[port] = state; return nil })
	return states, err
}

// waitStates waits until every port in want reports its state (timeout),
// running CHECKPOINT on the primary meanwhile: a standby's base backup
// waits for one.
func (h *harness) waitStates(ctx context.Context, monitorURL string, primary int, want map[int]string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last map[int]string
	for time.Now().Before(deadline) {
		states, err := nodeStates(ctx, monitorURL)
		if err == nil {
			last = states
			ok := true
			for port, s := range want {
				ok = ok && states[port] == s
			}
			if ok {
				return nil
			}
		}
		if conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", primary)); err == nil {
			_, _ = conn.Exec(ctx, `CHECKPOINT`)
			conn.Close(ctx)
		}
		sleep(ctx, time.Second)
	}
	return fmt.Errorf("the formation did not reach %v within %s (last: %v)", want, timeout, last)
}
