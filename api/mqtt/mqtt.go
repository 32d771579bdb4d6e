// Package mqtt is Tend's MQTT listener for connected devices (MQTT 5 and
// 3.1.1, over TCP, TLS or WebSocket). It is thin, like package api: a
// device authenticates with its token at CONNECT, publishes readings to
// tend/v1/readings and symptom reports to tend/v1/symptoms with the bodies
// of the HTTP API, and the listener hands each publish to the API's
// transport-neutral entry points (api.Server.DeviceReadings and
// DeviceSymptoms) — the same decoding, validation and engine ingest, in the
// same group-committed transaction as HTTP. A QoS 1 or 2 publish is
// acknowledged only when that transaction has committed.
//
// The broker itself (packets, sessions, QoS flows) is
// github.com/mochi-mqtt/server/v2; this package adds the hook that
// authenticates, authorises topics, ingests and answers, the watcher that
// closes connections whose token was revoked, and the follower that sends
// retake requests made on any process to the devices connected to this
// one (asks.go). BrokerClient (broker.go) is the other way round: Tend as
// a client of an existing broker cluster. See docs/mqtt.md.
package mqtt

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	broker "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
)

// Topics devices publish to, and the root of the topics they may
// subscribe to (followed by their client identifier).
const (
	TopicReadings = "tend/v1/readings"
	TopicSymptoms = "tend/v1/symptoms"
	TopicDevices  = "tend/v1/devices/"
)

// Device is what the listener needs of the HTTP API (*api.Server): the
// transport-neutral answers and the shared per-user rate limit.
type Device interface {
	DeviceReadings(ctx context.Context, a engine.Actor, body []byte, o api.DeviceOpts) api.Answer
	DeviceSymptoms(ctx context.Context, a engine.Actor, body []byte, o api.DeviceOpts) api.Answer
	Allow(a engine.Actor) time.Duration
	MaxBodyBytes() int64
}

// Identity is what the listener needs of the engine (*engine.Engine):
// tokens in, the tokens that stopped working, and the requests to measure
// again (followed from every process, and listed when a device subscribes).
type Identity interface {
	Authenticate(ctx context.Context, token string) (engine.Actor, error)
	EndedTokens(ctx context.Context, since time.Time) ([][32]byte, error)
	FollowRetakes(ctx context.Context, after *int64) (*engine.StreamSubscription, error)
	PendingRetakes(ctx context.Context, a engine.Actor, patientID uuid.UUID) ([]engine.PendingRetake, error)
}

// Presence is what the listener tells the engine of connections: a
// device's or patient's connection makes the patient online.
type Presence interface {
	DeviceConnected(ctx context.Context, a engine.Actor) error
	DeviceDisconnected(ctx context.Context, a engine.Actor) error
}

// Config configures a Listener.
type Config struct {
	// Addr is the TCP address to listen on (TEND_MQTT_ADDR). Required.
	Addr string
	// TLS serves Addr over TLS when set (TEND_MQTT_TLS_CERT, _KEY).
	TLS *tls.Config
	// WebSocketAddr, when set, also serves MQTT over WebSocket there
	// (TEND_MQTT_WS_ADDR; with TLS when TLS is set). It must name a port.
	WebSocketAddr string
	// API answers publishes. Required.
	API Device
	// Identity authenticates tokens. Required.
	Identity Identity
	// Presence counts each accepted connection as its patient being online
	// until it closes (*engine.Engine). Nil counts nothing.
	Presence Presence
	// Logger receives connection and refusal logs (ids only). Defaults to
	// discarding.
	Logger *slog.Logger
	// Registerer receives the tend_mqtt_* metrics. Defaults to a new
	// registry.
	Registerer prometheus.Registerer
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// AcceptQoS0 accepts QoS 0 publishes (TEND_MQTT_QOS0=true): they are
	// never acknowledged, so they may be lost. Defaults to false: a QoS 0
	// publish closes the connection.
	AcceptQoS0 bool
	// RevocationCheck is how often open connections are checked against
	// revoked tokens and disabled users. Defaults to 500ms, so a
	// connection closes within a second of its revocation.
	RevocationCheck time.Duration
	// PublishTimeout bounds one publish's ingest. Defaults to 30 seconds.
	PublishTimeout time.Duration
	// SessionExpiry caps how long a disconnected client's session
	// (subscriptions, unacknowledged messages to it) is kept. Defaults to
	// 10 minutes.
	SessionExpiry time.Duration
}

// Listener is a running MQTT listener.
type Listener struct {
	cfg     Config
	log     *slog.Logger
	srv     *broker.Server
	inline  *broker.Client
	metrics *metrics
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the revocation watcher and the retake follower
	closing sync.Once

	mu    sync.Mutex
	conns map[string]*conn // by client identifier
}

