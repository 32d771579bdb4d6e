package mqtt

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	broker "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tendhealth/tend/engine"
)

// Retake requests reach a device on tend/v1/devices/{client}/asks in two
// ways, neither of which keeps state in the listener:
//
//   - as they are made: every process follows the engine's retake events
//     (engine.FollowRetakes), whichever process or transport took the
//     reading or symptom report that made them, and publishes each to the
//     connections of the patient it holds;
//   - when a device subscribes to its asks topic: the patient's requests
//     still open (engine.PendingRetakes), so a device that was offline, or
//     connected to another process, learns what it missed.
//
// A request may so arrive twice; rule_id and reading_id identify it.

// asksSuffix is the last level of a client's asks topic.
const asksSuffix = "/asks"

// asksBody is the JSON of an asks message.
type asksBody[T any] struct {
	Retakes []T `json:"retakes"`
}

// followRetakes publishes the retake requests of every process to the
// devices connected to this one, until ctx ends. sub is the subscription
// Start opened (nil if it could not): when it ends (this process too slow,
// or the database gone), it is opened again after the last event handled,
// and what was missed is replayed.
func (l *Listener) followRetakes(ctx context.Context, sub *engine.StreamSubscription) {
	defer l.wg.Done()
	var last *int64
	for {
		if sub == nil {
			var err error
			if sub, err = l.cfg.Identity.FollowRetakes(ctx, last); err != nil {
				if ctx.Err() != nil {
					return
				}
				l.log.Warn("following retake requests", "error", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
		}
		for _, m := range sub.Backlog() {
			l.retakeEvent(m, &last)
		}
		l.drain(ctx, sub, &last)
		sub.Close()
		sub = nil
		if ctx.Err() != nil {
			return
		}
	}
}

// drain handles sub's events until it or ctx ends.
func (l *Listener) drain(ctx context.Context, sub *engine.StreamSubscription, last **int64) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			l.log.Warn("following retake requests: resuming", "error", sub.Err())
			return
		case m := <-sub.Events():
			if !sub.Replayed(m.ID) {
				l.retakeEvent(m, last)
			}
		}
	}
}

// retakeEvent sends one event's requests to the patient's connections.
func (l *Listener) retakeEvent(m *engine.StreamMessage, last **int64) {
	id := m.ID
	*last = &id
	if m.Type == engine.StreamReset {
		l.log.Warn("retake requests missed (the event log was pruned); devices get them when they subscribe")
		return
	}
	var ev engine.RetakesRequested
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.PatientID == uuid.Nil || len(ev.Retakes) == 0 {
		return
	}
	l.ask(ev.PatientID, ev.Retakes)
}

// ask sends retake requests to every connection of the patient on this
// process, on tend/v1/devices/{client}/asks.
func (l *Listener) ask(patientID uuid.UUID, retakes []engine.RetakeRef) {
	body, err := json.Marshal(asksBody[engine.RetakeRef]{retakes})
	if err != nil {
		return
	}
	l.mu.Lock()
	var ids []string
	for id, c := range l.conns {
		if c.actor.PatientID == patientID && !c.cl.Closed() {
			ids = append(ids, id)
		}
	}
	l.mu.Unlock()
	l.metrics.asks.Add(float64(len(ids)))
	for _, id := range ids {
		l.publishAsks(id, body)
	}
}

// publishAsks publishes body on the client's asks topic.
func (l *Listener) publishAsks(clientID string, body []byte) {
	l.publish(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   TopicDevices + clientID + asksSuffix, Payload: body, PacketID: 1,
		Properties: packets.Properties{ContentType: "application/json", PayloadFormat: 1, PayloadFormatFlag: true},
	})
}

// OnSubscribed sends a client that subscribed to its asks topic the
// patient's retake requests still open. It runs apart from the client's
// read loop (a database read); MQTT lets a server send matching messages
// before its SUBACK.
func (h *hook) OnSubscribed(cl *broker.Client, pk packets.Packet, codes []byte) {
	l := h.l
	c := l.conn(cl)
	if c == nil || c.actor.PatientID == uuid.Nil {
		return
	}
	asks := TopicDevices + cl.ID + asksSuffix
	covered := false
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] < packets.ErrUnspecifiedError.Code && matches(f.Filter, asks) {
			covered = true
		}
	}
	if !covered {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(l.ctx, l.cfg.PublishTimeout)
		defer cancel()
		pending, err := l.cfg.Identity.PendingRetakes(ctx, c.actor, c.actor.PatientID)
		if err != nil {
			l.log.Warn("pending retakes for a subscriber", "client_id", safeID(cl.ID), "user_id", c.actor.UserID, "error", err)
			return
		}
		if len(pending) == 0 || cl.Closed() {
			return
		}
		body, err := json.Marshal(asksBody[engine.PendingRetake]{pending})
		if err != nil {
			return
		}
		l.metrics.asks.Inc()
		l.publishAsks(cl.ID, body)
	}()
}

// matches reports whether the topic filter (with + and #) matches topic.
func matches(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		switch {
		case f == "#":
			return true
		case i >= len(ts):
			return false
		case f != "+" && f != ts[i]:
			return false
		}
	}
	return len(fs) == len(ts)
}
