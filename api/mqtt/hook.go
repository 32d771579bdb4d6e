package mqtt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync/atomic"

	broker "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tendhealth/tend/engine"
)

// conn is an authenticated client: who it acts for and its token's hash
// (to close it when the token stops working).
type conn struct {
	cl    *broker.Client
	actor engine.Actor
	token [32]byte
	// sent remembers the symptom reports of this connection by packet
	// identifier, so a redelivery (DUP) is answered, not stored again.
	// Made at the first report: most connections send readings only.
	sent map[uint16]sentReport
	// present: the engine counts this connection's patient online.
	present bool
}

// sentReport is a symptom report's payload hash and the answer it got.
type sentReport struct {
	hash   [32]byte
	answer []byte
	status int
}

// hook plugs Tend into the broker: authentication at CONNECT, topic
// authorisation, ingest on PUBLISH and bookkeeping on disconnect.
type hook struct {
	broker.HookBase
	l *Listener
}

func (h *hook) ID() string { return "tend" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{broker.OnConnect, broker.OnConnectAuthenticate, broker.OnACLCheck,
		broker.OnPublish, broker.OnSubscribed, broker.OnDisconnect, broker.OnClientExpired, broker.OnPacketEncode}, []byte{b})
}

// OnConnect authenticates the CONNECT's password as a Tend token (the user
// name is free) and refuses anyone but a device or patient, and a client
// identifier another user holds. A refusal sends its CONNACK here: the
// broker closes the connection without one when this hook fails.
func (h *hook) OnConnect(cl *broker.Client, pk packets.Packet) error {
	l := h.l
	code, a := l.authenticate(cl, pk)
	if code != packets.CodeSuccess {
		l.metrics.connects.WithLabelValues(outcomeFor(code)).Inc()
		l.log.Info("connect refused", "client_id", safeID(cl.ID), "reason", code.Reason, "protocol", cl.Properties.ProtocolVersion)
		if cl.Properties.ProtocolVersion < 5 {
			code = v3Connack(code)
		}
		_ = l.srv.SendConnack(cl, code, false, nil)
		return code
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.conns[cl.ID]; ok && old.actor.UserID != a.UserID {
		l.metrics.connects.WithLabelValues("client_id_taken").Inc()
		code := packets.Code{Code: packets.ErrClientIdentifierNotValid.Code, Reason: "client identifier is in use by another user"}
		if cl.Properties.ProtocolVersion < 5 {
			code = packets.ErrClientIdentifierNotValid
		}
		_ = l.srv.SendConnack(cl, code, false, nil)
		return code
	}
	// A Last Will would be published to subscribers without passing
	// OnPublish (and so to another client's tree): wills are dropped.
	atomic.StoreUint32(&cl.Properties.Will.Flag, 0)
	if old, ok := l.conns[cl.ID]; ok && old.present {
		// A session taken over before its old connection's disconnect.
		l.presence(old.cl, old.actor, false)
	}
	l.conns[cl.ID] = &conn{cl: cl, actor: a, token: sha256.Sum256(pk.Connect.Password),
		present: l.cfg.Presence != nil}
	l.metrics.connects.WithLabelValues("accepted").Inc()
	l.metrics.connections.Inc()
	l.presence(cl, a, true)
	return nil
}

// presence tells the engine that the connection of cl (as a) opened or
// closed, once each: its patient is online while it is open.
func (l *Listener) presence(cl *broker.Client, a engine.Actor, open bool) {
	if l.cfg.Presence == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.cfg.PublishTimeout)
	defer cancel()
	var err error
	if open {
		err = l.cfg.Presence.DeviceConnected(ctx, a)
	} else {
		err = l.cfg.Presence.DeviceDisconnected(ctx, a)
	}
	if err != nil {
		l.log.Warn("presence", "client_id", safeID(cl.ID), "error", err)
	}
}

