package mqtt

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	broker "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/internal/text"
)

// result is what became of one publish.
type result struct {
	code    packets.Code // the reason code (and string) of the acknowledgement
	answer  api.Answer   // the JSON answer, for a Response Topic
	body    []byte       // the answer, encoded
	outcome string       // the metrics label
	// retry marks a failure the client should retry (the database is
	// unreachable): the publish is left unacknowledged and the connection
	// closed, so the client sends it again.
	retry bool
}

// OnPublish ingests a device's publish and answers it. It runs on the
// client's read loop and the broker acknowledges (PUBACK, PUBREC) only
// after it returns, so a QoS 1 or 2 reading is acknowledged after its
// transaction commits, never before.
func (h *hook) OnPublish(cl *broker.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the listener's own answers and asks
	}
	l := h.l
	start := l.cfg.Now()
	c := l.conn(cl)
	r := l.handle(c, cl, pk)
	l.metrics.publishes.WithLabelValues(topicLabel(pk.TopicName), r.outcome).Inc()
	v5 := cl.Properties.ProtocolVersion == 5
	switch {
	case r.retry:
		l.log.Warn("publish not stored; closing so the client retries", "client_id", safeID(cl.ID), "user_id", c.actor.UserID)
		l.disconnect(cl, packets.Code{Code: packets.ErrServerBusy.Code, Reason: "the database is unreachable: publish again"})
		return pk, packets.ErrRejectPacket
	case r.code.Code == packets.ErrQosNotSupported.Code:
		l.disconnect(cl, r.code)
		return pk, packets.ErrRejectPacket
	}
	if v5 && pk.Properties.ResponseTopic != "" && r.answer.Body != nil {
		l.respond(pk, r.encoded())
	}
	if r.code.Code >= packets.ErrUnspecifiedError.Code {
		l.log.Info("publish refused", "client_id", safeID(cl.ID), "user_id", c.actor.UserID,
			"topic", topicLabel(pk.TopicName), "reason_code", r.code.Code, "fields", fieldNames(r.answer))
		switch {
		case !v5: // MQTT 3.1.1 has no reason codes: the refusal closes the connection
			cl.Stop(r.code)
		case pk.FixedHeader.Qos > 0:
			_ = l.ack(cl, pk, r.code)
		}
		return pk, packets.ErrRejectPacket
	}
	if pk.FixedHeader.Qos > 0 {
		l.metrics.ackLatency.Observe(l.cfg.Now().Sub(start).Seconds())
	}
	// Acknowledged by the broker after this returns; never forwarded.
	return pk, packets.CodeSuccessIgnore
}

// handle decides a publish: its topic, QoS and response topic, the user's
// rate limit, then the API's answer.
func (l *Listener) handle(c *conn, cl *broker.Client, pk packets.Packet) result {
	switch {
	case c == nil:
		return refused(packets.ErrNotAuthorized.Code, "not_authorized", "the connection is not authenticated")
	case pk.TopicName != TopicReadings && pk.TopicName != TopicSymptoms:
		return refused(packets.ErrNotAuthorized.Code, "not_authorized",
			"topic: publish only to "+TopicReadings+" or "+TopicSymptoms)
	case pk.FixedHeader.Qos == 0 && !l.cfg.AcceptQoS0:
		return refused(packets.ErrQosNotSupported.Code, "qos0_refused",
			"QoS 0 is not accepted (it may be lost): publish with QoS 1 or 2")
	case pk.Properties.ResponseTopic != "" && !strings.HasPrefix(pk.Properties.ResponseTopic, TopicDevices+cl.ID+"/"):
		return refused(packets.ErrNotAuthorized.Code, "not_authorized",
			"response topic: must be under "+TopicDevices+cl.ID+"/")
	}
	if d := l.cfg.API.Allow(c.actor); d > 0 {
		secs := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
		p := api.Problem{Type: "https://tend.health/problems/rate-limited", Status: http.StatusTooManyRequests, Title: "Too many requests",
			Detail: "rate limit exceeded; retry in " + secs + " s"}
		return l.result(api.Answer{Status: p.Status, Body: p})
	}
	if pk.TopicName == TopicSymptoms {
		return l.symptoms(c, pk)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.cfg.PublishTimeout)
	defer cancel()
	return l.result(l.cfg.API.DeviceReadings(ctx, l.actor(c, pk), pk.Payload, api.DeviceOpts{DeriveSourceIDs: true}))
}

