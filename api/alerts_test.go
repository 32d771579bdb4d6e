package api_test

import (
	"net/http"
	"testing"
)

// The note sent with an acknowledgement is kept on the alert's event, and a
// note sent with a repeated acknowledgement is kept too.
func TestAckNoteIsStored(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	doc := w.actors["clinician"]
	path := "/v1/alerts/" + w.alert["A"]
	if r := doc.do("POST", path+"/ack", map[string]any{"note": "calling the patient now"}); r.status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	if r := doc.do("POST", path+"/ack", map[string]any{"note": "no answer; left a voicemail"}); r.status != http.StatusOK {
		t.Fatalf("second ack: %d %s", r.status, r.body)
	}
	var d struct {
		Events []struct{ Action, Note string }
	}
	doc.do("GET", path, nil).decode(t, &d)
	notes := map[string]string{}
	for _, e := range d.Events {
		notes[e.Action] = e.Note
	}
	if notes["acknowledged"] != "calling the patient now" || notes["noted"] != "no answer; left a voicemail" {
		t.Fatalf("events = %+v", d.Events)
	}
}
