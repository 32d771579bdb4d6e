package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// The fast path. Decoding through golang-fhir-models with encoding/json is
// reflection-heavy, and it was most of the cost of a Bundle of vital signs.
// Most inbound Observations have one plain shape, so a small hand-written
// scanner reads that shape straight into the same r4 values the full
// decoder would fill; the mapping, every check and every error after that
// are the shared code (readObservation). The scanner takes only what it is
// sure the full decoder reads the same way — the elements Tend maps plus a
// few harmless ones, spelled exactly (encoding/json also matches other
// cases), each once, with strings free of escapes and invalid UTF-8, no
// null, and the JSON grammar checked — and gives up on anything else:
// the caller then runs the full decoder, which accepts or rejects the
// document and names what is wrong exactly as before. The tests run both
// paths over every fixture and fuzz the scanner against the full decoder.

// CheckFastPath decodes data (an Observation or a Bundle) both ways, the
// fast path and the full decoder, and returns an error when they disagree
// on the result or any error (the error names what differs, never a value:
// documents hold health data). fast reports whether the fast path took the
// document at all (when it does not, only the full decoder ever reads it).
// For tests and fuzzing.
func CheckFastPath(data []byte, now time.Time) (fast bool, err error) {
	if obs, ok := fastObservation(data); ok {
		// The same elements decoded...
		var full observationIn
		if err := strictDecode(data, &full); err != nil || !reflect.DeepEqual(obs, &full) {
			return true, errors.New("observation: the fast path and the full decoder read different elements")
		}
		// ...and the same outcome.
		gotIn, gotErr := readObservation(obs, now)
		wantIn, wantErr := decodeObservationFull(data, now)
		if !reflect.DeepEqual(gotIn, wantIn) || !reflect.DeepEqual(gotErr, wantErr) {
			return true, errors.New("observation: the fast path and the full decoder map it differently")
		}
		fast = true
	}
	if fb, ok := scanBundle(data); ok {
		var full bundleTyped
		if err := strictDecode(data, &full); err != nil || len(full.Entry) != len(fb.entries) {
			return true, fmt.Errorf("bundle: the fast path read %d entries, the full decoder %d", len(fb.entries), len(full.Entry))
		}
		for i, e := range full.Entry {
			if !reflect.DeepEqual(fb.entries[i], e.Resource) || fb.fullURLs[i] != deref(e.FullUrl) {
				return true, fmt.Errorf("bundle entry %d: the fast path and the full decoder read different elements", i)
			}
		}
		b, dec, _ := fastBundle(data, now)
		wantB, wantDec, wantErr := readBundleFull(data, now)
		if wantErr != nil || !reflect.DeepEqual(b, wantB) || !reflect.DeepEqual(dec, wantDec) {
			return true, errors.New("bundle: the fast path and the full decoder map it differently")
		}
		fast = true
	}
	return fast, nil
}

// fastObservation reads one Observation document the fast way; ok is false
// when the document is not of the plain shape.
func fastObservation(data []byte) (*observationIn, bool) {
	s := newScanner(data)
	obs := s.observation()
	if !s.end() {
		return nil, false
	}
	return obs, true
}

// fastBundle reads a Bundle of Observations the fast way; ok is false when
// it is not of the plain shape or not a sound envelope (readBundleTyped's
// conditions), so that the caller's full path decides.
func fastBundle(data []byte, now time.Time) (Bundle, []Decoded, bool) {
	fb, ok := scanBundle(data)
	if !ok {
		return Bundle{}, nil, false
	}
	return readEntries(fb.typ == "transaction", len(fb.entries), func(i int) (string, *observationIn) {
		return fb.fullURLs[i], fb.entries[i]
	}, now)
}

// scannedBundle is a Bundle as the fast path read it.
type scannedBundle struct {
	typ      string
	entries  []*observationIn
	fullURLs []string
}

// scanBundle reads a Bundle of the plain shape with a sound envelope.
func scanBundle(data []byte) (scannedBundle, bool) {
	s := newScanner(data)
	var (
		fb           scannedBundle
		resourceType string
		sound        = true
		seen         uint32
	)
	if s.enter('{') {
		for n := 0; s.more('}', &n); {
			switch s.key() {
			case "resourceType":
				s.once(&seen, 1<<0)
				resourceType = s.str()
			case "type":
				s.once(&seen, 1<<1)
				fb.typ = s.str()
			case "entry":
				s.once(&seen, 1<<2)
				fb.entries = make([]*observationIn, 0, 64)
				if !s.enter('[') {
					break
				}
				for n := 0; s.more(']', &n); {
					obs, fullURL, ok := s.entry()
					sound = sound && ok
					fb.entries, fb.fullURLs = append(fb.entries, obs), append(fb.fullURLs, fullURL)
				}
			default:
				s.fail()
			}
		}
	}
	ok := s.end() && sound && resourceType == "Bundle" && (fb.typ == "transaction" || fb.typ == "batch") &&
		len(fb.entries) > 0 && len(fb.entries) <= MaxEntries
	return fb, ok
}

