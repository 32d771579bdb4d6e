package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// BenchmarkMQTTIdleConnections opens 10,000 MQTT connections (each an
// authenticated CONNECT, then silence) to a `tend serve` process and
// reports that process's resident memory before and after: the cost of
// idle devices. Idle is not still: the broker library's once-a-second
// sweeps make garbage, and the heap grows until the garbage collector's
// goal (which counts the connections' stacks) before a collection. So
// "after" is the highest resident size seen until two collections have
// run since the last connection opened (at most idleSettle): the steady
// state. Reported: rss-before-MB, rss-after-MB, MB-per-10k, rss-2s-MB (a
// snapshot two seconds after the last connection), and where the memory
// went, from the process's own runtime statistics (read on its profiling
// listener, before and at the end): goroutine stacks (stacks-MB), heap in
// use (heap-MB, garbage included) and goroutines. BENCH_MQTT_HOLD=60s keeps
// the connections open that long more, to profile the process (its
// address is printed).
func BenchmarkMQTTIdleConnections(b *testing.B) {
	const conns = 10_000
	dbURL := enginetest.NewDatabase(b)
	tok := benchDeviceToken(b, dbURL)
	addr, apiAddr, pprofAddr := freeAddr(b), freeAddr(b), freeAddr(b)
	srv := startServeProcess(b, dbURL, addr, "TEND_ADDR="+apiAddr, "TEND_PPROF_ADDR="+pprofAddr)
	pid := srv.cmd.Process.Pid
	time.Sleep(2 * time.Second) // let start-up settle
	before, st0 := rssMB(b, pid), runtimeStats(b, pprofAddr)
	for b.Loop() {
		open := make([]net.Conn, 0, conns)
		for i := range conns {
			nc, err := idleConnect(addr, fmt.Sprintf("idle-%d", i), tok)
			if err != nil {
				b.Fatalf("connection %d: %v", i, err)
			}
			open = append(open, nc)
		}
		gcs := gcCycles(b, apiAddr)
		time.Sleep(2 * time.Second)
		snapshot := rssMB(b, pid)
		after := snapshot
		for end := time.Now().Add(idleSettle); time.Now().Before(end); time.Sleep(time.Second) {
			after = max(after, rssMB(b, pid))
			if gcCycles(b, apiAddr) >= gcs+2 {
				break
			}
		}
		if hold, err := time.ParseDuration(os.Getenv("BENCH_MQTT_HOLD")); err == nil {
			// Printed at once (a benchmark's log waits for its end).
			fmt.Fprintf(os.Stderr, "holding %d connections for %s: go tool pprof http://%s/debug/pprof/heap\n", conns, hold, pprofAddr)
			time.Sleep(hold)
		}
		st := runtimeStats(b, pprofAddr)
		b.ReportMetric(before, "rss-before-MB")
		b.ReportMetric(after, "rss-after-MB")
		b.ReportMetric(after-before, "MB-per-10k")
		b.ReportMetric(snapshot-before, "rss-2s-MB")
		b.ReportMetric((st["Stack"]-st0["Stack"])/(1<<20), "stacks-MB")
		b.ReportMetric((st["HeapInuse"]-st0["HeapInuse"])/(1<<20), "heap-MB")
		b.ReportMetric(st["goroutines"]-st0["goroutines"], "goroutines")
		for _, nc := range open {
			nc.Close()
		}
	}
}

// idleSettle bounds the wait for the idle process's steady state.
const idleSettle = 5 * time.Minute

// gcCycles reads how many garbage collections a serve process has run from
// its /metrics (cheaper than a heap profile, whose writing would add to the
// garbage being measured).
func gcCycles(b *testing.B, apiAddr string) float64 {
	body := httpGet(b, "http://"+apiAddr+"/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go_gc_duration_seconds_count "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no go_gc_duration_seconds_count in /metrics")
	return 0
}

func httpGet(b *testing.B, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return string(body)
}

// runtimeStats reads a serve process's memory statistics (the "# Name =
// value" lines of its heap profile) and goroutine count from its
// profiling listener.
func runtimeStats(b *testing.B, pprofAddr string) map[string]float64 {
	get := func(path string) string { return httpGet(b, "http://"+pprofAddr+path) }
	st := map[string]float64{}
	for line := range strings.Lines(get("/debug/pprof/heap?debug=1")) {
		name, val, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "# "), " = ")
		val, _, _ = strings.Cut(val, " / ") // Stack = in use / from the system
		if f, err := strconv.ParseFloat(val, 64); ok && err == nil {
			st[name] = f
		}
	}
	first, _, _ := strings.Cut(get("/debug/pprof/goroutine?debug=1"), "\n")
	n, err := strconv.ParseFloat(strings.TrimPrefix(first, "goroutine profile: total "), 64)
	if err != nil {
		b.Fatalf("goroutine profile: %q", first)
	}
	st["goroutines"] = n
	return st
}

// idleConnect sends a CONNECT (Eclipse Paho's packet codec) and waits for
// a successful CONNACK.
func idleConnect(addr, clientID, token string) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.KeepAlive, c.CleanStart = "MQTT", 5, clientID, 0, true
	c.PasswordFlag, c.Password, c.Properties = true, []byte(token), &packets.Properties{}
	if _, err := cp.WriteTo(nc); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	ack, err := packets.ReadPacket(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if ca, ok := ack.Content.(*packets.Connack); !ok || ca.ReasonCode != 0 {
		nc.Close()
		return nil, fmt.Errorf("CONNACK %v", ack)
	}
	return nc, nil
}

// benchDeviceToken creates a patient with a device and returns its token.
func benchDeviceToken(b *testing.B, dbURL string) string {
	ctx := context.Background()
	pool, err := openPool(ctx, dbURL, 4)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	eng, err := engine.New(engine.Config{Pool: pool})
	if err != nil {
		b.Fatal(err)
	}
	_, p := teamWithPatient(b, ctx, eng, "Idle", "", "P")
	sys := engine.System("bench")
	u, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: "hub", Role: engine.RoleDevice, PatientID: p.ID})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := eng.CreateToken(ctx, sys, u.ID)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// rssMB reads a process's resident set size (VmRSS) in megabytes.
func rssMB(b *testing.B, pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
