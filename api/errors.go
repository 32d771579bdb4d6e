package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/rpm"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string           `json:"type"`
	Title     string           `json:"title"`
	Status    int              `json:"status"`
	Detail    string           `json:"detail,omitempty"`
	Instance  string           `json:"instance,omitempty"`
	RequestID string           `json:"request_id,omitempty"`
	Errors    []rpm.FieldError `json:"errors,omitempty"`
	// Current is the object's current state, for a 409 whose conflict is
	// with that state (e.g. resolving a resolved alert).
	Current any `json:"current,omitempty"`
}

// problemTypes name each kind of problem with a stable URI.
var problemTypes = map[int]string{
	http.StatusBadRequest:            "https://tend.health/problems/bad-request",
	http.StatusUnauthorized:          "https://tend.health/problems/unauthenticated",
	http.StatusForbidden:             "https://tend.health/problems/forbidden",
	http.StatusNotFound:              "https://tend.health/problems/not-found",
	http.StatusMethodNotAllowed:      "https://tend.health/problems/method-not-allowed",
	http.StatusConflict:              "https://tend.health/problems/conflict",
	http.StatusRequestEntityTooLarge: "https://tend.health/problems/too-large",
	http.StatusUnsupportedMediaType:  "https://tend.health/problems/unsupported-media-type",
	http.StatusUnprocessableEntity:   "https://tend.health/problems/validation",
	http.StatusTooManyRequests:       "https://tend.health/problems/rate-limited",
	http.StatusInternalServerError:   "https://tend.health/problems/internal",
	http.StatusServiceUnavailable:    "https://tend.health/problems/unavailable",
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, title, detail string, fields []rpm.FieldError) {
	if isFHIR(r) { // FHIR clients read OperationOutcome, never problem+json
		writeOutcome(w, outcomeFromProblem(status, title, detail, fields))
		return
	}
	fields = safeFields(fields)
	p := Problem{Type: problemTypes[status], Title: title, Status: status, Detail: detail, Errors: fields, Instance: instance(r)}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if id, ok := r.Context().Value(requestIDKey).(string); ok {
		p.RequestID = id
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeProblemCurrent writes a problem that carries the object's current
// state (problem+json only).
func writeProblemCurrent(w http.ResponseWriter, r *http.Request, status int, title, detail string, current any) {
	p := Problem{Type: problemTypes[status], Title: title, Status: status, Detail: detail, Instance: instance(r), Current: current}
	if id, ok := r.Context().Value(requestIDKey).(string); ok {
		p.RequestID = id
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError maps engine errors to statuses once; anything unexpected is a
// 500, logged with the request id (errors carry ids, never PHI).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := classify(err)
	switch p.Status {
	case http.StatusConflict:
		var state interface{ Current() any }
		if errors.As(err, &state) && !isFHIR(r) {
			writeProblemCurrent(w, r, p.Status, p.Title, p.Detail, state.Current())
			return
		}
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="tend"`)
	case http.StatusServiceUnavailable:
		switch {
		case errors.Is(err, engine.ErrBusy):
			w.Header().Set("Retry-After", "30")
		case isUnavailable(err):
			w.Header().Set("Retry-After", "5")
		}
	case http.StatusInternalServerError:
		if errors.Is(err, r.Context().Err()) && r.Context().Err() != nil {
			return // the client went away; nothing useful to send
		}
		id, _ := r.Context().Value(requestIDKey).(string)
		s.log.ErrorContext(r.Context(), "request failed", "request_id", id, "route", r.Pattern, "error", err)
	}
	writeProblem(w, r, p.Status, p.Title, p.Detail, p.Errors)
}

// classify maps an error to the problem answered for it, for every
// transport (HTTP here, MQTT through Device): a status, a title, a detail
// and the fields at fault. Anything unexpected is a 500.
func classify(err error) Problem {
	var v *rpm.ValidationError
	var bad *badRequest
	p := func(status int, title, detail string, fields []rpm.FieldError) Problem {
		return Problem{Status: status, Title: title, Detail: detail, Errors: fields}
	}
	switch {
	case errors.As(err, &bad):
		return p(bad.status, bad.title, bad.detail, bad.fields)
	case errors.As(err, &v):
		return p(http.StatusUnprocessableEntity, "Invalid input", "one or more fields are invalid", v.Fields)
	case errors.Is(err, engine.ErrNotFound):
		return p(http.StatusNotFound, "Not found", "no such resource", nil)
	case errors.Is(err, engine.ErrForbidden):
		return p(http.StatusForbidden, "Forbidden", "your role may not do this", nil)
	case errors.Is(err, engine.ErrConflict):
		return p(http.StatusConflict, "Conflict", conflictDetail(err), nil)
	case errors.Is(err, engine.ErrUnauthenticated):
		return p(http.StatusUnauthorized, "Unauthenticated", "a valid bearer token is required", nil)
	case errors.Is(err, engine.ErrBusy):
		return p(http.StatusServiceUnavailable, "Service unavailable", strings.TrimSuffix(err.Error(), ": "+engine.ErrBusy.Error()), nil)
	case errors.Is(err, engine.ErrNoKeys):
		return p(http.StatusServiceUnavailable, "Service unavailable",
			"message encryption keys are not configured on this server (TEND_ENCRYPTION_KEYS)", nil)
	case isUnavailable(err):
		unknown, _ := engine.IsUnavailable(err)
		detail := "the database is unreachable; retry after the given delay (a reading retried with the same source_id is never stored twice)"
		if unknown {
			detail = "the database connection broke while the change was being committed, so it may or may not have been saved; " +
				"retry after the given delay (a reading retried with the same source_id is never stored twice)"
		}
		return p(http.StatusServiceUnavailable, "Service unavailable", detail, nil)
	}
	return p(http.StatusInternalServerError, "Internal error", "the request failed; quote the request id when reporting it", nil)
}

func isUnavailable(err error) bool {
	_, ok := engine.IsUnavailable(err)
	return ok
}

func conflictDetail(err error) string {
	msg := err.Error()
	return strings.TrimSuffix(msg, ": "+engine.ErrConflict.Error())
}

// badRequest is a decoding problem answered with a 4xx other than 422 (or a
// 422 for a value of the wrong JSON type).
type badRequest struct {
	status int
	title  string
	detail string
	fields []rpm.FieldError
}

func (b *badRequest) Error() string { return b.detail }

// decode reads a JSON body strictly: Content-Type application/json (415
// otherwise), at most MaxBodyBytes (413 beyond), well-formed (400), clean text
// in every string (422 naming the field: see sanitize.go), no unknown fields
// (400), one value only, values of the right JSON type (422 naming the field).
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := checkContentType(r, "application/json", "application/fhir+json"); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		return decodeError(err, s.cfg.MaxBodyBytes, nil)
	}
	return decodeBody(body, v, s.cfg.MaxBodyBytes)
}

// decodeBody is decode after the body has been read: the part the fuzz
// targets exercise.
func decodeBody(body []byte, v any, limit int64) error {
	clean, err := sanitizeJSON(body)
	if err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the body must be a JSON object, not null"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, limit, clean)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the body must hold exactly one JSON value"}
	}
	return nil
}

// checkContentType accepts a request without a body type or with one of the
// given media types (parameters such as charset=utf-8 allowed); anything else
// is a 415.
func checkContentType(r *http.Request, accepted ...string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && slices.Contains(accepted, mt) {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return &badRequest{status: http.StatusUnsupportedMediaType, title: "Unsupported media type",
		detail: "send the body as UTF-8 JSON with Content-Type: " + accepted[0] + " (curl --json)"}
}

func decodeError(err error, limit int64, clean *sanitized) error {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return &badRequest{status: http.StatusRequestEntityTooLarge, title: "Body too large",
			detail: fmt.Sprintf("the request body exceeds %d bytes", limit)}
	case errors.As(err, &syn):
		return &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: fmt.Sprintf("syntax error at byte %d", syn.Offset)}
	case errors.Is(err, io.EOF):
		return &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the request body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the request body ends early"}
	case errors.As(err, &typ):
		// A field of an embedded struct is named after the struct first
		// (the device bodies of device.go embed the HTTP ones): drop it.
		field := strings.TrimPrefix(strings.TrimPrefix(typ.Field, "readingsBody."), "symptomReportBody.")
		if field == "" {
			return &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the body must be a JSON object"}
		}
		if clean != nil {
			// The decoder names the field without array indexes: take the
			// full path of the value it stopped at.
			// A map value's key is missing from the decoder's name too.
			if p := clean.fieldAt(typ.Offset); p != "" && (stripIndexes(p) == field || strings.HasPrefix(stripIndexes(p), field+".")) {
				field = p
			}
		}
		reason := "must be a JSON " + jsonKind(typ.Type.Kind().String())
		if typ.Type == reflect.TypeFor[uuid.UUID]() {
			reason = "must be a UUID string"
		}
		if typ.Type.Kind().String() == "float64" && typ.Value == "number" {
			reason = "must be a finite number within range"
		}
		return &badRequest{status: http.StatusUnprocessableEntity, title: "Invalid input", detail: "one or more fields are invalid",
			fields: []rpm.FieldError{{Field: field, Reason: reason}}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := safeName(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
		return &badRequest{status: http.StatusBadRequest, title: "Unknown field", detail: fmt.Sprintf("unknown field %q", name),
			fields: []rpm.FieldError{{Field: name, Reason: "is not a known field"}}}
	}
	return &badRequest{status: http.StatusBadRequest, title: "Malformed JSON", detail: "the request body is not valid JSON"}
}

// stripIndexes turns readings[3].kind into readings.kind, the way the JSON
// decoder names fields.
func stripIndexes(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "float64", "float32", "int", "int64", "int32":
		return "number"
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	}
	return "object"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// instance is the problem's "instance": the request's route with its {id}
// only when that is a well-formed id. A path is client text — it may hold a
// token pasted in the wrong place, or a name — so nothing else of it is
// echoed; an unmatched path has no instance.
func instance(r *http.Request) string {
	pattern := r.Pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	if pattern == "" || strings.HasSuffix(pattern, "/") {
		return ""
	}
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		name, ok := strings.CutPrefix(seg, "{")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
		if id, err := uuid.Parse(r.PathValue(name)); err == nil {
			segs[i] = id.String()
		}
	}
	return strings.Join(segs, "/")
}

// safeFields names fields without echoing text a client chose for a JSON key
// (a name typed as a key, a token): see safeName.
func safeFields(fs []rpm.FieldError) []rpm.FieldError {
	for i := range fs {
		fs[i].Field = safeName(fs[i].Field)
	}
	return fs
}

// safeName keeps each dot-separated part of a field path that looks like an
// identifier (lower-case letters, digits, '_' and '-', at most 64, with
// [n] indexes: every field and rule id of Tend's JSON) and replaces any
// other part with "(unnamed)". FHIR's camelCase fields are answered in an
// OperationOutcome, which does not come here.
func safeName(field string) string {
	if field == "" {
		return field
	}
	parts := strings.Split(field, ".")
	for i, p := range parts {
		if !identifier(p) {
			parts[i] = "(unnamed)"
		}
	}
	return strings.Join(parts, ".")
}

func identifier(p string) bool {
	base, _, _ := strings.Cut(p, "[")
	if base == "" || len(base) > 64 || strings.HasPrefix(base, "tend_") {
		return false
	}
	for _, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	for _, c := range p[len(base):] {
		if !(c >= '0' && c <= '9' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
