package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tendhealth/tend/api/mqtt"
	"github.com/tendhealth/tend/api/mqtt/mqtttest"
	"github.com/tendhealth/tend/engine"
)

// brokerDevice connects a device to the broker (not to Tend), subscribed
// to its user's answer topic.
func brokerDevice(t *testing.T, addr, clientID, userID string) *session {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &session{id: clientID, got: make(chan *paho.Publish, 10)}
	s.Client = paho.NewClient(paho.ClientConfig{ClientID: clientID, Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			s.got <- pr.Packet
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Connect(ctx, &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Disconnect(&paho.Disconnect{}) })
	if _, err := s.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: mqtt.TopicUsers + userID + "/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBrokerClientMode: Tend joins a Mosquitto broker as a client with a
// shared subscription. A device publishes its reading to the broker with
// its Tend token in a user property: the reading is stored once, its
// redelivery is a duplicate, the answer comes back on the device's answer
// topic; a message without a valid token stores nothing.
func TestBrokerClientMode(t *testing.T) {
	addr := mqtttest.StartMosquitto(t)
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	for i := range 2 { // two processes share the subscription
		bc, err := mqtt.NewBrokerClient(mqtt.BrokerConfig{Addr: addr, ClientID: fmt.Sprintf("tend-%d", i), API: w.api,
			Identity: w.eng, RetryDelay: 100 * time.Millisecond, Registerer: regs[i]})
		if err != nil {
			t.Fatal(err)
		}
		if err := bc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bc.Close)
	}
	dev := brokerDevice(t, addr, "cuff-broker", w.deviceID.String())
	answers := mqtt.TopicUsers + w.deviceID.String() + "/answers"
	send := func(token, body string) (int, map[string]json.RawMessage) {
		t.Helper()
		props := &paho.PublishProperties{ResponseTopic: answers, CorrelationData: []byte(body[:8])}
		if token != "" {
			props.User = paho.UserProperties{{Key: "authorization", Value: "Bearer " + token}}
		}
		if _, err := dev.Publish(ctx, &paho.Publish{Topic: mqtt.TopicReadings, QoS: 1, Payload: []byte(body), Properties: props}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-dev.got:
			var out map[string]json.RawMessage
			_ = json.Unmarshal(m.Payload, &out)
			status, _ := strconv.Atoi(m.Properties.User.Get("status"))
			return status, out
		case <-time.After(10 * time.Second):
			return 0, nil
		}
	}
	if status, ans := send(w.device, crisis("broker:1")); status != 201 || len(ans["alerts"]) < 3 {
		t.Fatalf("first publish: %d %s", status, ans)
	}
	if status, _ := send(w.device, crisis("broker:1")); status != 200 {
		t.Errorf("the same source_id again: %d, want 200 (duplicate)", status)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings stored, want 1", len(rs))
	}
	// Without a token, or with a bad one: nothing stored, and no answer
	// reaches a user's topic (the sender is nobody's).
	for _, tok := range []string{"", "not-a-token"} {
		if _, err := dev.Publish(ctx, &paho.Publish{Topic: mqtt.TopicReadings, QoS: 1, Payload: []byte(crisis("broker:2")),
			Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "authorization", Value: "Bearer " + tok}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// An invalid body is answered 422 naming the field.
	if status, ans := send(w.device, `{"kind":"heart_rate","unit":"/min","observed_at":"2026-01-01T00:00:00Z"}`); status != 422 ||
		!json.Valid(ans["errors"]) {
		t.Errorf("invalid body: %d %s", status, ans)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Errorf("%d readings stored after refused messages, want 1", len(rs))
	}
	// Metrics, summed over the two processes: each message by its answer's
	// status, each acknowledgement's latency, both connected.
	waitFor(t, 5*time.Second, "the refused messages to be counted", func() bool {
		return brokerMetric(t, regs, "tend_mqtt_broker_messages_total", "401") == 2
	})
	for status, want := range map[string]float64{"201": 1, "200": 1, "422": 1} {
		if n := brokerMetric(t, regs, "tend_mqtt_broker_messages_total", status); n != want {
			t.Errorf("messages answered %s: %v, want %v", status, n, want)
		}
	}
	if n := brokerMetric(t, regs, "tend_mqtt_broker_ack_seconds", ""); n != 5 {
		t.Errorf("acknowledgements timed: %v, want 5", n)
	}
	if n := brokerMetric(t, regs, "tend_mqtt_broker_connected", ""); n != 2 {
		t.Errorf("connected: %v, want 2", n)
	}
}

// brokerMetric sums a metric over the registries: a counter's value for
// the status label (if given), a gauge's value, a histogram's count.
func brokerMetric(t *testing.T, regs []*prometheus.Registry, name, status string) float64 {
	t.Helper()
	var sum float64
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				matches := status == ""
				for _, l := range m.GetLabel() {
					matches = matches || (l.GetName() == "status" && l.GetValue() == status)
				}
				if matches {
					sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return sum
}

// held authenticates only once released: a message in its hands has not
// been ingested.
type held struct {
	mqtt.Identity
	release chan struct{}
	arrived chan struct{}
}

func (h *held) Authenticate(ctx context.Context, token string) (engine.Actor, error) {
	select {
	case h.arrived <- struct{}{}:
	default:
	}
	select {
	case <-h.release:
		return h.Identity.Authenticate(ctx, token)
	case <-ctx.Done():
		return engine.Actor{}, ctx.Err()
	}
}

// TestBrokerClientAcksAfterCommit: a message Tend took but had not stored
// when it went away is not acknowledged to the broker, which delivers it
// again when Tend comes back (the same session): stored once, not lost.
func TestBrokerClientAcksAfterCommit(t *testing.T) {
	addr := mqtttest.StartMosquitto(t)
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	h := &held{Identity: w.eng, release: make(chan struct{}), arrived: make(chan struct{}, 1)}
	first, err := mqtt.NewBrokerClient(mqtt.BrokerConfig{Addr: addr, ClientID: "tend-a", API: w.api, Identity: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dev := brokerDevice(t, addr, "cuff-held", w.deviceID.String())
	if _, err := dev.Publish(ctx, &paho.Publish{Topic: mqtt.TopicReadings, QoS: 1, Payload: []byte(crisis("held:1")),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "authorization", Value: "Bearer " + w.device}}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the message did not reach Tend")
	}
	first.Close() // gone before the commit
	if rs := w.readings(t); len(rs) != 0 {
		t.Fatalf("%d readings stored, want none yet", len(rs))
	}
	close(h.release)
	again, err := mqtt.NewBrokerClient(mqtt.BrokerConfig{Addr: addr, ClientID: "tend-a", API: w.api, Identity: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	waitFor(t, 10*time.Second, "the broker to deliver the message again", func() bool { return len(w.readings(t)) == 1 })
	time.Sleep(300 * time.Millisecond)
	if rs := w.readings(t); len(rs) != 1 {
		t.Errorf("%d readings stored, want 1", len(rs))
	}
}
