package mqtt

import (
	"context"
	"strconv"
	"time"

	broker "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// conn returns the authenticated connection of cl (nil if none).
func (l *Listener) conn(cl *broker.Client) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.conns[cl.ID]
	if c == nil || c.cl != cl {
		return nil
	}
	return c
}

// ack writes a refusal's PUBACK (QoS 1) or PUBREC (QoS 2) with its reason
// code and Reason String.
func (l *Listener) ack(cl *broker.Client, pk packets.Packet, code packets.Code) error {
	typ := packets.Puback
	if pk.FixedHeader.Qos == 2 {
		typ = packets.Pubrec
	}
	out := packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: pk.PacketID, ReasonCode: code.Code}
	if code.Code >= packets.ErrUnspecifiedError.Code {
		out.Properties.ReasonString = code.Reason
	}
	return cl.WritePacket(out)
}

// disconnect closes a connection: with a DISCONNECT carrying the reason for
// MQTT 5, by closing it for 3.1.1 (whose servers send no DISCONNECT).
func (l *Listener) disconnect(cl *broker.Client, code packets.Code) {
	if cl.Properties.ProtocolVersion == 5 {
		_ = l.srv.DisconnectClient(cl, code)
		return
	}
	cl.Stop(code)
}

// respond publishes the JSON answer on the publish's Response Topic with
// its Correlation Data (MQTT 5 request/response); the user property
// "status" carries the HTTP status.
func (l *Listener) respond(pk packets.Packet, r result) {
	ct := "application/json"
	if !r.answer.OK() && r.answer.Status != 0 {
		ct = "application/problem+json"
	}
	status := r.answer.Status
	if status == 0 && r.code.Code >= packets.ErrUnspecifiedError.Code {
		return // refused before the API answered: the reason code says why
	}
	l.publish(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   pk.Properties.ResponseTopic,
		Payload:     r.body,
		PacketID:    1,
		Properties: packets.Properties{
			CorrelationData: pk.Properties.CorrelationData, ContentType: ct,
			PayloadFormat: 1, PayloadFormatFlag: true,
			User: []packets.UserProperty{{Key: "status", Val: strconv.Itoa(status)}},
		},
	})
}

// publish hands a message of the listener's own to the broker, which
// delivers it to the topic's subscribers (after their ACL check).
func (l *Listener) publish(pk packets.Packet) {
	if err := l.srv.InjectPacket(l.inline, pk); err != nil {
		l.log.Warn("publish answer", "error", err)
	}
}

// watchRevocations closes, every RevocationCheck, the connections whose
// token was revoked or expired or whose user was disabled since the last
// look (with a margin for clocks apart between processes).
func (l *Listener) watchRevocations(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.RevocationCheck)
	defer t.Stop()
	since := l.cfg.Now().Add(-time.Minute)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := l.cfg.Now()
		hashes, err := l.cfg.Identity.EndedTokens(ctx, since)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("revocation check", "error", err)
			}
			continue
		}
		since = now.Add(-time.Minute)
		if len(hashes) > 0 {
			l.closeEnded(hashes)
		}
	}
}

// closeEnded closes the open connections holding one of the tokens.
func (l *Listener) closeEnded(hashes [][32]byte) {
	ended := make(map[[32]byte]bool, len(hashes))
	for _, h := range hashes {
		ended[h] = true
	}
	l.mu.Lock()
	var closing []*conn
	for _, c := range l.conns {
		if ended[c.token] && !c.cl.Closed() {
			closing = append(closing, c)
		}
	}
	l.mu.Unlock()
	for _, c := range closing {
		l.metrics.revoked.Inc()
		l.log.Info("closing connection: token ended", "client_id", safeID(c.cl.ID), "user_id", c.actor.UserID)
		l.disconnect(c.cl, packets.Code{Code: packets.ErrNotAuthorized.Code,
			Reason: "not authorised: the token was revoked or expired, or its user disabled"})
	}
}