// entry reads one Bundle entry; sound is false unless it is a POST of an
// Observation with its resource.
func (s *scanner) entry() (obs *observationIn, fullURL string, sound bool) {
	var method, url string
	var hasRequest bool
	var seen uint32
	if !s.enter('{') {
		return nil, "", false
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "fullUrl":
			s.once(&seen, 1<<0)
			fullURL = s.str()
		case "resource":
			s.once(&seen, 1<<1)
			obs = s.observation()
		case "request":
			s.once(&seen, 1<<2)
			hasRequest = true
			var seenReq uint32
			if !s.enter('{') {
				break
			}
			for n := 0; s.more('}', &n); {
				switch s.key() {
				case "method":
					s.once(&seenReq, 1<<0)
					method = s.str()
				case "url":
					s.once(&seenReq, 1<<1)
					url = s.str()
				default:
					s.fail()
				}
			}
		default:
			s.fail()
		}
	}
	return obs, fullURL, hasRequest && method == "POST" && (url == "Observation" || url == "Observation/") && obs != nil
}

// scanner reads JSON of the plain shape from b. Once it fails it stays
// failed, and every read returns a zero value. Strings are substrings of
// one copy of the document, and the r4 values' string pointers point into
// slabs: a document costs a few allocations per Observation, not one per
// element.
type scanner struct {
	b      []byte
	doc    string // b, copied once
	i      int
	failed bool
	strs   []string      // slab of the *string values
	nums   []json.Number // slab of the *json.Number values
}

func newScanner(data []byte) *scanner { return &scanner{b: data, doc: string(data)} }

func (s *scanner) fail() { s.failed = true }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and reports the next byte (0 at the end or after
// a failure).
func (s *scanner) next() byte {
	if s.failed {
		return 0
	}
	s.ws()
	if s.i >= len(s.b) {
		s.fail()
		return 0
	}
	return s.b[s.i]
}

// end reports whether the document was read without failure and nothing
// but white space follows it.
func (s *scanner) end() bool {
	if s.failed {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// enter reads the opening byte c of an object or array.
func (s *scanner) enter(c byte) bool {
	if s.next() != c {
		s.fail()
		return false
	}
	s.i++
	return true
}

// more reports whether the object or array being read, closed by c, has
// another member (n counts those read so far): it reads the comma before
// a member, or the closing byte after the last.
func (s *scanner) more(c byte, n *int) bool {
	b := s.next()
	switch {
	case s.failed:
		return false
	case *n == 0 && b == c:
		s.i++
		return false
	case *n > 0 && b == c:
		s.i++
		return false
	case *n > 0 && b == ',':
		s.i++
	case *n > 0:
		s.fail()
		return false
	}
	*n++
	return true
}

// key reads a member's key and the colon after it.
func (s *scanner) key() string {
	k := s.str()
	if s.next() != ':' {
		s.fail()
		return ""
	}
	s.i++
	return k
}

// once fails when the member bit stands for was read before in this
// object.
func (s *scanner) once(seen *uint32, bit uint32) {
	if *seen&bit != 0 {
		s.fail()
	}
	*seen |= bit
}

// str reads a string without escapes or control characters, in valid UTF-8.
func (s *scanner) str() string {
	if s.next() != '"' {
		s.fail()
		return ""
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(s.b[start:j]) {
				s.fail()
				return ""
			}
			s.i = j + 1
			return s.doc[start:j]
		case c == '\\' || c < 0x20:
			s.fail()
			return ""
		case c >= 0x80:
			ascii = false
		}
	}
	s.fail()
	return ""
}

// strp reads a string and returns a pointer to it, from the slab.
func (s *scanner) strp() *string {
	if len(s.strs) == cap(s.strs) {
		s.strs = make([]string, 0, 64)
	}
	s.strs = append(s.strs, s.str())
	return &s.strs[len(s.strs)-1]
}

// number reads a JSON number, checked against the grammar, as its text.
func (s *scanner) number() *json.Number {
	if s.next() == 0 {
		return nil
	}
	n := numberEnd(s.doc[s.i:])
	if n < 0 {
		s.fail()
		return nil
	}
	if len(s.nums) == cap(s.nums) {
		s.nums = make([]json.Number, 0, 16)
	}
	s.nums = append(s.nums, json.Number(s.doc[s.i:s.i+n]))
	s.i += n
	return &s.nums[len(s.nums)-1]
}

// strings reads an array of strings.
func (s *scanner) strings() []string {
	out := []string{}
	if s.enter('[') {
		for n := 0; s.more(']', &n); {
			out = append(out, s.str())
		}
	}
	return out
}

// observation reads an Observation of the plain shape.
func (s *scanner) observation() *observationIn {
	obs := &observationIn{}
	o := &obs.Observation
	var seen uint32
	if !s.enter('{') {
		return obs
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "resourceType":
			s.once(&seen, 1<<0)
			obs.ResourceType = s.str()
		case "id":
			s.once(&seen, 1<<1)
			o.Id = s.strp()
		case "meta":
			s.once(&seen, 1<<2)
			o.Meta = s.meta()
		case "status":
			s.once(&seen, 1<<3)
			obs.Status = s.strp()
		case "category":
			s.once(&seen, 1<<4)
			o.Category = []r4.CodeableConcept{}
			if s.enter('[') {
				for n := 0; s.more(']', &n); {
					o.Category = append(o.Category, s.concept())
				}
			}
		case "code":
			s.once(&seen, 1<<5)
			o.Code = s.concept()
		case "subject":
			s.once(&seen, 1<<6)
			o.Subject = s.reference()
		case "device":
			s.once(&seen, 1<<7)
			o.Device = s.reference()
		case "effectiveDateTime":
			s.once(&seen, 1<<8)
			o.EffectiveDateTime = s.strp()
		case "effectiveInstant":
			s.once(&seen, 1<<9)
			o.EffectiveInstant = s.strp()
		case "effectivePeriod":
			s.once(&seen, 1<<10)
			o.EffectivePeriod = s.period()
		case "issued":
			s.once(&seen, 1<<11)
			o.Issued = s.strp()
		case "identifier":
			s.once(&seen, 1<<12)
			o.Identifier = []r4.Identifier{}
			if s.enter('[') {
				for n := 0; s.more(']', &n); {
					o.Identifier = append(o.Identifier, *s.identifier())
				}
			}
		case "valueQuantity":
			s.once(&seen, 1<<13)
			o.ValueQuantity = s.quantity()
		case "component":
			s.once(&seen, 1<<14)
			o.Component = []r4.ObservationComponent{}
			if s.enter('[') {
				for n := 0; s.more(']', &n); {
					o.Component = append(o.Component, s.component())
				}
			}
		default:
			s.fail()
		}
	}
	return obs
}

func (s *scanner) component() r4.ObservationComponent {
	var c r4.ObservationComponent
	var seen uint32
	if !s.enter('{') {
		return c
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "code":
			s.once(&seen, 1<<0)
			c.Code = s.concept()
		case "valueQuantity":
			s.once(&seen, 1<<1)
			c.ValueQuantity = s.quantity()
		default:
			s.fail()
		}
	}
	return c
}

