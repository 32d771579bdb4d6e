package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/tendhealth/tend/engine"
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

func (b readingsBody) single() readingJSON {
	return readingJSON{Kind: b.Kind, Value: b.Value, Systolic: b.Systolic, Diastolic: b.Diastolic, Unit: b.Unit,
		ObservedAt: b.ObservedAt, SourceID: b.SourceID}
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
