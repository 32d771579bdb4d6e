package mqtt

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
)

// Broker-cluster mode: Tend as an MQTT 5 client of a broker the operator
// already runs (Mosquitto, EMQX, HiveMQ). Each process subscribes to
// tend/v1/readings and tend/v1/symptoms with a shared subscription
// ($share/{group}/…), so that the broker hands each message to one of them.
// The broker authenticates the devices; each message carries the device's
// Tend token in its "authorization" user property, so that Tend authorises
// it exactly as over HTTP. A message is acknowledged to the broker (PUBACK)
// only after its reading has committed, so the broker keeps — and delivers
// again — what Tend has not stored. See docs/mqtt.md.

// TopicUsers is the root of the answer topics in broker mode, followed by
// the token's user id: a Response Topic elsewhere is refused, since the
// broker, not Tend, knows who may read a topic.
const TopicUsers = "tend/v1/users/"

// BrokerConfig configures a BrokerClient.
type BrokerConfig struct {
	// Addr is the broker's host:port (TEND_MQTT_BROKER). Required.
	Addr string
	// TLS connects over TLS when set.
	TLS *tls.Config
	// ClientID is this process's client identifier at the broker; it must
	// differ between processes. Required.
	ClientID string
	// Username and Password are Tend's credentials at the broker.
	Username string
	Password string
	// Group names the shared subscription group. Defaults to "tend".
	Group string
	// API answers messages and Identity authenticates their tokens. Required.
	API      Device
	Identity interface {
		Authenticate(ctx context.Context, token string) (engine.Actor, error)
	}
	// Logger receives connection and refusal logs (ids only).
	Logger *slog.Logger
	// Registerer receives the tend_mqtt_broker_* metrics. Defaults to a new
	// registry.
	Registerer prometheus.Registerer
	// Now is the clock (for the acknowledgement latency). Defaults to
	// time.Now.
	Now func() time.Time
	// PublishTimeout bounds one message's ingest. Defaults to 30 seconds.
	PublishTimeout time.Duration
	// RetryDelay is how long a message waits before it is ingested again
	// when the database is unreachable, and how long a lost connection to
	// the broker waits before reconnecting. Defaults to 1 second.
	RetryDelay time.Duration
	// Concurrency bounds the messages ingested at once. Defaults to 256
	// (group commit puts them in few transactions).
	Concurrency int
}

// BrokerClient is Tend connected to a broker as a client.
type BrokerClient struct {
	cfg    BrokerConfig
	log    *slog.Logger
	sem    chan struct{}
	m      brokerMetrics
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewBrokerClient validates cfg.
func NewBrokerClient(cfg BrokerConfig) (*BrokerClient, error) {
	if cfg.Addr == "" || cfg.ClientID == "" || cfg.API == nil || cfg.Identity == nil {
		return nil, errors.New("mqtt broker client: Addr, ClientID, API and Identity are required")
	}
	cfg.Group = cmp.Or(cfg.Group, "tend")
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.PublishTimeout = cmp.Or(cfg.PublishTimeout, 30*time.Second)
	cfg.RetryDelay = cmp.Or(cfg.RetryDelay, time.Second)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 256)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	m, err := newBrokerMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &BrokerClient{cfg: cfg, log: cfg.Logger.With("component", "mqtt-broker-client"),
		sem: make(chan struct{}, cfg.Concurrency), m: m}, nil
}

// brokerMetrics are the broker client's collectors (tend_mqtt_broker_*).
type brokerMetrics struct {
	connected  prometheus.Gauge
	messages   *prometheus.CounterVec
	ackLatency prometheus.Histogram
}

func newBrokerMetrics(reg prometheus.Registerer) (brokerMetrics, error) {
	m := brokerMetrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tend_mqtt_broker_connected", Help: "1 while this process is connected and subscribed to the MQTT broker."}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_mqtt_broker_messages_total",
			Help: "Messages taken from the MQTT broker by topic (readings, symptoms, other) and HTTP status of their answer."},
			[]string{"topic", "status"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tend_mqtt_broker_ack_seconds", Help: "Time from a broker message's arrival to its acknowledgement (after commit).",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}}),
	}
	for _, c := range []prometheus.Collector{m.connected, m.messages, m.ackLatency} {
		if err := reg.Register(c); err != nil {
			return m, err
		}
	}
	return m, nil
}

