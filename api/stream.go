package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// streamWriteTimeout bounds each write to a stream client: a client that
// stops reading is cut off rather than holding its goroutine for good.
const streamWriteTimeout = 30 * time.Second

// startStream answers 200 with an event stream's headers. A stream
// outlives the server's read and write timeouts: the read deadline is
// lifted (the request has no body) and each write is bounded instead.
func startStream(w http.ResponseWriter) *http.ResponseController {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	return rc
}

// streamWriter writes a stream's events and flushes them; messages whose
// message.created event was written are, once flushed, delivered to the
// user (a receipt).
type streamWriter struct {
	s       *Server
	rc      *http.ResponseController
	a       engine.Actor
	written []uuid.UUID
}

// write writes event m to w.
func (sw *streamWriter) write(w io.Writer, m *engine.StreamMessage) error {
	if m.Type == "message.created" {
		var p struct {
			MessageID uuid.UUID `json:"message_id"`
		}
		if json.Unmarshal(m.Data, &p) == nil && p.MessageID != uuid.Nil {
			sw.written = append(sw.written, p.MessageID)
		}
	}
	return writeEvent(w, m)
}

// flush sends what was written, within streamWriteTimeout, and records the
// receipts of the messages in it; false: the client is gone.
func (sw *streamWriter) flush(ctx context.Context) bool {
	_ = sw.rc.SetWriteDeadline(sw.s.cfg.Now().Add(streamWriteTimeout))
	if sw.rc.Flush() != nil {
		return false
	}
	for _, id := range sw.written {
		if err := sw.s.eng.MarkStreamDelivered(ctx, sw.a, id); err != nil && ctx.Err() == nil {
			sw.s.log.WarnContext(ctx, "stream: delivery receipt", "message_id", id, "error", err)
		}
	}
	sw.written = sw.written[:0]
	return true
}

// stream serves GET /v1/stream: Server-Sent Events of what the caller may
// see (alert.created, alert.updated, message.created, message.read, and the
// ephemeral typing), each with its event log id (typing has none). A Last-Event-ID header (or last_event_id query parameter, for
// clients that cannot set headers) replays what the client missed, or
// answers a single reset event when that is no longer possible. A comment
// line every Config.StreamHeartbeat keeps proxies from closing an idle
// stream, and re-checks the caller's token: a revoked token ends the stream.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	after, err := lastEventID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	sub, err := s.eng.Subscribe(ctx, actor(r), after)
	if errors.Is(err, engine.ErrStreamClosed) {
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, "Service unavailable", "this server is shutting down; reconnect", nil)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer sub.Close()
	token, _ := bearerToken(r.Header.Get("Authorization"))

	sw := &streamWriter{s: s, rc: startStream(w), a: actor(r)}
	writeEvent, flush := sw.write, func() bool { return sw.flush(ctx) }
	if _, err := io.WriteString(w, ": connected\nretry: 2000\n\n"); err != nil {
		return
	}
	for _, m := range sub.Backlog() {
		if writeEvent(w, m) != nil {
			return
		}
	}
	if !flush() {
		return
	}
	heartbeat := time.NewTicker(s.cfg.StreamHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			// Too slow (it reconnects with Last-Event-ID) or shutting down.
			return
		case m := <-sub.Events():
			if sub.Replayed(m.ID) {
				continue
			}
			if writeEvent(w, m) != nil {
				return
			}
			// Write what else is waiting before flushing once.
			for more := true; more; {
				select {
				case m := <-sub.Events():
					if !sub.Replayed(m.ID) && writeEvent(w, m) != nil {
						return
					}
				default:
					more = false
				}
			}
			if !flush() {
				return
			}
		case <-heartbeat.C:
			if _, err := s.eng.Authenticate(ctx, token); err != nil {
				return
			}
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil || !flush() {
				return
			}
		}
	}
}

// writeEvent writes one event. Its data is JSON from the event log, which
// never contains a line break.
// An ephemeral event (typing) has no id: it cannot be replayed, and must
// not move the client's Last-Event-ID.
func writeEvent(w io.Writer, m *engine.StreamMessage) error {
	if m.ID == 0 {
		_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", m.Type, m.Data)
		return err
	}
	_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", m.ID, m.Type, m.Data)
	return err
}

// lastEventID reads the client's Last-Event-ID header, else its
// last_event_id query parameter: nil when neither is given.
func lastEventID(r *http.Request) (*int64, error) {
	field, v := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if v == "" {
		field, v = "last_event_id", r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return nil, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		var ve rpm.ValidationError
		ve.Add(field, "must be the id of an event this stream sent (a non-negative integer)")
		return nil, &ve
	}
	return &id, nil
}
