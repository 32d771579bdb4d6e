package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
)

// Reading and answering envelope posts in one pass.
//
// An envelope post's body is about 17 KB for a thread of ten devices, nearly
// all of it base64url. Read the general way (decode), it is walked four
// times — json.Valid, the text sanitiser, encoding/json's decoder, then each
// field's base64 — and the answer's stored envelope a fifth, by
// encoding/json checking it again as raw JSON. That was most of the server's
// CPU per post.
//
// parseEnvelope reads the form clients write — JSON.stringify or
// json.Marshal of {"envelope": …, "urgent": …}, members in any order,
// white space anywhere — in one pass, and decodes each binary field once,
// straight from the body. It never refuses a body: one that is anything
// else (an unknown, misspelt or repeated member, a missing one, a null, an
// escape or a byte outside printable ASCII in a string, a number with a
// sign, fraction or exponent or more than 15 digits, a string past its
// field's length limit, text that is not unpadded base64url where a binary
// field belongs) makes it give up, and the body is read again the general
// way, which answers as it always did. Every body it accepts, the general
// way accepts into the same envelope (FuzzEnvelopeFastPath); the engine's
// checks (e2ee.Check, the thread's recipients, the sender's sequence) run
// after it as before.

// readEnvelope reads the body of POST /v1/threads/{id}/envelopes.
func (s *Server) readEnvelope(w http.ResponseWriter, r *http.Request) (engine.NewEnvelope, error) {
	if err := checkContentType(r, "application/json", "application/fhir+json"); err != nil {
		return engine.NewEnvelope{}, err
	}
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= s.cfg.MaxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead) // one allocation: ReadFrom needs MinRead free to read the end
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)); err != nil {
		return engine.NewEnvelope{}, decodeError(err, s.cfg.MaxBodyBytes, nil)
	}
	return decodeEnvelope(buf.Bytes(), s.cfg.MaxBodyBytes)
}

// decodeEnvelope reads an envelope post's body: in one pass when it has the
// plain form, else the general way.
func decodeEnvelope(body []byte, limit int64) (engine.NewEnvelope, error) {
	if in, ok := parseEnvelope(body); ok {
		return in, nil
	}
	var in envelopeBody
	if err := decodeBody(body, &in, limit); err != nil {
		return engine.NewEnvelope{}, err
	}
	if in.Envelope == nil {
		return engine.NewEnvelope{}, upToError("envelope", "is required (docs/e2ee.md)")
	}
	env, err := in.Envelope.decode()
	if err != nil {
		return engine.NewEnvelope{}, err
	}
	return engine.NewEnvelope{Envelope: env, Urgent: in.Urgent}, nil
}

