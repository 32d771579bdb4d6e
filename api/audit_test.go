package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"
)

type auditPage struct {
	Items []struct {
		ID         int64          `json:"id"`
		ActorID    *string        `json:"actor_id"`
		ActorRole  string         `json:"actor_role"`
		Action     string         `json:"action"`
		PatientID  *string        `json:"patient_id"`
		ObjectType string         `json:"object_type"`
		ObjectID   *string        `json:"object_id"`
		RequestID  *string        `json:"request_id"`
		Outcome    string         `json:"outcome"`
		Seq        *int64         `json:"seq"`
		Detail     map[string]any `json:"detail"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// A refused read (another team's patient, answered 404) is audited with
// outcome "refused", naming the patient and the request id; the audit
// listing filters by actor, action, patient and time, pages, and is itself
// audited; sealing gives every entry its seq.
func TestAuditTrailAPI(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	stranger := s.admin.as(s.userToken(t, map[string]any{"name": "Dr Stranger", "role": "clinician"}))
	strangerID := s.lastUserID
	start := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	r := stranger.do("GET", "/v1/patients/"+s.patientID, nil)
	wantProblem(t, r, http.StatusNotFound)
	reqID := r.header.Get("X-Request-Id")
	wantProblem(t, s.clinician.do("GET", "/v1/audit", nil), http.StatusForbidden)
	// Bad input is refused and audits nothing.
	wantProblem(t, s.admin.do("GET", "/v1/audit?actor_id=nope", nil), http.StatusUnprocessableEntity, "actor_id")
	wantProblem(t, s.admin.do("GET", "/v1/audit?since=yesterday", nil), http.StatusUnprocessableEntity, "since")

	var page auditPage
	q := url.Values{"actor_id": {strangerID}, "since": {start}}
	s.admin.do("GET", "/v1/audit?"+q.Encode(), nil).decode(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("the stranger's entries: %+v", page.Items)
	}
	e := page.Items[0]
	if e.Outcome != "refused" || e.Action != "request.refused" || e.PatientID == nil || *e.PatientID != s.patientID ||
		e.RequestID == nil || *e.RequestID != reqID || e.ActorRole != "clinician" || e.Detail["status"] != float64(404) {
		t.Fatalf("refusal entry: %+v", e)
	}
	// Filters combine; the future holds nothing.
	s.admin.do("GET", "/v1/audit?action=patient.create&patient_id="+s.patientID, nil).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Outcome != "ok" {
		t.Fatalf("patient.create entries: %+v", page.Items)
	}
	s.admin.do("GET", "/v1/audit?since="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), nil).decode(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("entries from the future: %+v", page.Items)
	}
	// The clinician's refused audit read is recorded too.
	s.admin.do("GET", "/v1/audit?action=request.refused&since="+url.QueryEscape(start), nil).decode(t, &page)
	if len(page.Items) != 2 {
		t.Fatalf("refusals: %+v", page.Items)
	}
	// Listing is audited.
	s.admin.do("GET", "/v1/audit?action=audit.list", nil).decode(t, &page)
	if len(page.Items) < 4 || page.Items[0].Detail["count"] == nil {
		t.Fatalf("audit.list entries: %+v", page.Items)
	}
	// Cursor paging walks everything once, and after sealing every entry has its seq.
	if _, err := s.eng.SealAudit(context.Background(), 10_000); err != nil {
		t.Fatal(err)
	}
	seen, cursor := map[int64]bool{}, ""
	for range 100 {
		path := "/v1/audit?limit=3"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var p auditPage
		s.admin.do("GET", path, nil).decode(t, &p)
		for _, it := range p.Items {
			if seen[it.ID] {
				t.Fatalf("entry %d twice", it.ID)
			}
			seen[it.ID] = true
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
	}
	var first auditPage
	s.admin.do("GET", "/v1/audit?limit=1", nil).decode(t, &first)
	if first.Items[0].Seq == nil || *first.Items[0].Seq != 1 {
		t.Fatalf("first entry after sealing: %+v", first.Items[0])
	}
	if len(seen) < 10 {
		t.Fatalf("paged through %d entries", len(seen))
	}
}

// TestAuditNewestFirst: ?order=newest lists the newest entries first, and
// its cursor pages back in time without gaps or repeats.
func TestAuditNewestFirst(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	for range 3 {
		s.clinician.do("GET", "/v1/patients/"+s.patientID, nil)
	}
	var all auditPage
	s.admin.do("GET", "/v1/audit?limit=500", nil).decode(t, &all)
	var first, second auditPage
	s.admin.do("GET", "/v1/audit?order=newest&limit=2", nil).decode(t, &first)
	if len(all.Items) == 0 || len(first.Items) != 2 || first.NextCursor == nil || first.Items[0].ID <= first.Items[1].ID ||
		first.Items[0].ID <= all.Items[len(all.Items)-1].ID {
		t.Fatalf("newest first: %+v (oldest-first page ends at %d)", first.Items, all.Items[len(all.Items)-1].ID)
	}
	s.admin.do("GET", "/v1/audit?order=newest&limit=2&cursor="+*first.NextCursor, nil).decode(t, &second)
	if len(second.Items) == 0 || second.Items[0].ID >= first.Items[1].ID {
		t.Errorf("the next page does not follow on: %+v after %+v", second.Items, first.Items)
	}
	wantProblem(t, s.admin.do("GET", "/v1/audit?order=sideways", nil), http.StatusUnprocessableEntity, "order")
}
