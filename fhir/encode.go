package fhir

import (
	"encoding/json"
	"slices"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// AppendJSON appends the Bundle as json.Encoder writes it (HTML-safe
// escaping, then a newline), without reflection for the Observations Tend
// builds (Observation): a Bundle of 500 spent most of its encoding time
// walking golang-fhir-models' structs. ok is false when an entry holds
// anything else; then encode the Bundle with encoding/json. A test compares
// both byte for byte.
func (b ResponseJSON) AppendJSON(buf []byte) (_ []byte, ok bool) {
	buf = slices.Grow(buf, 256+1200*len(b.Entry))
	buf = append(buf, `{"resourceType":`...)
	buf = appendString(buf, b.ResourceType)
	buf = append(buf, `,"type":`...)
	buf = appendString(buf, b.Type.Code())
	buf = append(buf, `,"timestamp":`...)
	buf = appendString(buf, b.Timestamp)
	if len(b.Entry) > 0 {
		buf = append(buf, `,"entry":[`...)
		for i := range b.Entry {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, ok = appendItem(buf, &b.Entry[i]); !ok {
				return buf, false
			}
		}
		buf = append(buf, ']')
	}
	return append(buf, "}\n"...), true
}

func appendItem(buf []byte, e *responseItem) ([]byte, bool) {
	buf = append(buf, '{')
	if e.FullURL != "" {
		buf = append(buf, `"fullUrl":`...)
		buf = appendString(buf, e.FullURL)
		buf = append(buf, ',')
	}
	if e.Resource != nil {
		buf = append(buf, `"resource":{"resourceType":`...)
		buf = appendString(buf, e.Resource.ResourceType)
		var ok bool
		if buf, ok = appendObservation(buf, (*r4.Observation)(e.Resource.observationFields)); !ok {
			return buf, false
		}
		buf = append(buf, "},"...)
	}
	buf = append(buf, `"response":{"status":`...)
	buf = appendString(buf, e.Response.Status)
	if e.Response.Location != "" {
		buf = append(buf, `,"location":`...)
		buf = appendString(buf, e.Response.Location)
	}
	if e.Response.LastModified != "" {
		buf = append(buf, `,"lastModified":`...)
		buf = appendString(buf, e.Response.LastModified)
	}
	if e.Response.Outcome != nil {
		oo, err := json.Marshal(e.Response.Outcome)
		if err != nil {
			return buf, false
		}
		buf = append(buf, `,"outcome":`...)
		buf = append(buf, oo...)
	}
	return append(buf, "}}"...), true
}

// appendObservation appends o's elements (after the resourceType, each
// with its leading comma) in golang-fhir-models' field order, for the
// elements Observation sets; ok is false when any other is set.
func appendObservation(buf []byte, o *r4.Observation) ([]byte, bool) {
	if !onlyWritten(o) {
		return buf, false
	}
	ok := true
	if o.Id != nil {
		buf = append(buf, `,"id":`...)
		buf = appendString(buf, *o.Id)
	}
	if o.Meta != nil {
		m := *o.Meta
		if m.Id != nil || len(m.Extension) > 0 || m.VersionId != nil || m.Source != nil || len(m.Security) > 0 || len(m.Tag) > 0 {
			return buf, false
		}
		buf = append(buf, `,"meta":{`...)
		sep := ""
		if m.LastUpdated != nil {
			buf = append(buf, `"lastUpdated":`...)
			buf = appendString(buf, *m.LastUpdated)
			sep = ","
		}
		if len(m.Profile) > 0 {
			buf = append(append(buf, sep...), `"profile":[`...)
			for i, p := range m.Profile {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendString(buf, p)
			}
			buf = append(buf, ']')
		}
		buf = append(buf, '}')
	}
	if len(o.Identifier) > 0 {
		buf = append(buf, `,"identifier":[`...)
		for i, id := range o.Identifier {
			if id.Id != nil || len(id.Extension) > 0 || id.Use != nil || id.Type != nil || id.Period != nil || id.Assigner != nil {
				return buf, false
			}
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '{')
			sep := ""
			if id.System != nil {
				buf = append(buf, `"system":`...)
				buf = appendString(buf, *id.System)
				sep = ","
			}
			if id.Value != nil {
				buf = append(append(buf, sep...), `"value":`...)
				buf = appendString(buf, *id.Value)
			}
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	buf = append(buf, `,"status":`...)
	buf = appendString(buf, o.Status.Code())
	if len(o.Category) > 0 {
		buf = append(buf, `,"category":[`...)
		for i := range o.Category {
			if i > 0 {
				buf = append(buf, ',')
			}
			if buf, ok = appendConcept(buf, &o.Category[i]); !ok {
				return buf, false
			}
		}
		buf = append(buf, ']')
	}
	buf = append(buf, `,"code":`...)
	if buf, ok = appendConcept(buf, &o.Code); !ok {
		return buf, false
	}
	if o.Subject != nil {
		s := o.Subject
		if s.Id != nil || len(s.Extension) > 0 || s.Type != nil || s.Identifier != nil || s.Display != nil {
			return buf, false
		}
		buf = append(buf, `,"subject":{`...)
		if s.Reference != nil {
			buf = append(buf, `"reference":`...)
			buf = appendString(buf, *s.Reference)
		}
		buf = append(buf, '}')
	}
	if o.EffectiveDateTime != nil {
		buf = append(buf, `,"effectiveDateTime":`...)
		buf = appendString(buf, *o.EffectiveDateTime)
	}
	if o.ValueQuantity != nil {
		buf = append(buf, `,"valueQuantity":`...)
		if buf, ok = appendQuantity(buf, o.ValueQuantity); !ok {
			return buf, false
		}
	}
	if len(o.Component) > 0 {
		buf = append(buf, `,"component":[`...)
		for i := range o.Component {
			c := &o.Component[i]
			code, q := c.Code, c.ValueQuantity
			if c.Id != nil || len(c.Extension) > 0 || len(c.ModifierExtension) > 0 || c.ValueCodeableConcept != nil ||
				c.ValueString != nil || c.ValueBoolean != nil || c.ValueInteger != nil || c.ValueRange != nil || c.ValueRatio != nil ||
				c.ValueSampledData != nil || c.ValueTime != nil || c.ValueDateTime != nil || c.ValuePeriod != nil ||
				c.DataAbsentReason != nil || len(c.Interpretation) > 0 || len(c.ReferenceRange) > 0 {
				return buf, false
			}
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"code":`...)
			if buf, ok = appendConcept(buf, &code); !ok {
				return buf, false
			}
			if q != nil {
				buf = append(buf, `,"valueQuantity":`...)
				if buf, ok = appendQuantity(buf, q); !ok {
					return buf, false
				}
			}
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
	}
	return buf, true
}

// onlyWritten reports whether o sets no element but those appendObservation
// writes (a test checks this list against the struct's fields).
func onlyWritten(o *r4.Observation) bool {
	return o.ImplicitRules == nil && o.Language == nil && o.Text == nil && len(o.Extension) == 0 && len(o.ModifierExtension) == 0 &&
		len(o.BasedOn) == 0 && len(o.PartOf) == 0 && len(o.Focus) == 0 && o.Encounter == nil && o.EffectivePeriod == nil &&
		o.EffectiveTiming == nil && o.EffectiveInstant == nil && o.Issued == nil && len(o.Performer) == 0 &&
		o.ValueCodeableConcept == nil && o.ValueString == nil && o.ValueBoolean == nil && o.ValueInteger == nil &&
		o.ValueRange == nil && o.ValueRatio == nil && o.ValueSampledData == nil && o.ValueTime == nil && o.ValueDateTime == nil &&
		o.ValuePeriod == nil && o.DataAbsentReason == nil && len(o.Interpretation) == 0 && len(o.Note) == 0 && o.BodySite == nil &&
		o.Method == nil && o.Specimen == nil && o.Device == nil && len(o.ReferenceRange) == 0 && len(o.HasMember) == 0 &&
		len(o.DerivedFrom) == 0
}

func appendConcept(buf []byte, c *r4.CodeableConcept) ([]byte, bool) {
	if c.Id != nil || len(c.Extension) > 0 {
		return buf, false
	}
	buf = append(buf, '{')
	sep := ""
	if len(c.Coding) > 0 {
		buf = append(buf, `"coding":[`...)
		for i, x := range c.Coding {
			if x.Id != nil || len(x.Extension) > 0 || x.Version != nil || x.UserSelected != nil {
				return buf, false
			}
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '{')
			sep := ""
			for _, f := range [...]struct {
				name string
				v    *string
			}{{`"system":`, x.System}, {`"code":`, x.Code}, {`"display":`, x.Display}} {
				if f.v != nil {
					buf = append(append(buf, sep...), f.name...)
					buf = appendString(buf, *f.v)
					sep = ","
				}
			}
			buf = append(buf, '}')
		}
		buf = append(buf, ']')
		sep = ","
	}
	if c.Text != nil {
		buf = append(append(buf, sep...), `"text":`...)
		buf = appendString(buf, *c.Text)
	}
	return append(buf, '}'), true
}

func appendQuantity(buf []byte, q *r4.Quantity) ([]byte, bool) {
	if q.Id != nil || len(q.Extension) > 0 || q.Comparator != nil {
		return buf, false
	}
	buf = append(buf, '{')
	sep := ""
	if q.Value != nil {
		if !validNumber(string(*q.Value)) {
			return buf, false
		}
		buf = append(buf, `"value":`...)
		buf = append(buf, *q.Value...)
		sep = ","
	}
	for _, f := range [...]struct {
		name string
		v    *string
	}{{`"unit":`, q.Unit}, {`"system":`, q.System}, {`"code":`, q.Code}} {
		if f.v != nil {
			buf = append(append(buf, sep...), f.name...)
			buf = appendString(buf, *f.v)
			sep = ","
		}
	}
	return append(buf, '}'), true
}

// appendString appends s quoted as encoding/json does (HTML-safe): plain
// printable ASCII as it is, anything else through encoding/json itself.
func appendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// validNumber reports whether s is a JSON number (what encoding/json
// writes verbatim for a json.Number), and nothing else.
func validNumber(s string) bool { return numberEnd(s) == len(s) }

// numberEnd returns the length of the JSON number at the start of s, or -1
// when s does not start with one.
func numberEnd(s string) int {
	j := 0
	digits := func() int {
		k := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case digits() == 0:
		return -1
	}
	if j < len(s) && s[j] == '.' {
		j++
		if digits() == 0 {
			return -1
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if digits() == 0 {
			return -1
		}
	}
	return j
}
