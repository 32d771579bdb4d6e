package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/engine"
)

// example is a request body shown to readers: in the OpenAPI document or in
// the docs.
type example struct {
	where  string // the document and place, for failures
	method string
	path   string // with placeholders: {id}, $PATIENT, <message id>
	body   any
	actor  string // the token the docs use; empty: any role that may
	status int    // an intentional error example's status; 0: must be accepted
}

// openAPIExamples lists every JSON request-body example of the served
// document: the media type's example and examples, else its schema's.
func openAPIExamples(t *testing.T, doc []byte) []example {
	t.Helper()
	var d struct {
		Components struct {
			Schemas map[string]struct {
				Example any `json:"example"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var out []example
	eachOperation(t, doc, func(path, method string, raw json.RawMessage) {
		var op struct {
			OperationID string `json:"operationId"`
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
					Example  any `json:"example"`
					Examples map[string]struct {
						Value any `json:"value"`
					} `json:"examples"`
				} `json:"content"`
			} `json:"requestBody"`
		}
		if json.Unmarshal(raw, &op) != nil {
			return
		}
		mt, ok := op.RequestBody.Content["application/json"]
		if !ok {
			return
		}
		add := func(name string, body any) {
			out = append(out, example{where: "openapi.yaml " + op.OperationID + " " + name,
				method: strings.ToUpper(method), path: path, body: body})
		}
		if mt.Example != nil {
			add("example", mt.Example)
		}
		for name, ex := range mt.Examples {
			add(name, ex.Value)
		}
		if schema := strings.TrimPrefix(mt.Schema.Ref, "#/components/schemas/"); mt.Example == nil && len(mt.Examples) == 0 && schema != "" {
			if ex := d.Components.Schemas[schema].Example; ex != nil {
				add("schema "+schema, ex)
			}
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].where < out[j].where })
	return out
}

var (
	curlJSON     = regexp.MustCompile(`--json '`)
	curlPath     = regexp.MustCompile(`(?:\$API|http://127\.0\.0\.1:8080)(/[^\s"'\\]*)`)
	curlMethod   = regexp.MustCompile(`-X ([A-Z]+)`)
	curlToken    = regexp.MustCompile(`Bearer \$([A-Z_]+)|"\$H"`)
	errorComment = regexp.MustCompile(`^\s*# → (4\d\d)\b`)
	blockMarker  = regexp.MustCompile(`^<!-- (request: ([A-Z]+) (\S+)|response) -->$`)
)

// markdownExamples lists the request bodies of a Markdown page: each curl
// command's --json '…' (an intentional error example is followed by a
// comment "# → 4xx"), and each ```json block marked <!-- request: METHOD
// PATH --> (a block marked <!-- response --> is an answer; an unmarked one is
// an error). README's tour is left out: TestReadmeTour runs it.
func markdownExamples(t *testing.T, file string) []example {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text, name := string(b), filepath.Base(file)
	if before, after, ok := strings.Cut(text, "## A five-minute tour with curl"); ok {
		_, rest, _ := strings.Cut(after, "\n## ")
		text = before + "\n## " + rest
	}
	var out []example
	for _, loc := range curlJSON.FindAllStringIndex(text, -1) {
		start := strings.LastIndex(text[:loc[0]], "curl ")
		end := strings.Index(text[loc[1]:], "'")
		if start < 0 || end < 0 {
			t.Errorf("%s: a --json body without its curl command or closing quote", name)
			continue
		}
		cmd, raw := text[start:loc[0]], text[loc[1]:loc[1]+end]
		line := strings.Count(text[:loc[0]], "\n") + 1
		ex := example{where: fmt.Sprintf("%s:%d", name, line), method: "POST"}
		if m := curlMethod.FindStringSubmatch(cmd); m != nil {
			ex.method = m[1]
		}
		if m := curlPath.FindStringSubmatch(cmd); m != nil {
			ex.path = m[1]
		}
		if m := curlToken.FindStringSubmatch(cmd); m != nil {
			ex.actor = map[string]string{"": "admin", "ADMIN": "admin", "DOC_TOKEN": "clinician",
				"PATIENT_TOKEN": "patient", "CUFF_TOKEN": "device", "OPERATOR": "operator"}[m[1]]
		}
		next, _, _ := strings.Cut(strings.TrimLeft(text[loc[1]+end+1:], " \\\n"), "\n")
		if m := errorComment.FindStringSubmatch(next); m != nil {
			ex.status, _ = strconv.Atoi(m[1])
		}
		if err := json.Unmarshal([]byte(raw), &ex.body); err != nil || ex.path == "" {
			t.Errorf("%s: the curl command's body or path does not parse: %v", ex.where, err)
			continue
		}
		out = append(out, ex)
	}
	return append(out, jsonBlocks(t, name, text)...)
}

// jsonBlocks are the request bodies of a page's marked ```json blocks.
func jsonBlocks(t *testing.T, name, text string) []example {
	t.Helper()
	var out []example
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l != "```json" {
			continue
		}
		marker := ""
		for j := i - 1; j >= 0 && marker == ""; j-- {
			if marker = strings.TrimSpace(lines[j]); marker == "" {
				continue
			}
		}
		m := blockMarker.FindStringSubmatch(marker)
		if m == nil {
			t.Errorf("%s:%d: a json block without <!-- request: METHOD PATH --> or <!-- response --> above it", name, i+1)
			continue
		}
		if m[1] == "response" {
			continue
		}
		block, _, _ := strings.Cut(strings.Join(lines[i+1:], "\n"), "\n```")
		dec := json.NewDecoder(strings.NewReader(block))
		for n := 1; ; n++ {
			var body any
			if err := dec.Decode(&body); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Errorf("%s:%d: the block's JSON does not parse: %v", name, i+1, err)
				break
			}
			out = append(out, example{where: fmt.Sprintf("%s:%d #%d", name, i+1, n), method: m[2], path: m[3], body: body})
		}
	}
	return out
}

// exampleWorld is what the examples act on: one of each object they name.
type exampleWorld struct {
	*setup
	patient, operator               client
	clinicianID, spareUserID        string
	threadID, messageID, scheduleID string
}

// newExampleWorld builds one on a fresh server.
func newExampleWorld(t *testing.T) *exampleWorld {
	t.Helper()
	w := &exampleWorld{setup: newSetup(t)}
	var users struct{ Items []struct{ ID string } }
	w.admin.do("GET", "/v1/users?role=clinician", nil).decode(t, &users)
	w.clinicianID = users.Items[0].ID
	w.patient = w.admin.as(w.userToken(t, map[string]any{"name": "Sam Lee", "role": "patient", "patient_id": w.patientID}))
	op, err := w.eng.CreateUser(context.Background(), engine.System("test"), engine.NewUser{Name: "Operator", Role: engine.RoleSuperAdmin})
	if err != nil {
		t.Fatal(err)
	}
	opTok, err := w.eng.CreateToken(context.Background(), engine.System("test"), op.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.operator = w.admin.as(opTok)
	w.userToken(t, map[string]any{"name": "Spare", "role": "scheduler"})
	w.spareUserID = w.lastUserID
	// The FHIR transaction example names a patient by medical record number.
	if r := w.clinician.do("POST", "/v1/patients", map[string]any{"display_name": "Kim Park", "timezone": "UTC",
		"care_team_id": w.teamID, "external_id": "MRN-88"}); r.status != http.StatusCreated {
		t.Fatalf("patient MRN-88: %d %s", r.status, r.body)
	}
	var threads struct{ Items []struct{ ID string } }
	w.patient.do("GET", "/v1/threads", nil).decode(t, &threads)
	w.threadID = threads.Items[0].ID
	var msg struct{ ID string }
	w.patient.do("POST", "/v1/threads/"+w.threadID+"/messages", map[string]any{"body": "hello"}).decode(t, &msg)
	w.messageID = msg.ID
	// Doses due within the next half hour (in the patient's zone), so that
	// they may be confirmed now.
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(chicago)
	var times []string
	for _, m := range []int{10, 20, 30} {
		times = append(times, now.Add(time.Duration(m)*time.Minute).Format("15:04"))
	}
	var sched struct{ ID string }
	r := w.clinician.do("POST", "/v1/patients/"+w.patientID+"/schedules", map[string]any{"type": "medication",
		"medication": "Furosemide", "times": times, "start_date": now.AddDate(0, 0, -1).Format(time.DateOnly)})
	r.decode(t, &sched)
	w.scheduleID = sched.ID
	return w
}

// pathFor fills a path's placeholders with the world's objects; an alert or
// a dose is a new one each time, since an example may change its state.
func (w *exampleWorld) pathFor(t *testing.T, method, path string) string {
	t.Helper()
	segs := strings.Split(path, "/")
	for i := 1; i < len(segs); i++ {
		s := segs[i]
		if !strings.HasPrefix(s, "{") && !strings.HasPrefix(s, "$") && !strings.HasPrefix(s, "<") {
			continue
		}
		objects := map[string]func() string{
			"users":         func() string { return w.clinicianID },
			"patients":      func() string { return w.patientID },
			"care-teams":    func() string { return w.teamID },
			"threads":       func() string { return w.threadID },
			"schedules":     func() string { return w.scheduleID },
			"alerts":        func() string { return w.openAlert(t) },
			"doses":         func() string { return w.pendingDose(t) },
			"rules":         func() string { return "hr-high" }, // a rule of the default pack
			"organisations": func() string { return engine.DefaultOrgID().String() },
		}
		if method == "PATCH" && segs[i-1] == "users" {
			objects["users"] = func() string { return w.spareUserID } // disabled by the example
		}
		object, ok := objects[segs[i-1]]
		if !ok {
			t.Fatalf("no object for %s in %s", s, path)
		}
		segs[i] = object()
	}
	return strings.Join(segs, "/")
}

// openAlert returns an open alert of the patient, raising one if none is.
func (w *exampleWorld) openAlert(t *testing.T) string {
	t.Helper()
	var alerts struct{ Items []struct{ ID string } }
	w.clinician.do("GET", "/v1/alerts?status=open&patient_id="+w.patientID, nil).decode(t, &alerts)
	if len(alerts.Items) > 0 {
		return alerts.Items[0].ID
	}
	var res struct{ Alerts []struct{ ID string } }
	r := w.device.do("POST", "/v1/patients/"+w.patientID+"/readings", map[string]any{"kind": "blood_pressure",
		"systolic": 246, "diastolic": 142, "unit": "mm[Hg]", "observed_at": time.Now().UTC().Format(time.RFC3339)})
	r.decode(t, &res)
	if len(res.Alerts) == 0 {
		t.Fatalf("no alert raised: %d %s", r.status, r.body)
	}
	return res.Alerts[0].ID
}

// pendingDose returns a pending dose of the world's schedule.
func (w *exampleWorld) pendingDose(t *testing.T) string {
	t.Helper()
	var doses struct{ Items []struct{ ID string } }
	w.clinician.do("GET", "/v1/patients/"+w.patientID+"/doses?status=pending", nil).decode(t, &doses)
	if len(doses.Items) == 0 {
		t.Fatal("no pending dose left")
	}
	return doses.Items[0].ID
}

// fill replaces the ids an example makes up with the world's, by field.
func (w *exampleWorld) fill(v any) any {
	ids := map[string]string{"user_id": w.clinicianID, "member_ids": w.clinicianID, "care_team_id": w.teamID,
		"patient_id": w.patientID, "patient_ids": w.patientID, "up_to": w.messageID, "org_id": engine.DefaultOrgID().String()}
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				x[k] = walk(k, val)
			}
		case []any:
			for i, val := range x {
				x[i] = walk(key, val)
			}
		case string:
			if id, ok := ids[key]; ok {
				return id
			}
			if key == "reference" && strings.HasPrefix(x, "Patient/") {
				return "Patient/" + w.patientID
			}
		}
		return v
	}
	return walk("", v)
}