// Start connects and subscribes, then stays connected (reconnecting after
// RetryDelay) until Close or ctx ends. It returns once subscribed, or the
// first connection's error.
func (b *BrokerClient) Start(ctx context.Context) error {
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c, err := b.connect(ctx)
	if err != nil {
		b.cancel()
		return err
	}
	b.wg.Add(1)
	go b.run(ctx, c)
	return nil
}

// Close disconnects; messages being ingested finish first.
func (b *BrokerClient) Close() {
	if b.cancel != nil {
		b.cancel()
		b.wg.Wait()
	}
}

// run keeps the client connected until ctx ends.
func (b *BrokerClient) run(ctx context.Context, c *paho.Client) {
	defer b.wg.Done()
	for {
		select {
		case <-ctx.Done():
			_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
			return
		case <-c.Done():
		}
		b.m.connected.Set(0)
		b.log.Warn("broker connection lost; reconnecting")
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.cfg.RetryDelay):
			}
			var err error
			if c, err = b.connect(ctx); err == nil {
				break
			}
			b.log.Warn("broker reconnect", "error", err)
		}
	}
}

// connect opens a session that the broker keeps across reconnects (so it
// delivers again what was not acknowledged) and subscribes at QoS 1.
func (b *BrokerClient) connect(ctx context.Context) (*paho.Client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	var nc net.Conn
	var err error
	if b.cfg.TLS != nil {
		nc, err = tls.DialWithDialer(&d, "tcp", b.cfg.Addr, b.cfg.TLS)
	} else {
		nc, err = d.DialContext(ctx, "tcp", b.cfg.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("mqtt broker %s: %w", b.cfg.Addr, err)
	}
	var c *paho.Client
	c = paho.NewClient(paho.ClientConfig{ClientID: b.cfg.ClientID, Conn: nc, EnableManualAcknowledgment: true,
		SendAcksInterval: 5 * time.Millisecond,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			b.take(ctx, c, pr.Packet)
			return true, nil
		}},
	})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	expiry := uint32(600)
	ca, err := c.Connect(cctx, &paho.Connect{ClientID: b.cfg.ClientID, KeepAlive: 30, CleanStart: false,
		Username: b.cfg.Username, UsernameFlag: b.cfg.Username != "", Password: []byte(b.cfg.Password),
		PasswordFlag: b.cfg.Password != "", Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("mqtt broker connect: %w (%v)", err, ca)
	}
	sa, err := c.Subscribe(cctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "$share/" + b.cfg.Group + "/" + TopicReadings, QoS: 1},
		{Topic: "$share/" + b.cfg.Group + "/" + TopicSymptoms, QoS: 1}}})
	if err != nil || len(sa.Reasons) != 2 || sa.Reasons[0] > 2 || sa.Reasons[1] > 2 {
		_ = c.Disconnect(&paho.Disconnect{})
		return nil, fmt.Errorf("mqtt broker subscribe: %v %v", err, sa)
	}
	b.m.connected.Set(1)
	return c, nil
}

// take ingests a message on a goroutine of its own (at most Concurrency
// at once) and acknowledges it after: the acknowledgements go to the
// broker in the order the messages came, as MQTT requires.
func (b *BrokerClient) take(ctx context.Context, c *paho.Client, pk *paho.Publish) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.sem }()
		start := b.cfg.Now()
		if !b.ingest(ctx, c, pk) {
			return // not stored and ctx ended: left unacknowledged, the broker delivers it again
		}
		if err := c.Ack(pk); err != nil {
			b.log.Warn("broker ack", "error", err)
			return
		}
		b.m.ackLatency.Observe(b.cfg.Now().Sub(start).Seconds())
	}()
}

// ingest answers one message as HTTP would, retrying while the database is
// unreachable. It reports whether the message was decided (stored, a
// duplicate or refused) and so may be acknowledged; false means ctx ended
// first.
func (b *BrokerClient) ingest(ctx context.Context, c *paho.Client, pk *paho.Publish) bool {
	for {
		ans, a, decided := b.answer(ctx, pk)
		if decided {
			b.respond(ctx, c, pk, a, ans)
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(b.cfg.RetryDelay):
		}
	}
}

