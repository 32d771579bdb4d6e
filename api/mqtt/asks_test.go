package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tendhealth/tend/engine"
)

// asks is the body of a message on tend/v1/devices/{client}/asks.
type asks struct {
	Retakes []engine.RetakeRef `json:"retakes"`
}

// subscribeAsks connects a device client to w's listener and subscribes it
// to its own tree.
func (w *world) subscribeAsks(t *testing.T, clientID, token string) *session {
	t.Helper()
	c, _, err := w.v5(t, clientID, token)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := c.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "tend/v1/devices/" + clientID + "/#", QoS: 1}}})
	if err != nil || len(sa.Reasons) != 1 || sa.Reasons[0] != 1 {
		t.Fatalf("subscribe: %v %+v", err, sa)
	}
	return c
}

// nextAsk waits for the next asks message of c with a request c has not
// seen and returns its new requests. A request may arrive twice (made while
// the device subscribed: once as it is made, once among the open ones at
// subscribe); a device knows it by its rule_id and reading_id, and so does
// this.
func nextAsk(t *testing.T, c *session, what string) asks {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.got:
			var a asks
			if m.Topic != "tend/v1/devices/"+c.id+"/asks" || json.Unmarshal(m.Payload, &a) != nil || len(a.Retakes) == 0 {
				t.Fatalf("%s: got %s on %s", what, m.Payload, m.Topic)
			}
			if m.QoS != 1 || m.Properties == nil || m.Properties.ContentType != "application/json" {
				t.Errorf("%s: QoS %d, properties %+v", what, m.QoS, m.Properties)
			}
			var fresh asks
			for _, r := range a.Retakes {
				if key := r.RuleID + "/" + r.ReadingID.String(); !c.seen[key] {
					if c.seen == nil {
						c.seen = map[string]bool{}
					}
					c.seen[key] = true
					fresh.Retakes = append(fresh.Retakes, r)
				}
			}
			if len(fresh.Retakes) > 0 {
				return fresh
			}
		case <-deadline:
			t.Fatalf("%s: no retake request", what)
			return asks{}
		}
	}
}

func ruleIDs(a asks) []string {
	var ids []string
	for _, r := range a.Retakes {
		ids = append(ids, r.RuleID)
	}
	slices.Sort(ids)
	return ids
}