// authenticate checks the token and the client identifier; it returns
// CodeSuccess and the actor, or the refusal.
func (l *Listener) authenticate(cl *broker.Client, pk packets.Packet) (packets.Code, engine.Actor) {
	if strings.ContainsAny(cl.ID, "+#/") || cl.ID == "tend" {
		return packets.Code{Code: packets.ErrClientIdentifierNotValid.Code,
			Reason: "client identifier must not contain +, # or /"}, engine.Actor{}
	}
	if !pk.Connect.PasswordFlag || len(pk.Connect.Password) == 0 {
		return packets.Code{Code: packets.ErrBadUsernameOrPassword.Code,
			Reason: "the password must be a Tend token of a device or patient"}, engine.Actor{}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), l.cfg.PublishTimeout)
	defer cancel()
	a, err := l.cfg.Identity.Authenticate(ctx, string(pk.Connect.Password))
	switch {
	case errors.Is(err, engine.ErrUnauthenticated):
		return packets.Code{Code: packets.ErrBadUsernameOrPassword.Code,
			Reason: "unknown, revoked or expired token, or a disabled user"}, a
	case err != nil:
		l.log.Warn("connect: authenticate", "error", err)
		return packets.Code{Code: packets.ErrServerUnavailable.Code, Reason: "authentication is unavailable; retry"}, a
	case !a.Is(engine.RoleDevice, engine.RolePatient):
		return packets.Code{Code: packets.ErrNotAuthorized.Code,
			Reason: "only device and patient tokens may connect"}, a
	}
	return packets.CodeSuccess, a
}

// v3Connack maps a refusal to the CONNACK return codes MQTT 3.1.1 has.
func v3Connack(code packets.Code) packets.Code {
	switch code.Code {
	case packets.ErrBadUsernameOrPassword.Code:
		return packets.ErrBadUsernameOrPassword
	case packets.ErrNotAuthorized.Code:
		return packets.ErrNotAuthorized
	case packets.ErrClientIdentifierNotValid.Code:
		return packets.ErrClientIdentifierNotValid
	}
	return packets.ErrServerUnavailable
}

// OnPacketEncode announces the largest packet the listener takes in a
// successful MQTT 5 CONNACK (Maximum Packet Size), so that clients do not
// send larger ones: the broker closes a connection that does.
func (h *hook) OnPacketEncode(cl *broker.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 && cl.Properties.ProtocolVersion == 5 {
		pk.Properties.MaximumPacketSize = h.l.srv.Options.Capabilities.MaximumPacketSize
	}
	return pk
}

// OnConnectAuthenticate lets in whoever OnConnect accepted.
func (h *hook) OnConnectAuthenticate(*broker.Client, packets.Packet) bool { return true }

// OnACLCheck lets a client publish (OnPublish refuses other topics with a
// reason) and subscribe or receive only under tend/v1/devices/{client}/.
func (h *hook) OnACLCheck(cl *broker.Client, topic string, write bool) bool {
	if write {
		return true
	}
	return strings.HasPrefix(topic, TopicDevices+cl.ID+"/")
}

// OnDisconnect forgets the connection when its session ends; a kept
// session keeps its client identifier bound to its user until it expires.
func (h *hook) OnDisconnect(cl *broker.Client, _ error, expire bool) {
	h.l.metrics.connections.Dec()
	h.l.mu.Lock()
	if c, ok := h.l.conns[cl.ID]; ok && c.cl == cl && c.present {
		c.present = false
		h.l.presence(cl, c.actor, false)
	}
	h.l.mu.Unlock()
	if expire {
		h.forget(cl)
	}
}

// OnClientExpired forgets a session that expired.
func (h *hook) OnClientExpired(cl *broker.Client) { h.forget(cl) }

func (h *hook) forget(cl *broker.Client) {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if c, ok := h.l.conns[cl.ID]; ok && c.cl == cl {
		delete(h.l.conns, cl.ID)
	}
}

// safeID bounds a client identifier for logs.
func safeID(id string) string {
	if len(id) > 64 {
		return id[:64]
	}
	return id
}