// writeEnvelopeMessage writes m as writeJSON would, but copies its envelope
// (JSON the engine encoded itself, e2ee.Envelope.AppendJSON, and kept sealed
// at rest) as it is instead of having encoding/json check it again. Its
// "envelope" member comes last.
func writeEnvelopeMessage(w http.ResponseWriter, status int, m engine.Message) {
	env := m.Envelope
	m.Envelope = nil
	b, err := json.Marshal(m)
	if err != nil || len(env) == 0 || len(b) < 2 {
		m.Envelope = env
		writeJSON(w, status, m)
		return
	}
	out := make([]byte, 0, len(b)+len(env)+len(`,"envelope":`)+1)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"envelope":`...)
	out = append(out, env...)
	out = append(out, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// Length limits of the text sanitiser (fieldLimits) for the envelope's
// fields, in bytes: the fast path reads ASCII only, where characters are
// bytes.
var (
	limitEnc        = fieldLimits["enc"]
	limitCiphertext = fieldLimits["ciphertext"]
)

var strictB64 = base64.RawURLEncoding.Strict()

// envParser reads an envelope post's plain form; each method reports false
// when the body is not in it (the general path then reads it).
type envParser struct {
	b     []byte
	pos   int
	arena []byte // the decoded binary fields, one allocation
}

// parseEnvelope reads body in its plain form; false when it is not.
func parseEnvelope(body []byte) (engine.NewEnvelope, bool) {
	p := &envParser{b: body}
	var in engine.NewEnvelope
	var seen uint8
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "envelope":
			if !once(&seen, 1) {
				return false
			}
			in.Envelope = new(e2ee.Envelope)
			return p.envelope(in.Envelope)
		case "urgent":
			return once(&seen, 2) && p.boolean(&in.Urgent)
		}
		return false
	})
	p.ws()
	if !ok || p.pos != len(p.b) || seen&1 == 0 {
		return engine.NewEnvelope{}, false
	}
	return in, true
}

// once sets bit in *seen, false when it was set already (a repeated member).
func once[T uint8 | uint16](seen *T, bit T) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// envelope reads the envelope object: every member but attachments
// required, each once.
func (p *envParser) envelope(e *e2ee.Envelope) bool {
	const required = 1<<10 - 1
	var seen uint16
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "v":
			n, ok := p.uint(1<<31 - 1)
			e.Version = int(n)
			return once(&seen, 1<<0) && ok
		case "suite":
			return once(&seen, 1<<1) && p.suite(&e.Suite)
		case "thread_id":
			return once(&seen, 1<<2) && p.text(&e.ThreadID, defaultMaxChars)
		case "sender_device_id":
			return once(&seen, 1<<3) && p.text(&e.SenderDevice, defaultMaxChars)
		case "sender_seq":
			n, ok := p.uint(1<<64 - 1)
			e.SenderSeq = n
			return once(&seen, 1<<4) && ok
		case "nonce":
			return once(&seen, 1<<5) && p.bytes(&e.Nonce, defaultMaxChars)
		case "ciphertext":
			return once(&seen, 1<<6) && p.bytes(&e.Ciphertext, limitCiphertext)
		case "recipients":
			return once(&seen, 1<<7) && p.array(func() bool {
				if e.Recipients == nil {
					// About 1.6 KB of text per wrap: room for all at once.
					e.Recipients = make([]e2ee.Wrap, 0, min(e2ee.MaxRecipients, (len(p.b)-p.pos)/1600+1))
				}
				e.Recipients = append(e.Recipients, e2ee.Wrap{})
				return p.wrap(&e.Recipients[len(e.Recipients)-1])
			})
		case "record":
			return once(&seen, 1<<8) && p.wrap(&e.Record)
		case "signature":
			return once(&seen, 1<<9) && p.bytes(&e.Signature, defaultMaxChars)
		case "attachments":
			return once(&seen, 1<<10) && p.array(func() bool {
				var id string
				if !p.text(&id, defaultMaxChars) {
					return false
				}
				e.Attachments = append(e.Attachments, id)
				return true
			})
		}
		return false
	})
	return ok && seen&required == required
}

func (p *envParser) suite(s *e2ee.Suite) bool {
	var seen uint8
	ok := p.object(func(key []byte) bool {
		var dst *uint16
		var bit uint8
		switch string(key) {
		case "kem":
			dst, bit = &s.KEM, 1
		case "kdf":
			dst, bit = &s.KDF, 2
		case "aead":
			dst, bit = &s.AEAD, 4
		default:
			return false
		}
		n, ok := p.uint(1<<16 - 1)
		*dst = uint16(n)
		return once(&seen, bit) && ok
	})
	return ok && seen == 7
}

func (p *envParser) wrap(w *e2ee.Wrap) bool {
	var seen uint8
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return once(&seen, 1) && p.text(&w.ID, defaultMaxChars)
		case "enc":
			return once(&seen, 2) && p.bytes(&w.Enc, limitEnc)
		case "wrapped_key":
			return once(&seen, 4) && p.bytes(&w.WrappedKey, defaultMaxChars)
		}
		return false
	})
	return ok && seen == 7
}

// object reads an object, calling member with each key once the value's
// first byte is next.
func (p *envParser) object(member func(key []byte) bool) bool {
	p.ws()
	if !p.next('{') {
		return false
	}
	p.ws()
	if p.next('}') {
		return true
	}
	for {
		key, ok := p.str(64)
		if !ok {
			return false
		}
		p.ws()
		if !p.next(':') {
			return false
		}
		p.ws()
		if !member(key) {
			return false
		}
		p.ws()
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
		p.ws()
	}
}

// array reads an array, calling elem with each element's first byte next.
func (p *envParser) array(elem func() bool) bool {
	if !p.next('[') {
		return false
	}
	p.ws()
	if p.next(']') {
		return true
	}
	for {
		p.ws()
		if !elem() {
			return false
		}
		p.ws()
		if p.next(']') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// uint reads a whole number of 1 to 15 digits, at most limit: the numbers the
// text sanitiser never parses and encoding/json reads exactly.
func (p *envParser) uint(limit uint64) (uint64, bool) {
	start := p.pos
	var n uint64
	for p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' && p.pos-start < 16 {
		n = n*10 + uint64(p.b[p.pos]-'0')
		p.pos++
	}
	digits := p.pos - start
	if digits == 0 || digits > 15 || digits > 1 && p.b[start] == '0' || n > limit {
		return 0, false
	}
	if p.pos < len(p.b) {
		switch p.b[p.pos] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

func (p *envParser) boolean(b *bool) bool {
	switch {
	case bytes.HasPrefix(p.b[p.pos:], []byte("true")):
		*b, p.pos = true, p.pos+4
	case bytes.HasPrefix(p.b[p.pos:], []byte("false")):
		*b, p.pos = false, p.pos+5
	default:
		return false
	}
	return true
}

// text reads a string of printable ASCII without escapes, at most limit
// bytes.
func (p *envParser) text(dst *string, limit int) bool {
	raw, ok := p.str(limit)
	if !ok {
		return false
	}
	for _, c := range raw {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	*dst = string(raw)
	return true
}

// bytes reads a string of unpadded base64url (no escapes, no white space:
// the decoder alone skips line breaks), at most limit bytes, and decodes
// it.
func (p *envParser) bytes(dst *e2ee.Bytes, limit int) bool {
	raw, ok := p.str(limit)
	if !ok || bytes.IndexByte(raw, '\n') >= 0 || bytes.IndexByte(raw, '\r') >= 0 {
		return false
	}
	n := strictB64.DecodedLen(len(raw))
	if p.arena == nil || cap(p.arena)-len(p.arena) < n {
		// Binary fields decode to at most 3/4 of their text.
		p.arena = make([]byte, 0, max(n, (len(p.b)-p.pos)*3/4+n))
	}
	start := len(p.arena)
	m, err := strictB64.Decode(p.arena[start:start+n], raw)
	if err != nil {
		return false
	}
	p.arena = p.arena[:start+m]
	*dst = p.arena[start : start+m : start+m]
	return true
}

// str reads a string's raw bytes (between its quotes), at most limit; an
// escaped quote ends it early, and the caller then finds a backslash or a
// syntax error.
func (p *envParser) str(limit int) ([]byte, bool) {
	if !p.next('"') {
		return nil, false
	}
	end := bytes.IndexByte(p.b[p.pos:], '"')
	if end < 0 || end > limit {
		return nil, false
	}
	raw := p.b[p.pos : p.pos+end]
	p.pos += end + 1
	return raw, true
}

func (p *envParser) next(c byte) bool {
	if p.pos < len(p.b) && p.b[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *envParser) ws() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}
