package delivery

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// The pushes that ask the patient to measure say what to do in generic
// words: no vital kind, value, symptom or rule, and nothing in the data
// but the notification's id.
func TestMeasurePushesAreGeneric(t *testing.T) {
	for typ, title := range map[string]string{"retake": "Please measure again", "measure": "Please take a reading now"} {
		args := deliverArgs{NotificationID: uuid.New(), DeviceID: uuid.New()}
		m := buildMessage(args, delivery{typ: typ, urgency: "medium"})
		if m.Title != title || m.Body == "" || m.Type != typ {
			t.Errorf("%s: %q / %q", typ, m.Title, m.Body)
		}
		text := strings.ToLower(m.Title + " " + m.Body)
		for _, word := range []string{"spo2", "oxygen", "breath", "cough", "chest", "pressure", "alert"} {
			if strings.Contains(text, word) {
				t.Errorf("%s push says %q: %q", typ, word, text)
			}
		}
		if len(m.Data) != 1 || m.Data["notification_id"] != args.NotificationID.String() {
			t.Errorf("%s push data = %v, want the notification id alone", typ, m.Data)
		}
	}
}
