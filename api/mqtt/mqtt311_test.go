package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tendhealth/tend/engine"
)

// v3 connects an MQTT 3.1.1 client (Eclipse Paho) with the token; lost
// receives the error that ended the connection.
func (w *world) v3(t testing.TB, clientID, token string) (pahov3.Client, <-chan error, error) {
	t.Helper()
	lost := make(chan error, 1)
	opts := pahov3.NewClientOptions().AddBroker("tcp://" + w.mqtt.Addr()).SetClientID(clientID).
		SetUsername("device").SetPassword(token).SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetConnectionLostHandler(func(_ pahov3.Client, err error) { lost <- err })
	c := pahov3.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("connect timed out")
	}
	if tok.Error() == nil {
		t.Cleanup(func() { c.Disconnect(100) })
	}
	return c, lost, tok.Error()
}

func TestMQTT311(t *testing.T) {
	w := newWorld(t, worldOpts{})
	if _, _, err := w.v3(t, "old-1", "tend_revoked"); err == nil {
		t.Fatal("an unknown token connected")
	}
	c, lost, err := w.v3(t, "old-1", w.device)
	if err != nil {
		t.Fatal(err)
	}
	w.willIsDropped(t)
	st := c.Subscribe("tend/v1/devices/old-2/#", 1, nil)
	st.WaitTimeout(5 * time.Second)
	if res := st.(*pahov3.SubscribeToken).Result()["tend/v1/devices/old-2/#"]; res != 0x80 {
		t.Errorf("subscribing to another client's tree: %#x, want 0x80 (refused)", res)
	}
	for range 2 { // the same source_id twice: one reading
		pt := c.Publish("tend/v1/readings", 1, false, crisis("old:1"))
		if !pt.WaitTimeout(10*time.Second) || pt.Error() != nil {
			t.Fatalf("publish: %v", pt.Error())
		}
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings, want 1", len(rs))
	}
	alerts, _, err := w.eng.ListAlerts(context.Background(), w.admin, engine.AlertFilter{PatientID: w.patientID})
	if err != nil || len(alerts) != 1 || alerts[0].Urgency != "critical" {
		t.Fatalf("alerts = %+v, %v", alerts, err)
	}
	// Bad input: 3.1.1 has no reason codes, so the connection is closed,
	// and the refusal counted.
	c.Publish("tend/v1/readings", 1, false, `{"kind":"spo2","value":"low","unit":"%","observed_at":"2026-01-01T00:00:00Z"}`)
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection stayed open after a bad payload")
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings after a bad payload, want 1", len(rs))
	}
	if n := w.metric(t, "tend_mqtt_publishes_total", "outcome", "invalid"); n != 1 {
		t.Errorf("invalid publishes counted %v, want 1", n)
	}
	// Logged with ids and field names, never values or tokens.
	logs := w.logs.String()
	if !strings.Contains(logs, "publish refused") || !strings.Contains(logs, "fields=[value]") {
		t.Errorf("the refusal is not logged with its field:\n%s", logs)
	}
	for _, secret := range []string{`"low"`, "=low", w.device, "tend_revoked"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	// Revocation closes a live 3.1.1 connection too.
	c, lost, err = w.v3(t, "old-1", w.device)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := w.eng.ListTokens(context.Background(), w.admin, w.deviceID)
	if err := w.eng.RevokeToken(context.Background(), w.admin, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection stayed open after its token was revoked")
	}
	_ = c
}

// raw is a connection that speaks MQTT 5 packet by packet (Eclipse Paho's
// packet codec), to send what a client library sends only after a lost
// acknowledgement: a PUBLISH again with the DUP flag.
type raw struct {
	t  *testing.T
	nc net.Conn
}

func (w *world) raw(t *testing.T, clientID, token string) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", w.mqtt.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.KeepAlive, c.CleanStart = "MQTT", 5, clientID, 30, true
	c.UsernameFlag, c.Username, c.PasswordFlag, c.Password = true, "device", true, []byte(token)
	c.Properties = &packets.Properties{}
	r := &raw{t: t, nc: nc}
	if _, err := cp.WriteTo(nc); err != nil {
		t.Fatal(err)
	}
	ack := r.read()
	if ack.Type != packets.CONNACK || ack.Content.(*packets.Connack).ReasonCode != 0 {
		t.Fatalf("CONNACK: %v", ack)
	}
	if p := ack.Content.(*packets.Connack).Properties; p == nil || p.MaximumPacketSize == nil || *p.MaximumPacketSize < 1<<20 {
		t.Fatalf("CONNACK announces no Maximum Packet Size of at least the API's body limit: %v", ack)
	}
	return r
}

func (r *raw) read() *packets.ControlPacket {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	cp, err := packets.ReadPacket(r.nc)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return cp
}

// publish sends a QoS 1 PUBLISH and returns its PUBACK's reason code.
func (r *raw) publish(topic string, id uint16, dup bool, body string) byte {
	r.t.Helper()
	p := &packets.Publish{Topic: topic, QoS: 1, PacketID: id, Duplicate: dup, Payload: []byte(body), Properties: &packets.Properties{}}
	if _, err := p.WriteTo(r.nc); err != nil {
		r.t.Fatal(err)
	}
	ack := r.read()
	if ack.Type != packets.PUBACK || ack.Content.(*packets.Puback).PacketID != id {
		r.t.Fatalf("got %v, want PUBACK %d", ack, id)
	}
	return ack.Content.(*packets.Puback).ReasonCode
}

