package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
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
// idle devices. Reported: rss-before-MB, rss-after-MB, MB-per-10k.
func BenchmarkMQTTIdleConnections(b *testing.B) {
	const conns = 10_000
	dbURL := enginetest.NewDatabase(b)
	tok := benchDeviceToken(b, dbURL)
	addr := freeAddr(b)
	srv := startServeProcess(b, dbURL, addr)
	time.Sleep(2 * time.Second) // let start-up settle
	before := rssMB(b, srv.cmd.Process.Pid)
	for b.Loop() {
		open := make([]net.Conn, 0, conns)
		for i := range conns {
			nc, err := idleConnect(addr, fmt.Sprintf("idle-%d", i), tok)
			if err != nil {
				b.Fatalf("connection %d: %v", i, err)
			}
			open = append(open, nc)
		}
		time.Sleep(2 * time.Second)
		after := rssMB(b, srv.cmd.Process.Pid)
		b.ReportMetric(before, "rss-before-MB")
		b.ReportMetric(after, "rss-after-MB")
		b.ReportMetric(after-before, "MB-per-10k")
		for _, nc := range open {
			nc.Close()
		}
	}
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
