package api_test

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/google/uuid"

	"github.com/tendhealth/tend/api/mqtt"
	"github.com/tendhealth/tend/engine"
)

// The matrices' MQTT rows: the listener beside the HTTP server, on the
// same api.Server, answering the same bodies.

// mqttTopics are the topics devices publish to and the routes whose bodies
// they take.
var mqttTopics = map[string]string{
	mqtt.TopicReadings: "POST /v1/patients/{id}/readings",
	mqtt.TopicSymptoms: "POST /v1/patients/{id}/symptom-reports",
}

func (w *world) mqtt() string {
	w.t.Helper()
	eng, err := engine.New(engine.Config{Pool: w.pool, AuthCacheTTL: -1})
	if err != nil {
		w.t.Fatal(err)
	}
	l, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", API: w.srv, Identity: eng})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(l.Close)
	return l.Addr()
}

// mqttConnect connects an MQTT 5 client (Eclipse Paho) with the token.
func mqttConnect(t *testing.T, addr, clientID, token string) (*paho.Client, *paho.Connack, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: nc})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true,
		Password: []byte(token), PasswordFlag: token != ""})
	if err == nil {
		t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	} else {
		nc.Close()
	}
	return c, ca, err
}

// mqttPublish publishes at QoS 1 and returns the PUBACK's reason code and
// Reason String.
func mqttPublish(t *testing.T, c *paho.Client, topic string, body []byte) (byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: body})
	if pr == nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
	if pr.Properties == nil {
		return pr.ReasonCode, ""
	}
	return pr.ReasonCode, pr.Properties.ReasonString
}

// reasonNames reports whether a Reason String ("Title: field: reason; …"
// or "Title: detail") names field, as namesField does for a problem.
func reasonNames(reason, field string) bool {
	_, rest, _ := strings.Cut(reason, ": ")
	var p problem
	for _, part := range strings.Split(rest, "; ") {
		if f, r, ok := strings.Cut(part, ": "); ok {
			p.Errors = append(p.Errors, struct {
				Field  string `json:"field"`
				Reason string `json:"reason"`
			}{f, r})
		}
	}
	p.Detail = rest
	return namesField(p, field)
}

// TestBadInputMatrixMQTT publishes every mutation of the readings and
// symptom-report bodies: each is refused with 0x99 (0x95 when too large)
// and a Reason String naming the field, and nothing is stored, audited or
// queued.
func TestBadInputMatrixMQTT(t *testing.T) {
	w := newWorld(t)
	addr := w.mqtt()
	before := w.counts()
	for _, topic := range slices.Sorted(func(yield func(string) bool) {
		for k := range mqttTopics {
			if !yield(k) {
				return
			}
		}
	}) {
		ep := endpoints[mqttTopics[topic]]
		c, _, err := mqttConnect(t, addr, "matrix-"+ep.actor, w.actors[ep.actor].token)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mutations(t, ep.body(w)) {
			code, reason := mqttPublish(t, c, topic, m.body)
			label := topic + " " + m.name
			if code != 0x99 && code != 0x95 {
				t.Errorf("%s: reason code %#x, want 0x99 or 0x95 (%q)", label, code, reason)
				continue
			}
			if reason == "" || (m.field != "" && !reasonNames(reason, m.field)) {
				t.Errorf("%s: Reason String %q does not name %q", label, reason, m.field)
			}
		}
	}
	after := w.counts()
	for tb, n := range before {
		if after[tb] != n {
			t.Errorf("table %s: %d rows before the bad publishes, %d after", tb, n, after[tb])
		}
	}
	for topic, route := range mqttTopics { // the valid bodies themselves are accepted
		ep := endpoints[route]
		c, _, err := mqttConnect(t, addr, "valid-"+ep.actor, w.actors[ep.actor].token)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ep.body(w))
		if code, reason := mqttPublish(t, c, topic, b); code != 0 {
			t.Errorf("%s with its valid body: %#x %q", topic, code, reason)
		}
	}
}

// TestAuthorizationMatrixMQTT connects as every role: only device and
// patient tokens get in. Each one that does publishes the valid bodies
// and is answered as HTTP answers it (accepted or refused alike); a body
// naming another team's patient is refused exactly like one naming a
// patient that does not exist; other topics and other clients' trees are
// refused.
func TestAuthorizationMatrixMQTT(t *testing.T) {
	w := newOrgsWorld(t)
	addr := w.mqtt()
	roles := slices.Sorted(func(yield func(string) bool) {
		for k := range w.actors {
			if !yield(k) {
				return
			}
		}
	})
	roles = append(roles, "anonymous", "bad token")
	for _, role := range roles {
		tok := w.actors[role].token
		switch role {
		case "anonymous":
			tok = ""
		case "bad token":
			tok = "tend_" + strings.Repeat("x", 40)
		}
		id := "authz-" + strings.ReplaceAll(role, " ", "-")
		c, ca, err := mqttConnect(t, addr, id, tok)
		device := strings.HasPrefix(role, "device") || strings.HasPrefix(role, "patient")
		if !device {
			if err == nil || ca == nil || (ca.ReasonCode != 0x86 && ca.ReasonCode != 0x87) {
				t.Errorf("%s: CONNECT %v %+v, want refused with 0x86 or 0x87", role, err, ca)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: CONNECT: %v", role, err)
		}
		w.mqttRowsAs(t, c, role, id)
	}
}

// mqttRowsAs checks one connected device or patient: the same answers as
// HTTP, refusals that do not tell another team's patient from none, and
// the topic rules.
func (w *world) mqttRowsAs(t *testing.T, c *paho.Client, role, id string) {
	t.Helper()
	own, other := w.patient["A"], w.patient["B"]
	if strings.HasSuffix(role, "B") {
		own, other = other, own
	}
	for topic, route := range mqttTopics {
		body, _ := json.Marshal(w.endpointBody(route))
		code, reason := mqttPublish(t, c, topic, body)
		method, path := w.path(route, own)
		httpStatus := w.send(w.actors[role], method, path, "application/json", body).status
		if (code == 0) != (httpStatus < 300) {
			t.Errorf("%s %s: MQTT %#x %q, HTTP %d", role, topic, code, reason, httpStatus)
		}
		var named map[string]any
		_ = json.Unmarshal(body, &named)
		named["patient_id"] = other
		b, _ := json.Marshal(named)
		oc, or := mqttPublish(t, c, topic, b)
		named["patient_id"] = uuid.NewString()
		b, _ = json.Marshal(named)
		nc, nr := mqttPublish(t, c, topic, b)
		if oc != nc || or != nr || oc < 0x80 {
			t.Errorf("%s %s: another team's patient %#x %q, a nonexistent one %#x %q", role, topic, oc, or, nc, nr)
		}
	}
	if code, _ := mqttPublish(t, c, "tend/v1/alerts", []byte(`{}`)); code != 0x87 {
		t.Errorf("%s: publish elsewhere %#x, want 0x87", role, code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "tend/v1/devices/" + id + "/#", QoS: 1}, {Topic: "tend/v1/devices/#", QoS: 1}, {Topic: "#", QoS: 1}}})
	if sa == nil || len(sa.Reasons) != 3 || sa.Reasons[0] != 1 || sa.Reasons[1] != 0x87 || sa.Reasons[2] != 0x87 {
		t.Errorf("%s: SUBACK %+v %v, want [1 0x87 0x87]", role, sa, err)
	}
}

// endpointBody is a route's valid body in the matrices.
func (w *world) endpointBody(route string) any { return endpoints[route].body(w) }
