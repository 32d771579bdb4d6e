package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tendhealth/tend/engine"
)

// answer is the JSON answer of a readings publish (as HTTP's).
type answer struct {
	Readings []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"readings"`
	Alerts []struct {
		ID      string `json:"id"`
		Urgency string `json:"urgency"`
	} `json:"alerts"`
	Status int `json:"status"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func crisis(source string) string {
	return fmt.Sprintf(`{"kind":"blood_pressure","systolic":246,"diastolic":142,"unit":"mm[Hg]","observed_at":%q,"source_id":%q}`,
		time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), source)
}

// request publishes body at QoS 1 with a Response Topic and returns the
// PUBACK's reason code and string, and the answer with its status.
func request(t *testing.T, c *session, topic, body string) (byte, string, int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	corr := []byte(fmt.Sprintf("req-%d", time.Now().UnixNano()))
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(body),
		Properties: &paho.PublishProperties{ResponseTopic: "tend/v1/devices/" + c.id + "/answers", CorrelationData: corr}})
	if pr == nil {
		t.Fatalf("publish: %v", err)
	}
	var reason string
	if pr.Properties != nil {
		reason = pr.Properties.ReasonString
	}
	select {
	case m := <-c.got:
		if !bytes.Equal(m.Properties.CorrelationData, corr) {
			t.Fatalf("correlation data = %q, want %q", m.Properties.CorrelationData, corr)
		}
		var status int
		_, _ = fmt.Sscan(m.Properties.User.Get("status"), &status)
		return pr.ReasonCode, reason, status, m.Payload
	case <-time.After(5 * time.Second):
		return pr.ReasonCode, reason, 0, nil
	}
}

func TestMQTT5Answers(t *testing.T) {
	w := newWorld(t, worldOpts{})
	c, _, err := w.v5(t, "cuff-1", w.device)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "tend/v1/devices/cuff-1/#", QoS: 1}, {Topic: "tend/v1/devices/cuff-2/#", QoS: 1},
		{Topic: "tend/v1/readings", QoS: 1}, {Topic: "tend/v1/devices/+/asks", QoS: 1}}})
	if sa == nil {
		t.Fatalf("subscribe: %v", err)
	}
	if want := []byte{1, 0x87, 0x87, 0x87}; !bytes.Equal(sa.Reasons, want) {
		t.Fatalf("SUBACK reasons = %x, want %x (only the client's own tree)", sa.Reasons, want)
	}

	code, _, status, body := request(t, c, "tend/v1/readings", crisis("cuff-77:1"))
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || code != 0 || status != 201 {
		t.Fatalf("reading: code %#x status %d body %s", code, status, body)
	}
	if len(a.Readings) != 1 || a.Readings[0].Status != "created" || len(a.Alerts) != 1 || a.Alerts[0].Urgency != "critical" {
		t.Fatalf("answer = %s", body)
	}
	// The HTTP API answers the same reading as the duplicate of the one stored.
	hr, err := http.NewRequest("POST", w.http.URL+"/v1/patients/"+w.patientID.String()+"/readings", strings.NewReader(crisis("cuff-77:1")))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+w.device)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var h answer
	if err := json.Unmarshal(hb, &h); err != nil || resp.StatusCode != 200 || h.Readings[0].ID != a.Readings[0].ID || h.Readings[0].Status != "duplicate" {
		t.Fatalf("HTTP answer %d %s; MQTT answer %s", resp.StatusCode, hb, body)
	}

	// The same source_id again over MQTT: a duplicate, answered 200.
	code, _, status, body = request(t, c, "tend/v1/readings", crisis("cuff-77:1"))
	if code != 0 || status != 200 || !strings.Contains(string(body), `"duplicate"`) {
		t.Fatalf("duplicate: code %#x status %d %s", code, status, body)
	}
	if n := len(w.readings(t)); n != 1 {
		t.Fatalf("%d readings stored, want 1", n)
	}

	// Symptom reports are the patient's (a device's are refused, as over HTTP).
	code, _, status, body = request(t, c, "tend/v1/symptoms", `{"symptoms":[{"code":"chest_pain","severity":6}]}`)
	if code != 0x87 || status != 403 {
		t.Fatalf("device's symptom report: %#x %d %s", code, status, body)
	}
	// Another user may not take the client identifier.
	if _, ca, err := w.v5(t, "cuff-1", w.patient); err == nil || ca == nil || ca.ReasonCode != 0x85 {
		t.Fatalf("a second user took the client identifier cuff-1: %v %+v", err, ca)
	}
	p, _, err := w.v5(t, "phone-1", w.patient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "tend/v1/devices/phone-1/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	code, _, status, body = request(t, p, "tend/v1/symptoms", `{"symptoms":[{"code":"chest_pain","severity":6}]}`)
	if code != 0 || status != 201 || !strings.Contains(string(body), `"critical"`) {
		t.Fatalf("symptom report: %#x %d %s", code, status, body)
	}
}