// post sends body to the HTTP API of w with the token and returns the
// decoded answer.
func (w *world) post(t *testing.T, path, token, body string) map[string]json.RawMessage {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMQTT5AsksFromAnyProcess: two processes share one database, and a
// device is connected to the second. The retake requests reach it whatever
// made them: a reading posted over HTTP to the first process, a reading
// published over MQTT to the first process, a symptom report's request to
// measure. A device that subscribes later gets the requests still open.
func TestMQTT5AsksFromAnyProcess(t *testing.T) {
	a := newWorld(t, worldOpts{})
	b := a.another(t)
	dev := b.subscribeAsks(t, "hub-b", a.device)
	at := func() string { return time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) }

	// Over HTTP, on process A: heart rate 140 asks hr-high for a retake.
	ans := a.post(t, "/v1/patients/"+a.patientID.String()+"/readings", a.device,
		fmt.Sprintf(`{"kind":"heart_rate","value":140,"unit":"/min","observed_at":%q}`, at()))
	var read []struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(ans["readings"], &read)
	got := nextAsk(t, dev, "reading over HTTP on another process")
	if ids := ruleIDs(got); !slices.Equal(ids, []string{"hr-high"}) || len(read) != 1 || got.Retakes[0].ReadingID.String() != read[0].ID ||
		got.Retakes[0].Kind != "heart_rate" || !got.Retakes[0].RetakeBy.After(time.Now()) {
		t.Errorf("ask = %+v, reading %+v", got, read)
	}

	// Over MQTT, on process A, by another client of the patient: SpO2 86.
	pub, _, err := a.v5(t, "oxi-a", a.device)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"kind":"spo2","value":86,"unit":"%%","observed_at":%q}`, at())
	if pr, err := pub.Publish(context.Background(), &paho.Publish{Topic: "tend/v1/readings", QoS: 1, Payload: []byte(body)}); err != nil || pr.ReasonCode != 0 {
		t.Fatalf("publish: %v %+v", err, pr)
	}
	if ids := ruleIDs(nextAsk(t, dev, "reading over MQTT on another process")); !slices.Equal(ids, []string{"spo2-critical"}) {
		t.Errorf("ask rules = %v, want spo2-critical", ids)
	}
	if n := a.histogramCount(t, "tend_mqtt_ack_seconds"); n != 1 {
		t.Errorf("process A's ack latency counted %d publishes, want 1", n)
	}
	if n := b.metric(t, "tend_mqtt_asks_total"); n != 2 && n != 3 {
		t.Errorf("process B counted %v asks, want 2 (3 if the first was also among the open ones at subscribe)", n)
	}

	// A device that subscribes afterwards (on either process) is sent the
	// requests still open at once.
	// A request may also reach it live, before or after the open ones,
	// when this process publishes the event after the subscription (a
	// request can arrive twice; rule and reading identify it).
	late := a.subscribeAsks(t, "hub-late", a.device)
	seen := map[string]bool{}
	for len(seen) < 2 {
		for _, id := range ruleIDs(nextAsk(t, late, "open requests at subscribe")) {
			seen[id] = true
		}
	}
	if ids := slices.Sorted(maps.Keys(seen)); !slices.Equal(ids, []string{"hr-high", "spo2-critical"}) {
		t.Errorf("open requests at subscribe = %v, want hr-high and spo2-critical", ids)
	}
	// A subscription that does not cover the asks topic is sent nothing.
	other, _, err := b.v5(t, "hub-answers", a.device)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "tend/v1/devices/hub-answers/answers", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-other.got:
		t.Errorf("a subscription to answers got %s on %s", m.Payload, m.Topic)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestMQTT5AsksFromSymptomReport: a symptom rule's request to measure
// (breathlessness asks a COPD patient for SpO2), reported over HTTP on one
// process, reaches the patient's device on another.
func TestMQTT5AsksFromSymptomReport(t *testing.T) {
	a := newWorld(t, worldOpts{})
	b := a.another(t)
	ctx := context.Background()
	p, err := a.eng.CreatePatient(ctx, a.admin, engine.NewPatient{DisplayName: "Kit Moss", Timezone: "UTC",
		CareTeamID: a.teamID, Programs: []string{"copd"}})
	if err != nil {
		t.Fatal(err)
	}
	oxi := a.token(t, a.user(t, engine.NewUser{Name: "oximeter", Role: engine.RoleDevice, PatientID: p.ID}).ID)
	self := a.token(t, a.user(t, engine.NewUser{Name: "Kit Moss", Role: engine.RolePatient, PatientID: p.ID}).ID)
	dev := b.subscribeAsks(t, "oxi-kit", oxi)
	// The first patient's device on the same process hears nothing of it.
	stranger := b.subscribeAsks(t, "cuff-sam", a.device)

	ans := a.post(t, "/v1/patients/"+p.ID.String()+"/symptom-reports", self, `{"symptoms":[{"code":"shortness_of_breath","severity":5}]}`)
	got := nextAsk(t, dev, "symptom report's request to measure")
	if ids := ruleIDs(got); !slices.Equal(ids, []string{"spo2-ask-breathless"}) || got.Retakes[0].Kind != "spo2" ||
		!strings.Contains(string(ans["id"]), got.Retakes[0].ReadingID.String()) {
		t.Errorf("ask = %+v for report %s", got, ans["id"])
	}
	select {
	case m := <-stranger.got:
		t.Errorf("another patient's device got %s on %s", m.Payload, m.Topic)
	case <-time.After(500 * time.Millisecond):
	}
}

// histogramCount reads the sample count of a histogram of w's registry.
func (w *world) histogramCount(t *testing.T, name string) uint64 {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}
