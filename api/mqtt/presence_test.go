package mqtt_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestMQTTPresence: a device's MQTT connection makes its patient online for
// the care team, until it closes.
func TestMQTTPresence(t *testing.T) {
	w := newWorld(t, worldOpts{})
	get := func(path string) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", w.http.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+w.clinician)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	var threads struct{ Items []struct{ ID, Kind string } }
	if err := json.Unmarshal(get("/v1/threads"), &threads); err != nil {
		t.Fatal(err)
	}
	thread := ""
	for _, th := range threads.Items {
		if th.Kind == "patient" {
			thread = th.ID
		}
	}
	patientState := func() string {
		var out struct {
			Participants []struct {
				Role     string
				Presence *struct{ State string }
			}
		}
		if err := json.Unmarshal(get("/v1/threads/"+thread), &out); err != nil {
			t.Fatal(err)
		}
		for _, p := range out.Participants {
			if p.Role == "patient" && p.Presence != nil {
				return p.Presence.State
			}
		}
		return ""
	}
	if s := patientState(); s != "offline" {
		t.Fatalf("before the device connects: %q", s)
	}
	c, _, err := w.v5(t, "cuff-presence", w.device)
	if err != nil {
		t.Fatal(err)
	}
	if s := patientState(); s != "online" {
		t.Fatalf("while the device is connected: %q", s)
	}
	_ = c.Disconnect(&paho.Disconnect{})
	waitFor(t, 10*time.Second, "the patient offline", func() bool { return patientState() == "offline" })
	if strings.Contains(string(get("/v1/threads/"+thread)), `"state":"online"`) {
		t.Error("someone is still online after the device disconnected")
	}
}