func (s *scanner) meta() *r4.Meta {
	m := &r4.Meta{}
	var seen uint32
	if !s.enter('{') {
		return m
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "profile":
			s.once(&seen, 1<<0)
			m.Profile = s.strings()
		case "lastUpdated":
			s.once(&seen, 1<<1)
			m.LastUpdated = s.strp()
		default:
			s.fail()
		}
	}
	return m
}

func (s *scanner) concept() r4.CodeableConcept {
	var c r4.CodeableConcept
	var seen uint32
	if !s.enter('{') {
		return c
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "coding":
			s.once(&seen, 1<<0)
			c.Coding = make([]r4.Coding, 0, 1)
			if s.enter('[') {
				for n := 0; s.more(']', &n); {
					c.Coding = append(c.Coding, s.coding())
				}
			}
		case "text":
			s.once(&seen, 1<<1)
			c.Text = s.strp()
		default:
			s.fail()
		}
	}
	return c
}

func (s *scanner) coding() r4.Coding {
	var x r4.Coding
	var seen uint32
	if !s.enter('{') {
		return x
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "system":
			s.once(&seen, 1<<0)
			x.System = s.strp()
		case "code":
			s.once(&seen, 1<<1)
			x.Code = s.strp()
		case "display":
			s.once(&seen, 1<<2)
			x.Display = s.strp()
		default:
			s.fail()
		}
	}
	return x
}

func (s *scanner) reference() *r4.Reference {
	r := &r4.Reference{}
	var seen uint32
	if !s.enter('{') {
		return r
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "reference":
			s.once(&seen, 1<<0)
			r.Reference = s.strp()
		case "identifier":
			s.once(&seen, 1<<1)
			r.Identifier = s.identifier()
		case "display":
			s.once(&seen, 1<<2)
			r.Display = s.strp()
		default:
			s.fail()
		}
	}
	return r
}

func (s *scanner) identifier() *r4.Identifier {
	id := &r4.Identifier{}
	var seen uint32
	if !s.enter('{') {
		return id
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "system":
			s.once(&seen, 1<<0)
			id.System = s.strp()
		case "value":
			s.once(&seen, 1<<1)
			id.Value = s.strp()
		default:
			s.fail()
		}
	}
	return id
}

func (s *scanner) period() *r4.Period {
	p := &r4.Period{}
	var seen uint32
	if !s.enter('{') {
		return p
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "start":
			s.once(&seen, 1<<0)
			p.Start = s.strp()
		case "end":
			s.once(&seen, 1<<1)
			p.End = s.strp()
		default:
			s.fail()
		}
	}
	return p
}

func (s *scanner) quantity() *r4.Quantity {
	q := &r4.Quantity{}
	var seen uint32
	if !s.enter('{') {
		return q
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "value":
			s.once(&seen, 1<<0)
			q.Value = s.number()
		case "unit":
			s.once(&seen, 1<<1)
			q.Unit = s.strp()
		case "system":
			s.once(&seen, 1<<2)
			q.System = s.strp()
		case "code":
			s.once(&seen, 1<<3)
			q.Code = s.strp()
		default:
			s.fail()
		}
	}
	return q
}
