package mqtt_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// TestMQTTRateLimit: the per-user rate limit HTTP uses refuses with 0x97.
func TestMQTTRateLimit(t *testing.T) {
	w := newWorld(t, worldOpts{rateLimit: 1}) // 1 a second, burst 2
	c, _, err := w.v5(t, "fast", w.device)
	if err != nil {
		t.Fatal(err)
	}
	var codes []byte
	var reason string
	for i := range 4 {
		pr, _ := c.Publish(context.Background(), &paho.Publish{Topic: "tend/v1/readings", QoS: 1,
			Payload: []byte(crisis("fast:" + string(rune('a'+i))))})
		codes = append(codes, pr.ReasonCode)
		if pr.Properties != nil && pr.ReasonCode == 0x97 {
			reason = pr.Properties.ReasonString
		}
	}
	if codes[0] != 0 || codes[3] != 0x97 || !strings.Contains(reason, "rate limit") {
		t.Fatalf("reason codes %x, reason %q; want success first and 0x97 with a Reason String", codes, reason)
	}
}

// TestMQTTTooLarge: a body over the API's limit is refused with 0x95 and
// stored nowhere; the CONNACK announces the listener's Maximum Packet Size,
// and a packet over it closes the connection.
func TestMQTTTooLarge(t *testing.T) {
	w := newWorld(t, worldOpts{})
	r := w.raw(t, "big", w.device)
	body := `{"kind":"spo2","value":97,"unit":"%","observed_at":"2026-01-01T00:00:00Z","source_id":"` + strings.Repeat("a", 1<<20) + `"}`
	if code := r.publish("tend/v1/readings", 3, false, body); code != 0x95 {
		t.Fatalf("body over the limit: %#x, want 0x95", code)
	}
	// Only the fixed header of a 2 MB PUBLISH (Paho encodes it): the
	// listener refuses it from its announced length, before the body.
	var enc bytes.Buffer
	huge := &packets.Publish{Topic: "tend/v1/readings", QoS: 1, PacketID: 4, Payload: make([]byte, 2<<20), Properties: &packets.Properties{}}
	if _, err := huge.WriteTo(&enc); err != nil {
		t.Fatal(err)
	}
	if _, err := r.nc.Write(enc.Bytes()[:5]); err != nil {
		t.Fatal(err)
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if cp, err := packets.ReadPacket(r.nc); err == nil {
		t.Fatalf("packet over the limit: the connection stayed open (%v)", cp)
	}
	if rs := w.readings(t); len(rs) != 0 {
		t.Fatalf("%d readings, want 0", len(rs))
	}
}

// TestMQTTQoS2: PUBREC after commit, the flow completes with PUBCOMP; a
// refusal is a PUBREC with its reason code.
func TestMQTTQoS2(t *testing.T) {
	w := newWorld(t, worldOpts{})
	c, _, err := w.v5(t, "q2", w.device)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: "tend/v1/readings", QoS: 2, Payload: []byte(crisis("q2:1"))})
	if err != nil || pr.ReasonCode != 0 {
		t.Fatalf("QoS 2: %v %+v", err, pr)
	}
	if rs := w.readings(t); len(rs) != 1 {
		t.Fatalf("%d readings, want 1", len(rs))
	}
	pr, _ = c.Publish(ctx, &paho.Publish{Topic: "tend/v1/readings", QoS: 2, Payload: []byte(`{"kind":"spo2"}`)})
	if pr == nil || pr.ReasonCode != 0x99 || !strings.Contains(pr.Properties.ReasonString, "observed_at") {
		t.Fatalf("refused QoS 2: %+v", pr)
	}
}
