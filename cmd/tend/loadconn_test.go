package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadConn: the load generator's connection posts with the headers and
// body given, reuses one connection, reconnects after the server closes it,
// and stops a request in flight when its context ends.
func TestLoadConn(t *testing.T) {
	var conns, requests atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/api/slow":
			select { // until the client goes away
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case r.Method != http.MethodPost || r.URL.Path != "/api/v1/x" || r.Header.Get("Authorization") != "Bearer tok" ||
			r.Header.Get("Content-Type") != "application/json" || string(body) != `{"n":1}`:
			t.Errorf("request %s %s %v %q", r.Method, r.URL.Path, r.Header, body)
		case n == 3:
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	p := newPoster(srv.Client(), srv.URL+"/api")
	lc, ok := p.(*loadConn)
	if !ok {
		t.Fatalf("poster for http = %T, want *loadConn", p)
	}
	defer lc.close()
	ctx := context.Background()
	for i := range 5 {
		if status, err := p.post(ctx, "/v1/x", "tok", []byte(`{"n":1}`)); err != nil || status != http.StatusCreated {
			t.Fatalf("post %d = %d, %v", i, status, err)
		}
	}
	if got := conns.Load(); got != 2 {
		t.Errorf("connections = %d, want 2 (one closed by the server after the third request)", got)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.post(cctx, "/slow", "tok", []byte(`{"n":1}`)); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("post with an ending context: err %v after %s, want an error at once", err, time.Since(start))
	}
	if _, ok := newPoster(srv.Client(), "https://example.test").(*clientPoster); !ok {
		t.Error("poster for https is not the http.Client's")
	}
}
