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
	"body":         4000, // a message's text
	"client_id":    200,
	// End-to-end encryption (docs/e2ee.md): unpadded base64url of binary
	// fields whose decoded sizes package e2ee checks exactly.
	"hpke_public_key":   1622,  // 1,216 bytes
	"record_public_key": 1622,  // 1,216 bytes (an organisation's record key)
	"enc":               1494,  // 1,120 bytes
	"ciphertext":        87404, // up to e2ee.MaxCiphertextSize bytes
}

// uuidFields hold ids: a string in them (or in an array under them) must be a
// UUID.
var uuidFields = map[string]bool{
	"patient_id":     true,
	"care_team_id":   true,
	"member_ids":     true,
	"user_id":        true,
	"attachment_ids": true,
	"up_to":          true,
}

// maxJSONDepth bounds nesting; no request of the API nests deeper.
const maxJSONDepth = 16

// sanitized is the outcome of a clean walk of a body: what the decoder's
// errors need to name fields with their array indexes.
type sanitized struct {
	body []byte
}

// fieldAt names the value the decoder was reading at offset (the decoder
// reports the offset just past it): the path of the last scalar that ends at
// or before offset. It walks the body again; it runs only on a type error.
func (s *sanitized) fieldAt(offset int64) string {
	sc := &scanner{body: s.body, stopAt: int(offset)}
	sc.value(nil)
	return sc.found
}

// sanitizeJSON checks every string of body (keys included): a
// *rpm.ValidationError names each one that is not clean text, too long, or
// not a UUID where one is required, and each number out of float64 range. A
// body that is not JSON at all, or nests too deep, is a *badRequest.
func sanitizeJSON(body []byte) (*sanitized, error) {
	if !json.Valid(body) {
		var v any
		return nil, malformed(json.Unmarshal(body, &v))
	}
	sc := &scanner{body: body, stopAt: -1, check: true}
	sc.value(nil)
	if sc.tooDeep {
		return nil, &badRequest{status: 400, title: "Malformed JSON", detail: fmt.Sprintf("the body nests deeper than %d levels", maxJSONDepth)}
	}
	if err := sc.errs.OrNil(); err != nil {
		return nil, err
	}
	return &sanitized{body: body}, nil
}

// scanner walks a body that json.Valid accepted, one byte at a time, without
// allocating for clean values: a path is only spelled out when a field error
// (or fieldAt) needs it.
type scanner struct {
	body []byte
	pos  int
	// path is the current value's location: object keys and array indexes.
	path []pathSeg
	// check: report field errors in errs.
	check   bool
	errs    rpm.ValidationError
	tooDeep bool
	// stopAt >= 0: find the path of the last scalar ending at or before it.
	stopAt int
	found  string
	done   bool
}

type pathSeg struct {
	key   []byte
	index int // -1 for a key
}

func (sc *scanner) pathString() string {
	var b strings.Builder
	for i, s := range sc.path {
		switch {
		case s.index >= 0:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.Write(s.key)
		}
	}
	return fieldOrBody(b.String())
}

func (sc *scanner) fail(reason string) {
	if sc.check {
		sc.errs.Add(sc.pathString(), reason)
	}
}

