package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestHelperServe is not a test: TestMQTTCrash runs this test binary again
// with TEND_TEST_SERVE=1 to get a `tend serve` process it can kill -9.
func TestHelperServe(t *testing.T) {
	if os.Getenv("TEND_TEST_SERVE") != "1" {
		t.Skip("helper process for TestMQTTCrash")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, []string{"serve"}, os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// serveProcess is a `tend serve` process with MQTT on.
type serveProcess struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startServeProcess(t testing.TB, dbURL, mqttAddr string, env ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$", "-test.count=1")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "TEND_TEST_SERVE=1", "TEND_DATABASE_URL="+dbURL, "TEND_ADDR=127.0.0.1:0",
		"TEND_MQTT_ADDR="+mqttAddr, "TEND_LOG_LEVEL=warn", "TEND_RATE_LIMIT=-1")
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serveProcess{cmd: cmd, out: out}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("tcp", mqttAddr); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("tend serve did not listen for MQTT:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// crashDevice publishes readings one after another at QoS 1 and records
// which were acknowledged.
type crashDevice struct {
	id     int
	token  string
	sent   []string          // source_ids sent, in order
	bodies map[string][]byte // each one's body
	acked  map[string]bool
}

// connect opens the device's MQTT 5 connection (Eclipse Paho).
func (d *crashDevice) connect(ctx context.Context, addr string) (*paho.Client, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := paho.NewClient(paho.ClientConfig{Conn: nc})
	_, err = c.Connect(ctx, &paho.Connect{ClientID: fmt.Sprintf("crash-%d", d.id), KeepAlive: 30, CleanStart: true,
		Password: []byte(d.token), PasswordFlag: true})
	return c, err
}

func (d *crashDevice) publishUntilError(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.connect(ctx, addr)
	if err != nil {
		return
	}
	start := time.Now().Add(-time.Hour)
	for n := 0; ; n++ {
		src := fmt.Sprintf("crash-%d:%d", d.id, n)
		at := start.Add(time.Duration(n) * time.Second).UTC().Format(time.RFC3339)
		d.bodies[src] = fmt.Appendf(nil, `{"kind":"spo2","value":%d,"unit":"%%","observed_at":%q,"source_id":%q}`, 90+n%10, at, src)
		d.sent = append(d.sent, src)
		if !d.publish(ctx, c, src) {
			return
		}
	}
}

func (d *crashDevice) publish(ctx context.Context, c *paho.Client, src string) bool {
	pr, err := c.Publish(ctx, &paho.Publish{Topic: "tend/v1/readings", QoS: 1, Payload: d.bodies[src]})
	if err != nil || pr == nil || pr.ReasonCode != 0 {
		return false
	}
	d.acked[src] = true
	return true
}

// TestMQTTCrash: kill -9 of `tend serve` while 100 devices publish at QoS
// 1. Every acknowledged reading is stored exactly once; after a restart,
// the devices send again what was not acknowledged (as a client does) and
// every reading sent is then stored exactly once.
func TestMQTTCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tend serve twice")
	}
	dbURL := enginetest.NewDatabase(t)
	devices := crashDevices(t, dbURL, 100)
	addr := freeAddr(t)
	srv := startServeProcess(t, dbURL, addr)
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Go(func() { d.publishUntilError(addr) })
	}
	time.Sleep(3 * time.Second)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	wg.Wait()
	acked := 0
	for _, d := range devices {
		acked += len(d.acked)
	}
	if acked == 0 {
		t.Fatalf("nothing was acknowledged before the kill:\n%s", srv.out)
	}
	stored := storedSources(t, dbURL)
	for _, d := range devices {
		for src := range d.acked {
			if stored[src] != 1 {
				t.Errorf("acknowledged reading %s stored %d times, want 1", src, stored[src])
			}
		}
	}
	t.Logf("%d readings acknowledged before kill -9, %d stored", acked, len(stored))

	// Restart; each device sends its unacknowledged reading again.
	srv = startServeProcess(t, dbURL, addr)
	for _, d := range devices {
		wg.Go(func() { d.resend(t, addr) })
	}
	wg.Wait()
	stored = storedSources(t, dbURL)
	for _, d := range devices {
		for _, src := range d.sent {
			if stored[src] != 1 {
				t.Errorf("reading %s stored %d times after the resend, want 1", src, stored[src])
			}
		}
	}
	_ = srv
}

// resend sends again the device's readings that were not acknowledged.
func (d *crashDevice) resend(t *testing.T, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := d.connect(ctx, addr)
	if err != nil {
		t.Error(err)
		return
	}
	defer func() { _ = c.Disconnect(&paho.Disconnect{}) }()
	for _, src := range d.sent {
		if !d.acked[src] && !d.publish(ctx, c, src) {
			t.Errorf("resend of %s not acknowledged", src)
		}
	}
}

// crashDevices creates n patients, each with a device token.
func crashDevices(t *testing.T, dbURL string, n int) []*crashDevice {
	t.Helper()
	ctx := context.Background()
	pool, err := openPool(ctx, dbURL, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	eng, err := engine.New(engine.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	sys := engine.System("test")
	team, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Crash"})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*crashDevice, n)
	for i := range out {
		p, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: fmt.Sprintf("P%d", i), Timezone: "UTC", CareTeamID: team.ID})
		if err != nil {
			t.Fatal(err)
		}
		u, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: "oximeter", Role: engine.RoleDevice, PatientID: p.ID})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := eng.CreateToken(ctx, sys, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &crashDevice{id: i, token: tok, acked: map[string]bool{}, bodies: map[string][]byte{}}
	}
	return out
}

// storedSources counts the stored readings per source_id.
func storedSources(t *testing.T, dbURL string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT source_id, count(*) FROM readings WHERE source_id IS NOT NULL GROUP BY source_id`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var src string
		var n int
		if err := rows.Scan(&src, &n); err != nil {
			t.Fatal(err)
		}
		out[src] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// freeAddr is a loopback address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
