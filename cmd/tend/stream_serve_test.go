package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// TestShutdownEndsStreams: a live stream never ends on its own, yet stopping
// the server ends it (the engine's streams close as HTTP shutdown begins) and
// shutdown completes without waiting out its grace period.
func TestShutdownEndsStreams(t *testing.T) {
	pool := enginetest.NewPool(t)
	eng, err := engine.New(engine.Config{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	u, err := eng.CreateUser(bg, engine.System("test"), engine.NewUser{Name: "Admin", Role: engine.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := eng.CreateToken(bg, engine.System("test"), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveHTTP(ctx, ln, srv, nil, eng.CloseStreams) }()

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != ": connected\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel() // SIGTERM
	if err := <-served; err != nil {
		t.Fatalf("serveHTTP: %v (a stream kept shutdown waiting)", err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("the stream ended with %v, want a clean end", err)
	}
}
