package fhir

import (
	"encoding/json"
	"fmt"
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

// Result is the outcome of one entry of a batch or transaction.
type Result struct {
	// Status is the HTTP status of the entry: 201 created, 200 for a
	// duplicate (its identifier was stored before), else an error.
	Status     int
	Resource   *r4.Observation // the stored Observation (created or duplicate)
	LastUpdate time.Time
	Err        *Error
}

// ResponseBundle builds the batch-response or transaction-response Bundle.
func ResponseBundle(transaction bool, results []Result, now time.Time) (r4.Bundle, error) {
	b := r4.Bundle{Type: r4.BundleTypeBatchResponse, Timestamp: ptr(instant(now))}
	if transaction {
		b.Type = r4.BundleTypeTransactionResponse
	}
	for _, r := range results {
		e := r4.BundleEntry{Response: &r4.BundleEntryResponse{Status: statusLine(r.Status)}}
		if r.Resource != nil {
			raw, err := json.Marshal(r.Resource)
			if err != nil {
				return b, fmt.Errorf("marshal observation: %w", err)
			}
			e.Resource = raw
			e.FullUrl = ptr("Observation/" + *r.Resource.Id)
			e.Response.Location = ptr("Observation/" + *r.Resource.Id)
			e.Response.LastModified = r.Resource.Meta.LastUpdated
		}
		if r.Err != nil {
			raw, err := json.Marshal(OperationOutcome(r.Err.Issues...))
			if err != nil {
				return b, fmt.Errorf("marshal outcome: %w", err)
			}
			e.Response.Outcome = raw
		}
		b.Entry = append(b.Entry, e)
	}
	return b, nil
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
