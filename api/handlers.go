package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/notify"
	"github.com/tendhealth/tend/rpm"
)

// pathID parses the {id} path value; a malformed id is answered like a
// missing object (404), since ids are opaque.
func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, fmt.Errorf("id: %w", engine.ErrNotFound)
	}
	return id, nil
}

// list is the envelope of every collection.
type list[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	l := list[T]{Items: items}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name      string    `json:"name"`
		Role      string    `json:"role"`
		PatientID uuid.UUID `json:"patient_id"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.eng.CreateUser(r.Context(), actor(r), engine.NewUser{Name: in.Name, Role: engine.Role(in.Role), PatientID: in.PatientID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.ContentLength != 0 {
		var in struct{}
		if err := s.decode(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	token, err := s.eng.CreateToken(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": token, "user_id": id.String()})
}

func (s *Server) createCareTeam(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name       string              `json:"name"`
		MemberIDs  []uuid.UUID         `json:"member_ids"`
		Members    []engine.TeamMember `json:"members"`
		Escalation map[string]any      `json:"escalation"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.CreateCareTeam(r.Context(), actor(r), engine.NewCareTeam{
		Name: in.Name, MemberIDs: in.MemberIDs, Members: in.Members, Escalation: in.Escalation})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) createPatient(w http.ResponseWriter, r *http.Request) {
	var in struct {
		DisplayName string    `json:"display_name"`
		Timezone    string    `json:"timezone"`
		CareTeamID  uuid.UUID `json:"care_team_id"`
		Programs    []string  `json:"programs"`
		ExternalID  string    `json:"external_id"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.CreatePatient(r.Context(), actor(r), engine.NewPatient{DisplayName: in.DisplayName, Timezone: in.Timezone,
		CareTeamID: in.CareTeamID, Programs: in.Programs, ExternalID: in.ExternalID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) getPatient(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.eng.GetPatient(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// readingJSON is one reading on the wire. observed_at is parsed by hand so a
// malformed time is a 422 naming the field, not a 400.
type readingJSON struct {
	Kind       string   `json:"kind"`
	Value      *float64 `json:"value"`
	Systolic   *float64 `json:"systolic"`
	Diastolic  *float64 `json:"diastolic"`
	Unit       string   `json:"unit"`
	ObservedAt string   `json:"observed_at"`
	SourceID   string   `json:"source_id"`
}

// readingsBody is either one reading or {"readings": [...]}. The reading's
// fields are spelled out rather than embedded so that type errors name the
// field as the client wrote it.
type readingsBody struct {
	Kind       string        `json:"kind"`
	Value      *float64      `json:"value"`
	Systolic   *float64      `json:"systolic"`
	Diastolic  *float64      `json:"diastolic"`
	Unit       string        `json:"unit"`
	ObservedAt string        `json:"observed_at"`
	SourceID   string        `json:"source_id"`
	Readings   []readingJSON `json:"readings"`
}

func (b readingsBody) single() readingJSON {
	return readingJSON{Kind: b.Kind, Value: b.Value, Systolic: b.Systolic, Diastolic: b.Diastolic, Unit: b.Unit,
		ObservedAt: b.ObservedAt, SourceID: b.SourceID}
}

func (s *Server) postReadings(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var body readingsBody
	if err := s.decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	req := engine.IngestRequest{PatientID: id}
	var items []readingJSON
	if body.Readings != nil {
		if body.single() != (readingJSON{}) {
			s.writeError(w, r, &badRequest{status: http.StatusBadRequest, title: "Malformed request",
				detail: "send either one reading or {\"readings\": [...]}, not both"})
			return
		}
		req.Batch, items = true, body.Readings
	} else {
		items = []readingJSON{body.single()}
	}
	if len(items) > engine.MaxBatch {
		s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "readings",
			Reason: fmt.Sprintf("at most %d readings per request", engine.MaxBatch)}}})
		return
	}
	switch b := r.URL.Query().Get("backfill"); b {
	case "", "false":
	case "true":
		req.Backfill = true
	default:
		s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "backfill", Reason: "must be true or false"}}})
		return
	}
	// Every field is checked before anything is ingested: a request with any
	// problem stores, audits and queues nothing.
	var v rpm.ValidationError
	req.Readings = make([]rpm.Reading, len(items))
	for i, it := range items {
		rd := rpm.Reading{Kind: rpm.Kind(it.Kind), Value: it.Value, Systolic: it.Systolic, Diastolic: it.Diastolic,
			Unit: it.Unit, SourceID: it.SourceID}
		if it.ObservedAt != "" {
			t, err := time.Parse(time.RFC3339Nano, it.ObservedAt)
			if err != nil {
				field := "observed_at"
				if req.Batch {
					field = fmt.Sprintf("readings[%d].observed_at", i)
				}
				v.Add(field, "must be an RFC 3339 time such as 2026-11-22T08:00:00Z")
			}
			rd.ObservedAt = t
		}
		req.Readings[i] = rd
	}
	if len(v.Fields) > 0 {
		s.writeError(w, r, mergeValidation(&v, s.eng.ValidateReadings(req)))
		return
	}
	res, err := s.eng.Ingest(r.Context(), actor(r), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res.Alerts == nil {
		res.Alerts = []engine.AlertRef{}
	}
	status := http.StatusCreated
	if !anyCreated(res.Readings) {
		status = http.StatusOK // every reading was a duplicate: nothing new was created
	}
	writeJSON(w, status, res)
}

// mergeValidation combines the API's own field errors with the engine's, so
// the client sees every problem at once; for a field the API already
// reported, the API's reason wins.
func mergeValidation(v *rpm.ValidationError, err error) error {
	if len(v.Fields) == 0 {
		return err
	}
	var ev *rpm.ValidationError
	if errors.As(err, &ev) {
		seen := map[string]bool{}
		for _, f := range v.Fields {
			seen[f.Field] = true
		}
		for _, f := range ev.Fields {
			if !seen[f.Field] {
				v.Fields = append(v.Fields, f)
			}
		}
	}
	return v
}

func anyCreated(rs []engine.ReadingStatus) bool {
	for _, r := range rs {
		if r.Status == "created" {
			return true
		}
	}
	return false
}

func (s *Server) listReadings(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.ReadingFilter{PatientID: id, Kind: rpm.Kind(q.Get("kind")), Cursor: q.Get("cursor")}
	f.Since = queryTime(&v, q.Get("since"), "since")
	f.Until = queryTime(&v, q.Get("until"), "until")
	f.Limit = queryLimit(&v, q.Get("limit"))
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListReadings(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, next))
}

func queryTime(v *rpm.ValidationError, s, field string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		v.Add(field, "must be an RFC 3339 time")
	case t.Year() < 1970 || t.Year() > 2200:
		v.Add(field, "must be a time between 1970 and 2200")
	}
	return t
}

func queryLimit(v *rpm.ValidationError, s string) int {
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 500 {
		v.Add("limit", "must be a whole number from 1 to 500")
	}
	return n
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.AlertFilter{Cursor: q.Get("cursor"), Limit: queryLimit(&v, q.Get("limit"))}
	f.Statuses = append(f.Statuses, splitList(q["status"])...)
	for _, u := range splitList(q["urgency"]) {
		f.Urgencies = append(f.Urgencies, rpm.Urgency(u))
	}
	if p := q.Get("patient_id"); p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("patient_id", "must be a UUID")
		}
		f.PatientID = id
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListAlerts(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, next))
}

// splitList accepts both ?status=a&status=b and ?status=a,b.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.eng.GetAlert(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.ContentLength > 0 {
		var in struct {
			Note string `json:"note"`
		}
		if err := s.decode(w, r, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	a, err := s.eng.AckAlert(r.Context(), actor(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) registerDevice(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Platform     string `json:"platform"`
		Token        string `json:"token"`
		Topic        string `json:"topic"`
		Environment  string `json:"environment"`
		Subscription *struct {
			Endpoint       string `json:"endpoint"`
			ExpirationTime *int64 `json:"expirationTime"`
			Keys           struct {
				P256dh string `json:"p256dh"`
				Auth   string `json:"auth"`
			} `json:"keys"`
		} `json:"subscription"`
	}
	if err := s.decode(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	nd := engine.NewDevice{Platform: notify.Platform(in.Platform), Token: in.Token, Topic: in.Topic, Environment: in.Environment}
	if in.Subscription != nil {
		nd.Endpoint, nd.P256dh, nd.Auth = in.Subscription.Endpoint, in.Subscription.Keys.P256dh, in.Subscription.Keys.Auth
	} else if nd.Platform == notify.WebPush {
		s.writeError(w, r, &rpm.ValidationError{Fields: []rpm.FieldError{{Field: "subscription", Reason: "is required for webpush"}}})
		return
	}
	d, created, err := s.eng.RegisterDevice(r.Context(), actor(r), nd)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, d)
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := s.eng.ListDevices(r.Context(), actor(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(ds, ""))
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.DeleteDevice(r.Context(), actor(r), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var v rpm.ValidationError
	f := engine.AuditFilter{Limit: queryLimit(&v, q.Get("limit"))}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			v.Add("cursor", "is not a cursor returned by this endpoint")
		}
		f.After = n
	}
	if p := q.Get("patient_id"); p != "" {
		id, err := uuid.Parse(p)
		if err != nil {
			v.Add("patient_id", "must be a UUID")
		}
		f.PatientID = id
	}
	if err := v.OrNil(); err != nil {
		s.writeError(w, r, err)
		return
	}
	items, next, err := s.eng.ListAudit(r.Context(), actor(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newList(items, next))
}