func (sc *scanner) skipSpace() {
	for sc.pos < len(sc.body) {
		switch sc.body[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// value walks one value; name is its field's own name (for limits and UUID
// fields).
func (sc *scanner) value(name []byte) {
	if sc.done {
		return
	}
	if len(sc.path) > maxJSONDepth {
		sc.tooDeep, sc.done = true, true
		return
	}
	sc.skipSpace()
	if sc.pos >= len(sc.body) {
		return
	}
	switch sc.body[sc.pos] {
	case '{':
		sc.object()
	case '[':
		sc.array(name)
	case '"':
		sc.text(name)
	default: // a number, true, false or null
		sc.scalar()
	}
}

// object scans an object's members.
func (sc *scanner) object() {
	sc.pos++
	for !sc.done {
		sc.skipSpace()
		switch sc.body[sc.pos] {
		case '}':
			sc.pos++
			return
		case ',':
			sc.pos++
			continue
		}
		keyRaw, key := sc.str()
		sc.path = append(sc.path, pathSeg{key: key, index: -1})
		if !sc.cleanText(keyRaw, key) {
			sc.path[len(sc.path)-1].key = []byte{0} // unusable as a name: fieldOrBody reports "body"
		}
		sc.skipSpace()
		sc.pos++ // the colon
		sc.value(key)
		sc.path = sc.path[:len(sc.path)-1]
	}
}

// array scans an array's elements (checked as the field name holding them).
func (sc *scanner) array(name []byte) {
	sc.pos++
	for i := 0; !sc.done; {
		sc.skipSpace()
		switch sc.body[sc.pos] {
		case ']':
			sc.pos++
			return
		case ',':
			sc.pos++
			continue
		}
		sc.path = append(sc.path, pathSeg{index: i})
		sc.value(name)
		sc.path = sc.path[:len(sc.path)-1]
		i++
	}
}

// text checks a string against field name's limits.
func (sc *scanner) text(name []byte) {
	raw, text := sc.str()
	if sc.check && sc.cleanText(raw, text) {
		limit, ok := fieldLimits[string(name)]
		if !ok {
			limit = defaultMaxChars
		}
		if n := utf8.RuneCount(text); n > limit {
			sc.fail(fmt.Sprintf("is longer than %d characters", limit))
		} else if uuidFields[string(name)] {
			if _, err := uuid.ParseBytes(text); err != nil || len(text) != 36 {
				sc.fail("must be a UUID such as 0192f3a4-5b6c-7d8e-9f01-23456789abcd")
			}
		}
	}
	sc.scalarEnd()
}

// scalar checks a number (in range), true, false or null.
func (sc *scanner) scalar() {
	start := sc.pos
	for sc.pos < len(sc.body) && !strings.ContainsRune(",]} \t\n\r", rune(sc.body[sc.pos])) {
		sc.pos++
	}
	// Only a number with an exponent or many digits can overflow.
	if num := sc.body[start:sc.pos]; sc.check && (len(num) > 15 || bytes.ContainsAny(num, "eE")) && num[0] != 't' && num[0] != 'f' && num[0] != 'n' {
		if _, err := strconv.ParseFloat(string(num), 64); err != nil {
			sc.fail("is a number out of range")
		}
	}
	sc.scalarEnd()
}

// scalarEnd notes, for fieldAt, that a scalar ended at sc.pos.
func (sc *scanner) scalarEnd() {
	if sc.stopAt < 0 {
		return
	}
	if sc.pos > sc.stopAt {
		sc.done = true
		return
	}
	sc.found = sc.pathString()
}

// str reads the string at sc.pos: its raw bytes between the quotes, and its
// text (the raw bytes themselves unless it has escapes).
func (sc *scanner) str() (raw, text []byte) {
	start := sc.pos
	sc.pos++
	escaped := false
	for sc.pos < len(sc.body) {
		c := sc.body[sc.pos]
		if c == '\\' {
			escaped = true
			sc.pos += 2
			continue
		}
		sc.pos++
		if c == '"' {
			break
		}
	}
	raw = sc.body[start+1 : sc.pos-1]
	if !escaped {
		return raw, raw
	}
	var decoded string
	_ = json.Unmarshal(sc.body[start:sc.pos], &decoded) // valid JSON: cannot fail
	return raw, []byte(decoded)
}

// cleanText reports whether a string is clean text; else it adds a field
// error. The decoder would turn invalid UTF-8 into U+FFFD, so the raw bytes
// are checked rather than the text.
func (sc *scanner) cleanText(raw, text []byte) bool {
	switch {
	case bytes.IndexByte(text, 0) >= 0:
		sc.fail("must not contain NUL characters")
		return false
	case !utf8.Valid(raw):
		sc.fail("must be valid UTF-8 text")
		return false
	}
	return true
}

func fieldOrBody(p string) string {
	if p == "" || !utf8.ValidString(p) || strings.IndexByte(p, 0) >= 0 {
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
