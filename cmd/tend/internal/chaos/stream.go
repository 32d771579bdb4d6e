package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// streamWatch follows GET /v1/stream as a clinician the way the console
// does: when the stream ends (its server lost the database, or died) it
// reconnects with Last-Event-ID. It records when each alert event arrived.
type streamWatch struct {
	mu         sync.Mutex
	lastID     string
	events     []time.Time
	reconnects int
}

func (s *streamWatch) run(ctx context.Context, base, token string) {
	client := &http.Client{} // no timeout: a stream lasts
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "text/event-stream")
		s.mu.Lock()
		if s.lastID != "" {
			req.Header.Set("Last-Event-ID", s.lastID)
		}
		s.mu.Unlock()
		if resp, err := client.Do(req); err == nil {
			if resp.StatusCode == http.StatusOK {
				s.read(resp)
			}
			resp.Body.Close()
		}
		s.mu.Lock()
		s.reconnects++
		s.mu.Unlock()
		sleep(ctx, time.Second)
	}
}

// read consumes one stream until it ends.
func (s *streamWatch) read(resp *http.Response) {
	sc := bufio.NewScanner(resp.Body)
	var id, typ string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case line == "":
			if strings.HasPrefix(typ, "alert.") {
				s.mu.Lock()
				s.events = append(s.events, time.Now())
				if id != "" {
					s.lastID = id
				}
				s.mu.Unlock()
			}
			id, typ = "", ""
		}
	}
}

// after counts the alert events received after t, and the reconnections.
func (s *streamWatch) after(t time.Time) (events, reconnects int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.After(t) {
			events++
		}
	}
	return events, s.reconnects
}
