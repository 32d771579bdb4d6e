package fhir

import (
	"encoding/json"
	"unicode/utf8"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// The fast path's JSON scanner: a small hand-written reader of the one
// plain shape most inbound Observations have; anything else fails it and
// goes the general way (fast.go).

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