// New validates cfg and builds a Listener; Start serves it.
func New(cfg Config) (*Listener, error) {
	if cfg.Addr == "" || cfg.API == nil || cfg.Identity == nil {
		return nil, errors.New("mqtt: Config.Addr, API and Identity are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	cfg.RevocationCheck = cmp.Or(cfg.RevocationCheck, 500*time.Millisecond)
	cfg.PublishTimeout = cmp.Or(cfg.PublishTimeout, 30*time.Second)
	cfg.SessionExpiry = cmp.Or(cfg.SessionExpiry, 10*time.Minute)
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	l := &Listener{cfg: cfg, log: cfg.Logger.With("component", "mqtt"), metrics: m, conns: map[string]*conn{}}
	l.srv = broker.New(l.options())
	l.inline = l.srv.NewClient(nil, broker.LocalListener, "tend", true)
	if err := l.srv.AddHook(&hook{l: l}, nil); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return l, nil
}

// options are the broker's: small per-connection buffers (a 256-byte
// read buffer holds a fixed header and a small publish, larger packets are
// read straight into their own; writes are gathered up to 1 KiB), so that
// an idle connection's cost is mostly its two goroutines' stacks
// (docs/mqtt.md#performance); packets no larger than an HTTP body; no
// retained messages; $SYS statistics published once a day rather than
// every second, since no client may subscribe to them (each publish reads
// the runtime's memory statistics, which stops the world); and a logger
// that discards — the broker's own logs may print packets, and a packet
// carries vitals.
func (l *Listener) options() *broker.Options {
	caps := broker.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 64
	caps.ReceiveMaximum = 32
	caps.MaximumInflight = 256
	caps.MaximumPacketSize = uint32(min(l.cfg.API.MaxBodyBytes()+64<<10, 256<<20))
	caps.MaximumSessionExpiryInterval = uint32(l.cfg.SessionExpiry / time.Second)
	caps.MaximumMessageExpiryInterval = int64(l.cfg.SessionExpiry / time.Second)
	caps.RetainAvailable = 0
	caps.SharedSubAvailable = 0
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	return &broker.Options{
		Capabilities:             caps,
		ClientNetWriteBufferSize: 1 << 10,
		ClientNetReadBufferSize:  256,
		Logger:                   slog.New(slog.NewTextHandler(io.Discard, nil)),
		SysTopicResendInterval:   24 * 60 * 60,
		InlineClient:             false,
	}
}

// Start binds the listeners and serves until Close (or ctx ends).
func (l *Listener) Start(ctx context.Context) error {
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: l.cfg.Addr, TLSConfig: l.cfg.TLS})
	if err := l.srv.AddListener(tcp); err != nil {
		return fmt.Errorf("mqtt: listen %s: %w", l.cfg.Addr, err)
	}
	if l.cfg.WebSocketAddr != "" {
		// The broker's WebSocket listener binds only once it serves, and
		// reports a failure to bind in its log alone: try the address first.
		probe, err := net.Listen("tcp", l.cfg.WebSocketAddr)
		if err != nil {
			_ = l.srv.Close()
			return fmt.Errorf("mqtt: listen %s: %w", l.cfg.WebSocketAddr, err)
		}
		_ = probe.Close()
		ws := listeners.NewWebsocket(listeners.Config{ID: "ws", Address: l.cfg.WebSocketAddr, TLSConfig: l.cfg.TLS})
		if err := l.srv.AddListener(ws); err != nil {
			_ = l.srv.Close()
			return fmt.Errorf("mqtt: listen %s: %w", l.cfg.WebSocketAddr, err)
		}
	}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := l.srv.Serve(); err != nil {
		l.cancel()
		return fmt.Errorf("mqtt: serve: %w", err)
	}
	// Following the retake requests before Start returns means none
	// committed after it is missed; if the database is not there yet, the
	// follower keeps trying on its own.
	sub, err := l.cfg.Identity.FollowRetakes(l.ctx, nil)
	if err != nil {
		l.log.Warn("following retake requests", "error", err)
	}
	l.wg.Add(2)
	go l.watchRevocations(l.ctx)
	go l.followRetakes(l.ctx, sub)
	go func() {
		select {
		case <-ctx.Done():
			l.Close()
		case <-l.ctx.Done():
		}
	}()
	return nil
}

// Addr is the TCP listener's bound address (useful with port 0).
func (l *Listener) Addr() string { return l.listenerAddr("tcp") }

// WebSocketAddr is the WebSocket listener's bound address, or "".
func (l *Listener) WebSocketAddr() string { return l.listenerAddr("ws") }

func (l *Listener) listenerAddr(id string) string {
	if x, ok := l.srv.Listeners.Get(id); ok {
		return x.Address()
	}
	return ""
}

// Close disconnects every client and stops listening. Publishes being
// ingested finish first; they are acknowledged only if the connection
// is still open.
func (l *Listener) Close() {
	if l.cancel == nil {
		return
	}
	l.closing.Do(func() {
		l.cancel()
		l.wg.Wait()
		_ = l.srv.Close()
	})
}
