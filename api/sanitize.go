package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/rpm"
)

// The text sanitiser: every JSON body is walked once, before it is decoded
// into a request struct, and every string in it (object keys included) must be
// valid UTF-8 without NUL characters and within its field's length limit.
// Fields that hold ids must be UUIDs. A violation is a 422 naming the field by
// its full path (readings[3].source_id), so nothing malformed ever reaches the
// engine or the database.

// defaultMaxChars bounds any string field without a limit of its own.
const defaultMaxChars = 1000

// fieldLimits are the per-field length limits, in characters, by the field's
// own name (the last element of its path). docs/api.md lists them.
var fieldLimits = map[string]int{
	"name":         200,
	"display_name": 200,
	"title":        200,
	"external_id":  200,
	"source_id":    rpm.MaxSourceIDLen,
	"token":        4096,
	"endpoint":     2048,
	"p256dh":       200,
	"auth":         100,
	"topic":        255,
	"environment":  20,
	"timezone":     64,
	"note":         2000,
	"text":         500,
	"when":         4000,
	"description":  2000,
	"message":      1000,
}

// uuidFields hold ids: a string in them (or in an array under them) must be a
// UUID.
var uuidFields = map[string]bool{
	"patient_id":   true,
	"care_team_id": true,
	"member_ids":   true,
	"user_id":      true,
}

// maxJSONDepth bounds nesting; no request of the API nests deeper.
const maxJSONDepth = 16

// valueSpan is where one decoded scalar ends in the body, and its path, so a
// type error reported at an offset can be named with its array indexes.
type valueSpan struct {
	end  int64
	path string
}

// sanitized is the outcome of walking a body.
type sanitized struct {
	spans []valueSpan
}

// fieldAt names the value the decoder was reading at offset: the path of the
// last scalar that ends at or before it.
func (s *sanitized) fieldAt(offset int64) string {
	best := ""
	for _, sp := range s.spans {
		if sp.end <= offset {
			best = sp.path
		} else {
			break
		}
	}
	return best
}

// sanitizeJSON walks body and returns a *rpm.ValidationError for every string
// that is not clean text, too long, or not a UUID where one is required. It
// returns a *badRequest for malformed JSON (the decoder would too, but the walk
// must not go on over garbage).
func sanitizeJSON(body []byte) (*sanitized, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	w := &walker{body: body, dec: dec, out: &sanitized{}}
	if err := w.value("", "", 0); err != nil {
		return nil, err
	}
	if err := w.errs.OrNil(); err != nil {
		return nil, err
	}
	return w.out, nil
}

type walker struct {
	body []byte
	dec  *json.Decoder
	errs rpm.ValidationError
	out  *sanitized
	// last is the offset after the previous token: the raw bytes of a string
	// token lie between it and the offset after the token.
	last int64
}

func (w *walker) token() (json.Token, error) {
	t, err := w.dec.Token()
	if err != nil {
		return nil, err
	}
	w.last = w.dec.InputOffset()
	return t, nil
}

// value walks one JSON value at path; name is the field's own name (for
// limits), depth the nesting level.
func (w *walker) value(path, name string, depth int) error {
	if depth > maxJSONDepth {
		return &badRequest{status: 400, title: "Malformed JSON", detail: fmt.Sprintf("the body nests deeper than %d levels", maxJSONDepth)}
	}
	start := w.last
	t, err := w.token()
	if err != nil {
		return malformed(err)
	}
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '{':
			for w.dec.More() {
				kstart := w.last
				kt, err := w.token()
				if err != nil {
					return malformed(err)
				}
				key, _ := kt.(string)
				childPath := key
				if path != "" {
					childPath = path + "." + key
				}
				if !w.cleanText(childPath, key, w.raw(kstart)) {
					childPath = "body" // the key is unusable as a name
				}
				if err := w.value(childPath, key, depth+1); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; w.dec.More(); i++ {
				if err := w.value(fmt.Sprintf("%s[%d]", path, i), name, depth+1); err != nil {
					return err
				}
			}
		}
		if _, err := w.token(); err != nil { // the closing delimiter
			return malformed(err)
		}
	case string:
		fieldName := cmpPath(path)
		if w.cleanText(fieldName, v, w.raw(start)) {
			limit, ok := fieldLimits[name]
			if !ok {
				limit = defaultMaxChars
			}
			if n := utf8.RuneCountInString(v); n > limit {
				w.errs.Add(fieldName, fmt.Sprintf("is longer than %d characters", limit))
			} else if uuidFields[name] {
				if _, err := uuid.Parse(v); err != nil || len(v) != 36 {
					w.errs.Add(fieldName, "must be a UUID such as 0192f3a4-5b6c-7d8e-9f01-23456789abcd")
				}
			}
		}
		w.out.spans = append(w.out.spans, valueSpan{end: w.last, path: fieldName})
	case json.Number:
		if _, err := strconv.ParseFloat(string(v), 64); err != nil {
			w.errs.Add(cmpPath(path), "is a number out of range")
		}
		w.out.spans = append(w.out.spans, valueSpan{end: w.last, path: cmpPath(path)})
	default:
		w.out.spans = append(w.out.spans, valueSpan{end: w.last, path: cmpPath(path)})
	}
	return nil
}

// raw is the body's bytes from start to the current offset: the token just
// read, with any separators before it.
func (w *walker) raw(start int64) []byte {
	if start < 0 || w.last > int64(len(w.body)) || start > w.last {
		return nil
	}
	return w.body[start:w.last]
}

// cleanText reports whether s (decoded from raw) is clean text; else it adds
// a field error. The decoder turns invalid UTF-8 into U+FFFD, so the raw bytes
// are checked as well.
func (w *walker) cleanText(field, s string, raw []byte) bool {
	switch {
	case strings.ContainsRune(s, 0):
		w.errs.Add(fieldOrBody(field), "must not contain NUL characters")
		return false
	case !utf8.ValidString(s) || (raw != nil && !utf8.Valid(raw)):
		w.errs.Add(fieldOrBody(field), "must be valid UTF-8 text")
		return false
	}
	return true
}

func cmpPath(p string) string { return fieldOrBody(p) }

func fieldOrBody(p string) string {
	if p == "" {
		return "body"
	}
	if !utf8.ValidString(p) || strings.ContainsRune(p, 0) {
		return "body"
	}
	return p
}

func malformed(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return &badRequest{status: 400, title: "Malformed JSON", detail: fmt.Sprintf("syntax error at byte %d", syn.Offset)}
	case errors.Is(err, io.EOF):
		return &badRequest{status: 400, title: "Malformed JSON", detail: "the request body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &badRequest{status: 400, title: "Malformed JSON", detail: "the request body ends early"}
	}
	return &badRequest{status: 400, title: "Malformed JSON", detail: "the request body is not valid JSON"}
}