// TestMQTTDupFlag: a PUBLISH sent again with the DUP flag (its PUBACK was
// lost) is a duplicate, never a second reading or report — for a reading
// without a source_id too.
func TestMQTTDupFlag(t *testing.T) {
	w := newWorld(t, worldOpts{})
	r := w.raw(t, "cuff-dup", w.device)
	body := fmt.Sprintf(`{"kind":"spo2","value":97,"unit":"%%","observed_at":%q}`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	for _, dup := range []bool{false, true, true} {
		if code := r.publish("tend/v1/readings", 7, dup, body); code != 0 {
			t.Fatalf("PUBACK %#x", code)
		}
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings, want 1", len(rs))
	}
	p := w.raw(t, "phone-dup", w.patient)
	report := `{"symptoms":[{"code":"dizziness","severity":3}]}`
	for _, dup := range []bool{false, true} {
		if code := p.publish("tend/v1/symptoms", 9, dup, report); code != 0 {
			t.Fatalf("PUBACK %#x", code)
		}
	}
	reports, _, err := w.eng.ListSymptomReports(context.Background(), w.admin, engine.SymptomReportFilter{PatientID: w.patientID})
	if err != nil || len(reports) != 1 {
		t.Fatalf("%d symptom reports (%v), want 1", len(reports), err)
	}
	if n := w.metric(t, "tend_mqtt_publishes_total", "outcome", "duplicate"); n != 3 {
		t.Errorf("duplicates counted %v, want 3", n)
	}
}

// TestMQTTQoS0: refused (the connection closed with 0x9B) unless
// configured, because nothing acknowledges it.
func TestMQTTQoS0(t *testing.T) {
	body := fmt.Sprintf(`{"kind":"spo2","value":97,"unit":"%%","observed_at":%q}`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	w := newWorld(t, worldOpts{})
	c, _, err := w.v5(t, "q0", w.device)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(context.Background(), &paho.Publish{Topic: "tend/v1/readings", QoS: 0, Payload: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-c.disc:
		if d.ReasonCode != 0x9B || !strings.Contains(d.Properties.ReasonString, "QoS 0") {
			t.Errorf("DISCONNECT %#x %q", d.ReasonCode, d.Properties.ReasonString)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("QoS 0 publish not refused")
	}
	if rs := w.readings(t); len(rs) != 0 {
		t.Fatalf("%d readings, want 0", len(rs))
	}

	w = newWorld(t, worldOpts{qos0: true})
	if c, _, err = w.v5(t, "q0", w.device); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(context.Background(), &paho.Publish{Topic: "tend/v1/readings", QoS: 0, Payload: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the QoS 0 reading", func() bool { return len(w.readings(t)) == 1 })
}

// TestMQTTWebSocket: MQTT over WebSocket (TEND_MQTT_WS_ADDR), with Paho's
// WebSocket transport.
func TestMQTTWebSocket(t *testing.T) {
	w := newWorld(t, worldOpts{ws: true})
	opts := pahov3.NewClientOptions().AddBroker("ws://" + w.mqtt.WebSocketAddr() + "/mqtt").SetClientID("ws-1").SetUsername("device").
		SetPassword(w.device).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := pahov3.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect over WebSocket: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if pt := c.Publish("tend/v1/readings", 1, false, crisis("ws:1")); !pt.WaitTimeout(10*time.Second) || pt.Error() != nil {
		t.Fatalf("publish: %v", pt.Error())
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings, want 1", len(rs))
	}
}

// willIsDropped: a client's Last Will, aimed at another client's asks,
// never reaches it.
func (w *world) willIsDropped(t *testing.T) {
	t.Helper()
	victim, _, err := w.v5(t, "victim", w.patient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := victim.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "tend/v1/devices/victim/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	// A client with a will, whose connection then breaks (no DISCONNECT):
	// the broker would publish the will.
	nc, err := net.Dial("tcp", w.mqtt.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.KeepAlive, c.CleanStart = "MQTT", 5, "will-1", 30, true
	c.PasswordFlag, c.Password, c.Properties = true, []byte(w.device), &packets.Properties{}
	c.WillFlag, c.WillTopic, c.WillMessage, c.WillQOS, c.WillProperties = true, "tend/v1/devices/victim/asks", []byte(`{"retakes":[]}`), 1, &packets.Properties{}
	if _, err := cp.WriteTo(nc); err != nil {
		t.Fatal(err)
	}
	if ack, err := packets.ReadPacket(nc); err != nil || ack.Type != packets.CONNACK {
		t.Fatalf("CONNACK: %v %v", ack, err)
	}
	nc.Close()
	select {
	case m := <-victim.got:
		t.Fatalf("the victim got %s on %s", m.Payload, m.Topic)
	case <-time.After(time.Second):
	}
}