// answer authenticates the message's token and hands its body to the API.
func (b *BrokerClient) answer(ctx context.Context, pk *paho.Publish) (api.Answer, engine.Actor, bool) {
	var token, key, respond string
	if pk.Properties != nil {
		respond = pk.Properties.ResponseTopic
		for _, p := range pk.Properties.User {
			switch strings.ToLower(p.Key) {
			case "authorization":
				token = strings.TrimSpace(strings.TrimPrefix(p.Value, "Bearer "))
			case "idempotency-key":
				key = p.Value
			}
		}
	}
	ictx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	var a engine.Actor
	var err error
	if token != "" {
		a, err = b.cfg.Identity.Authenticate(ictx, token)
	}
	switch {
	case token == "" || errors.Is(err, engine.ErrUnauthenticated):
		return problem(http.StatusUnauthorized, "Unauthenticated",
			"the authorization user property must hold the Tend token of a device or patient"), a, true
	case err != nil:
		b.log.Warn("authenticate", "error", err)
		return api.Answer{}, a, false
	case !a.Is(engine.RoleDevice, engine.RolePatient):
		return problem(http.StatusForbidden, "Forbidden", "only device and patient tokens may publish"), a, true
	case respond != "" && !strings.HasPrefix(respond, TopicUsers+a.UserID.String()+"/"):
		return problem(http.StatusForbidden, "Forbidden", "response topic: must be under "+TopicUsers+"{user id}/"), a, true
	}
	if d := b.cfg.API.Allow(a); d > 0 {
		return problem(http.StatusTooManyRequests, "Too many requests",
			"rate limit exceeded; retry in "+strconv.FormatFloat(d.Seconds(), 'f', 1, 64)+" s"), a, true
	}
	var ans api.Answer
	switch pk.Topic {
	case TopicReadings:
		ans = b.cfg.API.DeviceReadings(ictx, a, pk.Payload, api.DeviceOpts{DeriveSourceIDs: true})
	case TopicSymptoms:
		ans = b.cfg.API.DeviceSymptoms(ictx, a, pk.Payload, api.DeviceOpts{IdempotencyKey: key})
	default:
		return problem(http.StatusForbidden, "Forbidden", "topic: publish only to "+TopicReadings+" or "+TopicSymptoms), a, true
	}
	if ans.Retry {
		b.log.Warn("message not stored; trying again", "user_id", a.UserID)
		return ans, a, false
	}
	return ans, a, true
}

func problem(status int, title, detail string) api.Answer {
	return api.Answer{Status: status, Body: api.Problem{Type: "about:blank", Status: status, Title: title, Detail: detail}}
}

// respond publishes the answer on the message's Response Topic (only under
// tend/v1/users/{user id}/) with its Correlation Data, and logs a refusal.
func (b *BrokerClient) respond(ctx context.Context, c *paho.Client, pk *paho.Publish, a engine.Actor, ans api.Answer) {
	b.m.messages.WithLabelValues(topicLabel(pk.Topic), strconv.Itoa(ans.Status)).Inc()
	if !ans.OK() {
		b.log.Info("message refused", "user_id", a.UserID, "topic", topicLabel(pk.Topic), "status", ans.Status,
			"fields", fieldNames(ans))
		if ans.Err != nil {
			b.log.Error("message failed", "error", ans.Err)
		}
	}
	if pk.Properties == nil || pk.Properties.ResponseTopic == "" || a.UserID == uuid.Nil ||
		!strings.HasPrefix(pk.Properties.ResponseTopic, TopicUsers+a.UserID.String()+"/") {
		return
	}
	body, err := json.Marshal(ans.Body)
	if err != nil {
		return
	}
	ct := "application/json"
	if !ans.OK() {
		ct = "application/problem+json"
	}
	pctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	if _, err := c.Publish(pctx, &paho.Publish{Topic: pk.Properties.ResponseTopic, QoS: 1, Payload: body,
		Properties: &paho.PublishProperties{CorrelationData: pk.Properties.CorrelationData, ContentType: ct,
			User: paho.UserProperties{{Key: "status", Value: strconv.Itoa(ans.Status)}}}}); err != nil {
		b.log.Warn("broker answer", "error", err)
	}
}