// send posts an example as the actor the docs name, else as each role in
// turn until one is accepted; it returns every answer's status and the last
// body.
func (w *exampleWorld) send(t *testing.T, ex example) ([]int, []byte) {
	t.Helper()
	actors := map[string]client{"admin": w.admin, "clinician": w.clinician, "patient": w.patient, "device": w.device, "operator": w.operator}
	order := []string{"admin", "clinician", "patient", "device", "operator"}
	if ex.actor != "" {
		order = []string{ex.actor}
	}
	body, _ := json.Marshal(w.fill(ex.body))
	var statuses []int
	var last []byte
	for _, name := range order {
		c := actors[name]
		r := c.do(ex.method, w.pathFor(t, ex.method, ex.path), body)
		statuses, last = append(statuses, r.status), r.body
		if r.status < 300 || ex.status != 0 && r.status == ex.status {
			break
		}
	}
	return statuses, last
}

// TestDocumentedRequestsAccepted sends every request-body example of the
// OpenAPI document and of the docs to a live server: each must be accepted
// by a role that may make the request (or, marked as an error example,
// answered with its status).
func TestDocumentedRequestsAccepted(t *testing.T) {
	t.Parallel()
	w := newExampleWorld(t)
	r := w.admin.do("GET", "/openapi.json", nil)
	examples := openAPIExamples(t, r.body)
	pages, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range append(pages, filepath.Join("..", "README.md")) {
		examples = append(examples, markdownExamples(t, page)...)
	}
	if len(examples) < 30 {
		t.Fatalf("only %d examples found: the scan is broken", len(examples))
	}
	for _, ex := range examples {
		statuses, body := w.send(t, ex)
		got := statuses[len(statuses)-1]
		switch {
		case ex.status == 0 && got >= 300:
			t.Errorf("%s: %s %s was refused (%v): %s", ex.where, ex.method, ex.path, statuses, body)
		case ex.status != 0 && got != ex.status:
			t.Errorf("%s: %s %s answered %v, not the %d it shows", ex.where, ex.method, ex.path, statuses, ex.status)
		}
	}
	t.Logf("%d examples sent", len(examples))
	if !slices.ContainsFunc(examples, func(e example) bool { return strings.HasPrefix(e.where, "fhir.md") }) {
		t.Error("the FHIR transaction example was not found")
	}
}
