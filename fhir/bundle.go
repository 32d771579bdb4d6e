package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// MaxEntries bounds the entries of one inbound Bundle (as MaxBatch bounds
// the JSON API's batches).
const MaxEntries = 1000

// Entry is one entry of an inbound Bundle.
type Entry struct {
	FullURL  string
	Resource json.RawMessage
}

// Bundle is an inbound batch or transaction Bundle.
type Bundle struct {
	// Transaction is true for type transaction (all or nothing), false for
	// batch (each entry on its own).
	Transaction bool
	Entries     []Entry
	// Issues are per-entry problems found while reading the envelope (an
	// entry that is not a POST of an Observation), by entry index.
	Issues map[int]*Error
}

type bundleIn struct {
	ResourceType string `json:"resourceType"`
	r4.Bundle
}

// DecodeBundle reads a batch or transaction Bundle of Observations to
// create. The entries' resources are decoded later, one by one, with
// DecodeObservation.
func DecodeBundle(data []byte) (Bundle, error) {
	var b bundleIn
	if err := strictDecode(data, &b); err != nil {
		return Bundle{}, decodeError(err, "Bundle")
	}
	if b.ResourceType != "Bundle" {
		return Bundle{}, Malformed(Issue{Code: "structure", Expression: "Bundle", Diagnostics: "resourceType must be Bundle"})
	}
	out := Bundle{Issues: map[int]*Error{}}
	switch b.Type {
	case r4.BundleTypeTransaction:
		out.Transaction = true
	case r4.BundleTypeBatch:
	default:
		return Bundle{}, Invalid(Issue{Code: "value", Expression: "Bundle.type", Diagnostics: "type must be batch or transaction"})
	}
	if len(b.Entry) == 0 {
		return Bundle{}, Invalid(Issue{Code: "required", Expression: "Bundle.entry", Diagnostics: "the Bundle has no entries"})
	}
	if len(b.Entry) > MaxEntries {
		return Bundle{}, &Error{Status: statusTooLarge, Issues: []Issue{{Code: "too-costly", Expression: "Bundle.entry",
			Diagnostics: fmt.Sprintf("at most %d entries per Bundle", MaxEntries)}}}
	}
	for i, e := range b.Entry {
		expr := fmt.Sprintf("Bundle.entry[%d]", i)
		switch {
		case e.Request == nil:
			out.Issues[i] = Invalid(Issue{Code: "required", Expression: expr + ".request", Diagnostics: "request is required in a batch or transaction"})
		case e.Request.Method != r4.HTTPVerbPOST || (e.Request.Url != "Observation" && e.Request.Url != "Observation/"):
			out.Issues[i] = &Error{Status: statusMethodNotAllowed, Issues: []Issue{{Code: "not-supported", Expression: expr + ".request",
				Diagnostics: "only POST Observation is supported in a Bundle"}}}
		case len(e.Resource) == 0:
			out.Issues[i] = Invalid(Issue{Code: "required", Expression: expr + ".resource", Diagnostics: "resource is required"})
		}
		out.Entries = append(out.Entries, Entry{FullURL: deref(e.FullUrl), Resource: e.Resource})
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Decoded is one entry of an inbound Bundle, read: the Observation to
// store, or why the entry is refused.
type Decoded struct {
	In  Inbound
	Err *Error
}

// bundleTyped is a Bundle whose entries hold Observations, decoded in one
// pass.
type bundleTyped struct {
	ResourceType string `json:"resourceType"`
	r4.Bundle
	Entry []entryTyped `json:"entry"`
}

type entryTyped struct {
	r4.BundleEntry
	Resource *observationIn `json:"resource"`
}

// ReadBundle reads a batch or transaction Bundle of Observations to create
// and every entry's Observation, as DecodeBundle and DecodeObservation do.
// A well-formed Bundle is decoded in one pass; when that fails, the
// envelope and each entry are decoded on their own, so that the error
// names the entry at fault and the other entries of a batch still count.
//
// A Bundle of plainly shaped Observations is read by the fast path
// (fast.go) without reflection; anything else takes the full one.
func ReadBundle(data []byte, now time.Time) (Bundle, []Decoded, error) {
	if b, out, ok := fastBundle(data, now); ok {
		return b, out, nil
	}
	return readBundleFull(data, now)
}

// readBundleFull is ReadBundle through golang-fhir-models alone.
func readBundleFull(data []byte, now time.Time) (Bundle, []Decoded, error) {
	if b, out, ok := readBundleTyped(data, now); ok {
		return b, out, nil
	}
	b, err := DecodeBundle(data)
	if err != nil {
		return b, nil, err
	}
	out := make([]Decoded, len(b.Entries))
	for i, e := range b.Entries {
		if fe := b.Issues[i]; fe != nil {
			out[i].Err = fe
			continue
		}
		in, err := DecodeObservation(e.Resource, now, entryRoot(i))
		var fe *Error
		if errors.As(err, &fe) {
			out[i].Err = fe
			continue
		}
		out[i].In = in
	}
	return b, out, nil
}

// readBundleTyped is ReadBundle's one pass: ok is false unless the Bundle
// decodes strictly and its envelope is sound.
func readBundleTyped(data []byte, now time.Time) (Bundle, []Decoded, bool) {
	var b bundleTyped
	if err := strictDecode(data, &b); err != nil || b.ResourceType != "Bundle" ||
		(b.Type != r4.BundleTypeTransaction && b.Type != r4.BundleTypeBatch) || len(b.Entry) == 0 || len(b.Entry) > MaxEntries {
		return Bundle{}, nil, false
	}
	for _, e := range b.Entry {
		if e.Request == nil || e.Request.Method != r4.HTTPVerbPOST || (e.Request.Url != "Observation" && e.Request.Url != "Observation/") ||
			e.Resource == nil {
			return Bundle{}, nil, false
		}
	}
	return readEntries(b.Type == r4.BundleTypeTransaction, len(b.Entry), func(i int) (string, *observationIn) {
		return deref(b.Entry[i].FullUrl), b.Entry[i].Resource
	}, now)
}

// readEntries maps a sound Bundle envelope's n entries (entry i's fullUrl
// and Observation) to the Bundle and each entry's reading or error, rooted at
// the entry; ok is false when an entry fails other than as FHIR input. Both
// decoders (readBundleTyped, fastBundle) end here.
func readEntries(transaction bool, n int, entry func(i int) (string, *observationIn), now time.Time) (Bundle, []Decoded, bool) {
	out := Bundle{Transaction: transaction, Entries: make([]Entry, n), Issues: map[int]*Error{}}
	dec := make([]Decoded, n)
	for i := range n {
		fullURL, obs := entry(i)
		out.Entries[i].FullURL = fullURL
		in, err := readObservation(obs, now)
		if err = reroot(err, entryRoot(i)); err != nil {
			fe, ok := err.(*Error)
			if !ok {
				return Bundle{}, nil, false
			}
			dec[i].Err = fe
			continue
		}
		dec[i].In = in
	}
	return out, dec, true
}

func entryRoot(i int) string { return "Bundle.entry[" + strconv.Itoa(i) + "].resource" }

// Result is the outcome of one entry of a batch or transaction.
type Result struct {
	// Status is the HTTP status of the entry: 201 created, 200 for a
	// duplicate (its identifier was stored before), else an error.
	Status     int
	Resource   *r4.Observation // the stored Observation (created or duplicate)
	LastUpdate time.Time
	Err        *Error
}

// observationFields is r4.Observation without its MarshalJSON method, and
// observationJSON writes it with its resourceType in the same encoder pass.
// (r4.Observation.MarshalJSON marshals again, and the encoder compacts
// what a MarshalJSON returns at every level: for a Bundle of 500 that was
// most of the response's cost.)
type observationFields r4.Observation

type observationJSON struct {
	ResourceType string `json:"resourceType"`
	*observationFields
}

// ResponseJSON is a batch-response or transaction-response Bundle, shaped
// for encoding/json in one pass.
type ResponseJSON struct {
	ResourceType string         `json:"resourceType"`
	Type         r4.BundleType  `json:"type"`
	Timestamp    string         `json:"timestamp"`
	Entry        []responseItem `json:"entry,omitempty"`
}

type responseItem struct {
	FullURL  string           `json:"fullUrl,omitempty"`
	Resource *observationJSON `json:"resource,omitempty"`
	Response responseStatus   `json:"response"`
}

type responseStatus struct {
	Status       string               `json:"status"`
	Location     string               `json:"location,omitempty"`
	LastModified string               `json:"lastModified,omitempty"`
	Outcome      *r4.OperationOutcome `json:"outcome,omitempty"`
}

// ResponseBundle builds the batch-response or transaction-response Bundle.
func ResponseBundle(transaction bool, results []Result, now time.Time) (ResponseJSON, error) {
	b := ResponseJSON{ResourceType: "Bundle", Type: r4.BundleTypeBatchResponse, Timestamp: instant(now),
		Entry: make([]responseItem, len(results))}
	if transaction {
		b.Type = r4.BundleTypeTransactionResponse
	}
	for i, r := range results {
		e := &b.Entry[i]
		e.Response.Status = statusLine(r.Status)
		if r.Resource != nil {
			if r.Resource.Id == nil || r.Resource.Meta == nil || r.Resource.Meta.LastUpdated == nil {
				return b, errors.New("response bundle: observation without id or meta.lastUpdated")
			}
			e.Resource = &observationJSON{ResourceType: "Observation", observationFields: (*observationFields)(r.Resource)}
			e.FullURL = "Observation/" + *r.Resource.Id
			e.Response.Location = e.FullURL
			e.Response.LastModified = *r.Resource.Meta.LastUpdated
		}
		if r.Err != nil {
			oo := OperationOutcome(r.Err.Issues...)
			e.Response.Outcome = &oo
		}
	}
	return b, nil
}

// SetBase makes each entry's fullUrl an absolute URL under base, the FHIR
// server's base URL (such as https://tend.example.org/fhir/r4), as R4 defines
// fullUrl. Location stays relative to the base.
func (b *ResponseJSON) SetBase(base string) {
	for i := range b.Entry {
		if u := b.Entry[i].FullURL; u != "" {
			b.Entry[i].FullURL = strings.TrimSuffix(base, "/") + "/" + u
		}
	}
}

// SearchSet builds a searchset Bundle of resources (already marshalled),
// with self and, when there is a next page, next links.
func SearchSet(self, next string, resources []json.RawMessage, fullURLs []string, now time.Time) r4.Bundle {
	b := r4.Bundle{Type: r4.BundleTypeSearchset, Timestamp: ptr(instant(now)), Meta: meta(now),
		Link: []r4.BundleLink{{Relation: "self", Url: self}}}
	if next != "" {
		b.Link = append(b.Link, r4.BundleLink{Relation: "next", Url: next})
	}
	for i, r := range resources {
		b.Entry = append(b.Entry, r4.BundleEntry{FullUrl: ptr(fullURLs[i]), Resource: r,
			Search: &r4.BundleEntrySearch{Mode: ptr(r4.SearchEntryModeMatch)}})
	}
	return b
}