// TestMQTT5Refusals: each refusal carries its reason code and a Reason
// String naming the field or topic, and the problem on the response topic.
func TestMQTT5Refusals(t *testing.T) {
	w := newWorld(t, worldOpts{})
	c, _, err := w.v5(t, "cuff-1", w.device)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "tend/v1/devices/cuff-1/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, topic, body string
		code              byte
		reason            string
		status            int
	}{
		{"bad value", "tend/v1/readings", `{"kind":"blood_pressure","systolic":"high","diastolic":80,"unit":"mm[Hg]","observed_at":"2026-01-01T00:00:00Z"}`, 0x99, "systolic", 422},
		{"implausible", "tend/v1/readings", `{"kind":"spo2","value":140,"unit":"%","observed_at":"2026-01-01T00:00:00Z"}`, 0x99, "value", 422},
		{"not json", "tend/v1/readings", `{"kind":`, 0x99, "Malformed JSON", 400},
		{"unknown field", "tend/v1/readings", `{"kind":"spo2","value":97,"unit":"%","observed_at":"2026-01-01T00:00:00Z","x":1}`, 0x99, "x", 400},
		{"another patient", "tend/v1/readings", `{"patient_id":"00000000-0000-0000-0000-000000000001","kind":"spo2","value":97,"unit":"%","observed_at":"2026-01-01T00:00:00Z"}`, 0x87, "patient_id", 404},
		{"other topic", "tend/v1/alerts", `{}`, 0x87, "topic", 0},
		{"symptom without severity", "tend/v1/symptoms", `{"symptoms":[{"code":"chest_pain"}]}`, 0x99, "symptoms[0].severity", 422},
	} {
		code, reason, status, body := request(t, c, tc.topic, tc.body)
		if code != tc.code || !strings.Contains(reason, tc.reason) || status != tc.status {
			t.Errorf("%s: PUBACK %#x %q, answer %d %s; want %#x naming %q, answer %d", tc.name, code, reason, status, body,
				tc.code, tc.reason, tc.status)
		}
	}
	if n := len(w.readings(t)); n != 0 {
		t.Fatalf("%d readings stored after refusals, want 0", n)
	}
	if n := w.metric(t, "tend_mqtt_publishes_total", "topic", "readings", "outcome", "invalid"); n != 4 {
		t.Errorf("invalid readings counted %v, want 4", n)
	}

}

// TestMQTT5ResponseTopicOutsideTree: a device may not have answers sent
// to another client's topics.
func TestMQTT5ResponseTopicOutsideTree(t *testing.T) {
	w := newWorld(t, worldOpts{})
	c, _, err := w.v5(t, "cuff-1", w.device)
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := c.Publish(context.Background(), &paho.Publish{Topic: "tend/v1/readings", QoS: 1, Payload: []byte(crisis("x:1")),
		Properties: &paho.PublishProperties{ResponseTopic: "tend/v1/devices/cuff-2/answers"}})
	if pr == nil || pr.ReasonCode != 0x87 || !strings.Contains(pr.Properties.ReasonString, "response topic") {
		t.Fatalf("PUBACK = %+v", pr)
	}
	if n := len(w.readings(t)); n != 0 {
		t.Fatalf("%d readings stored, want 0", n)
	}
}

// TestMQTT5Connect: only device and patient tokens connect; a revoked
// token or a disabled user is refused; a live connection closes within a
// second of its token's revocation.
func TestMQTT5Connect(t *testing.T) {
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	for name, tok := range map[string]string{"unknown": "tend_nope", "clinician": w.clinician, "empty": ""} {
		if _, ca, err := w.v5(t, "c-"+name, tok); err == nil || ca == nil || ca.ReasonCode < 0x80 {
			t.Errorf("%s token: connected (%v, %+v)", name, err, ca)
		}
	}
	c, _, err := w.v5(t, "cuff-1", w.device)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := w.eng.ListTokens(ctx, w.admin, w.deviceID)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v %v", toks, err)
	}
	if err := w.eng.RevokeToken(ctx, w.admin, toks[0].ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	select {
	case d := <-c.disc:
		if since := time.Since(revoked); since > time.Second || d.ReasonCode != 0x87 {
			t.Errorf("closed %v after the revocation with %#x, want within 1s with 0x87", since, d.ReasonCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection stayed open after its token was revoked")
	}
	if _, ca, err := w.v5(t, "cuff-1", w.device); err == nil || ca == nil || ca.ReasonCode != 0x86 {
		t.Errorf("revoked token: %v %+v", err, ca)
	}
	// A disabled user's other token is refused too.
	tok := w.token(t, w.deviceID)
	if _, err := w.eng.SetUserDisabled(ctx, w.admin, w.deviceID, true); err != nil {
		t.Fatal(err)
	}
	if _, ca, err := w.v5(t, "cuff-1", tok); err == nil || ca == nil || ca.ReasonCode != 0x86 {
		t.Errorf("disabled user: %v %+v", err, ca)
	}
	if n := w.metric(t, "tend_mqtt_revoked_total"); n != 1 {
		t.Errorf("revocations counted %v, want 1", n)
	}
}

// TestMQTT5Asks: a reading that waits for a retake sends the request to
// the device on tend/v1/devices/{client}/asks.
func TestMQTT5Asks(t *testing.T) {
	w := newWorld(t, worldOpts{})
	c, _, err := w.v5(t, "oxi-1", w.device)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "tend/v1/devices/oxi-1/asks", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	// Heart rate 140 is past hr-high's threshold but not its hard limit:
	// the default pack asks for a retake first.
	body := fmt.Sprintf(`{"kind":"heart_rate","value":140,"unit":"/min","observed_at":%q}`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	if pr, err := c.Publish(ctx, &paho.Publish{Topic: "tend/v1/readings", QoS: 1, Payload: []byte(body)}); err != nil || pr.ReasonCode != 0 {
		t.Fatalf("publish: %v %+v", err, pr)
	}
	select {
	case m := <-c.got:
		var ask struct {
			Retakes []engine.RetakeRef `json:"retakes"`
		}
		if m.Topic != "tend/v1/devices/oxi-1/asks" || json.Unmarshal(m.Payload, &ask) != nil || len(ask.Retakes) != 1 {
			t.Fatalf("ask on %s: %s", m.Topic, m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no retake request")
	}
}
