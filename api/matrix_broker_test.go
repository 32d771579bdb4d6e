package api_test

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tendhealth/tend/api/mqtt"
	"github.com/tendhealth/tend/api/mqtt/mqtttest"
	"github.com/tendhealth/tend/engine"
)

// The matrices' broker-cluster rows: Tend as a client of a Mosquitto
// broker, on the same api.Server, answering the same bodies on the
// sender's answer topic.

// brokerSender publishes to the broker with a token and reads the answers.
type brokerSender struct {
	c      *paho.Client
	got    chan *paho.Publish
	answer string // the Response Topic, under the token's user
	token  string
}

// broker starts a Mosquitto broker and Tend's client of it; it returns a
// function that connects a sender with a token.
func (w *world) broker() func(id, token string) *brokerSender {
	w.t.Helper()
	addr := mqtttest.StartMosquitto(w.t)
	eng, err := engine.New(engine.Config{Pool: w.pool, AuthCacheTTL: -1})
	if err != nil {
		w.t.Fatal(err)
	}
	bc, err := mqtt.NewBrokerClient(mqtt.BrokerConfig{Addr: addr, ClientID: "tend-matrix", API: w.srv, Identity: eng})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := bc.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(bc.Close)
	return func(id, token string) *brokerSender {
		user := "nobody"
		if a, err := eng.Authenticate(context.Background(), token); err == nil {
			user = a.UserID.String()
		}
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			w.t.Fatal(err)
		}
		s := &brokerSender{got: make(chan *paho.Publish, 10), answer: mqtt.TopicUsers + user + "/answers", token: token}
		s.c = paho.NewClient(paho.ClientConfig{Conn: nc, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { s.got <- pr.Packet; return true, nil }}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
			w.t.Fatal(err)
		}
		w.t.Cleanup(func() { _ = s.c.Disconnect(&paho.Disconnect{}) })
		if _, err := s.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: s.answer, QoS: 1}}}); err != nil {
			w.t.Fatal(err)
		}
		return s
	}
}

// send publishes body with the sender's token and returns the answer's
// status and problem (status 0: no answer within 3 s).
func (s *brokerSender) send(t *testing.T, topic string, body []byte) (int, problem) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	corr := strconv.FormatInt(time.Now().UnixNano(), 10)
	if _, err := s.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: body, Properties: &paho.PublishProperties{
		ResponseTopic: s.answer, CorrelationData: []byte(corr),
		User: paho.UserProperties{{Key: "authorization", Value: "Bearer " + s.token}}}}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-s.got:
			if string(m.Properties.CorrelationData) != corr {
				continue
			}
			var p problem
			_ = json.Unmarshal(m.Payload, &p)
			status, _ := strconv.Atoi(m.Properties.User.Get("status"))
			return status, p
		case <-time.After(3 * time.Second):
			return 0, problem{}
		}
	}
}

// TestBadInputMatrixBroker sends the matrix's bad reading and symptom-report
// bodies through the broker: each is answered as HTTP answers it (400, 413,
// 415 or 422 naming the field), and nothing is stored, audited or queued.
// Then every role publishes the valid bodies: answered with HTTP's status
// for the role, and a token that is no token is answered nowhere.
func TestBadInputMatrixBroker(t *testing.T) {
	w := newWorld(t)
	connect := w.broker()
	before := w.counts()
	for _, topic := range slices.Sorted(maps.Keys(mqttTopics)) {
		ep := endpoints[mqttTopics[topic]]
		s := connect("bad-"+ep.actor, w.actors[ep.actor].token)
		for _, m := range mutations(t, ep.body(w)) {
			status, p := s.send(t, topic, m.body)
			label := topic + " " + m.name
			if !slices.Contains([]int{400, 413, 415, 422}, status) {
				t.Errorf("%s: status %d, want 400, 413, 415 or 422", label, status)
				continue
			}
			if m.field != "" && !namesField(p, m.field) {
				t.Errorf("%s: problem %+v does not name %q", label, p, m.field)
			}
		}
	}
	after := w.counts()
	for tb, n := range before {
		if after[tb] != n {
			t.Errorf("table %s: %d rows before the bad publishes, %d after", tb, n, after[tb])
		}
	}
	for _, role := range slices.Sorted(maps.Keys(w.actors)) {
		s := connect("authz-"+strings.ReplaceAll(role, " ", "-"), w.actors[role].token)
		for topic, route := range mqttTopics {
			body, _ := json.Marshal(w.endpointBody(route))
			status, p := s.send(t, topic, body)
			want := w.send(w.actors[role], "POST", mustPath(w, route, role), "application/json", body).status
			if role != "device" && role != "patient" && !strings.HasPrefix(role, "device") && !strings.HasPrefix(role, "patient") {
				want = 403 // other roles may not publish at all
			}
			if status != want && !(want == 200 && status == 201) && !(want == 201 && status == 200) {
				t.Errorf("%s %s: status %d (%s), want %d as over HTTP", role, topic, status, p.Detail, want)
			}
		}
	}
	nobody := connect("nobody", "tend_"+strings.Repeat("x", 40))
	if status, _ := nobody.send(t, mqtt.TopicReadings, []byte(`{}`)); status != 0 {
		t.Errorf("a bad token got an answer: %d", status)
	}
}

// mustPath is the HTTP path of route for role's own patient.
func mustPath(w *world, route, role string) string {
	own := w.patient["A"]
	if strings.HasSuffix(role, "B") {
		own = w.patient["B"]
	}
	_, path := w.path(route, own)
	return path
}