// symptoms answers a symptom report. Its body has no source_id, so a
// redelivery (DUP) of a report this connection already stored is answered
// from memory; across connections, an Idempotency-Key user property (MQTT
// 5) makes a resend a duplicate, as the HTTP header does.
func (l *Listener) symptoms(c *conn, pk packets.Packet) result {
	hash := sha256.Sum256(pk.Payload)
	if prev, ok := c.sent[pk.PacketID]; ok && pk.FixedHeader.Dup && prev.hash == hash {
		r := l.result(api.Answer{Status: http.StatusOK, Body: json.RawMessage(prev.answer)})
		r.body, r.outcome = prev.answer, "duplicate"
		return r
	}
	var key string
	for _, p := range pk.Properties.User {
		if strings.EqualFold(p.Key, "idempotency-key") {
			key = p.Val
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.cfg.PublishTimeout)
	defer cancel()
	r := l.result(l.cfg.API.DeviceSymptoms(ctx, l.actor(c, pk), pk.Payload, api.DeviceOpts{IdempotencyKey: key}))
	if r.answer.OK() && pk.FixedHeader.Qos > 0 {
		switch {
		case c.sent == nil:
			c.sent = map[uint16]sentReport{}
		case len(c.sent) >= 64:
			clear(c.sent)
		}
		r = r.encoded()
		c.sent[pk.PacketID] = sentReport{hash: hash, answer: r.body, status: r.answer.Status}
	}
	return r
}

// actor is the connection's actor with a request id for the audit trail.
func (l *Listener) actor(c *conn, pk packets.Packet) engine.Actor {
	a := c.actor
	a.RequestID = fmt.Sprintf("mqtt-%s-%d-%d", safeID(c.cl.ID), pk.PacketID, l.cfg.Now().UnixNano())
	return a
}

// encoded returns r with its answer encoded (once).
func (r result) encoded() result {
	if r.body == nil && r.answer.Body != nil {
		r.body, _ = json.Marshal(r.answer.Body)
	}
	return r
}

func refused(code byte, outcome, reason string) result {
	return result{code: packets.Code{Code: code, Reason: reason}, outcome: outcome}
}

// result maps the API's answer to a reason code the way the HTTP status
// maps it: 0x99 for a body that is not valid (400, 415, 422), 0x87 for
// what the token may not do (401, 403, 404), 0x95 too large, 0x97 rate
// limited; the Reason String names the fields, as the 422 problem does.
func (l *Listener) result(ans api.Answer) result {
	r := result{answer: ans, code: packets.CodeSuccess, outcome: "accepted"}
	if ans.Status == http.StatusOK {
		r.outcome = "duplicate"
	}
	if ans.OK() {
		return r
	}
	reason := reasonString(ans)
	switch ans.Status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		r.code, r.outcome = packets.Code{Code: packets.ErrPayloadFormatInvalid.Code, Reason: reason}, "invalid"
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		r.code, r.outcome = packets.Code{Code: packets.ErrNotAuthorized.Code, Reason: reason}, "not_authorized"
	case http.StatusRequestEntityTooLarge:
		r.code, r.outcome = packets.Code{Code: packets.ErrPacketTooLarge.Code, Reason: reason}, "too_large"
	case http.StatusTooManyRequests:
		r.code, r.outcome = packets.Code{Code: packets.ErrQuotaExceeded.Code, Reason: reason}, "rate_limited"
	case http.StatusServiceUnavailable:
		r.code, r.outcome = packets.Code{Code: packets.ErrServerUnavailable.Code, Reason: reason}, "unavailable"
		r.retry = ans.Retry
	default:
		if ans.Err != nil {
			l.log.Error("publish failed", "error", ans.Err)
		}
		r.code, r.outcome = packets.Code{Code: packets.ErrUnspecifiedError.Code, Reason: reason}, "failed"
	}
	return r
}

// reasonString is the problem in one line: its fields and reasons, else
// its title and detail.
func reasonString(ans api.Answer) string {
	p, ok := ans.Body.(api.Problem)
	if !ok {
		return http.StatusText(ans.Status)
	}
	if len(p.Errors) == 0 {
		return p.Title + ": " + p.Detail
	}
	parts := make([]string, len(p.Errors))
	for i, f := range p.Errors {
		parts[i] = f.Field + ": " + f.Reason
	}
	return text.Truncate(p.Title+": "+strings.Join(parts, "; "), 1000)
}

// fieldNames lists the fields a refusal names, for the log (never values).
func fieldNames(ans api.Answer) []string {
	p, _ := ans.Body.(api.Problem)
	names := make([]string, len(p.Errors))
	for i, f := range p.Errors {
		names[i] = f.Field
	}
	return names
}
