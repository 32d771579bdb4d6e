package pg

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
)

// ErrBadCursor is a page cursor this API did not issue.
var ErrBadCursor = errors.New("invalid cursor")

// Page trims a list query's rows (fetched with LIMIT limit+1) to limit and
// returns the cursor of the next page, "" at the end.
func Page[T any](rows []T, limit int, cursor func(last T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, cursor(rows[limit-1])
}

// ClampLimit is a list's page size: 50 by default, at most 500.
func ClampLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}

// EncodeCursor makes an opaque cursor of v.
func EncodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Cursor is a decoded page cursor that can check its own values: a cursor is
// client input, and a forged one must be refused before it reaches SQL.
type Cursor interface{ Valid() bool }

// DecodeCursor decodes s into v; ErrBadCursor when s is not one of ours.
func DecodeCursor(s string, v Cursor) error {
	if len(s) > 512 {
		return ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ErrBadCursor
	}
	if err := json.Unmarshal(b, v); err != nil || !v.Valid() {
		return ErrBadCursor
	}
	return nil
}

// TimeCursor is the cursor of a list ordered by (time, id), newest first:
// the last row of the previous page.
type TimeCursor struct {
	At time.Time `json:"t"`
	ID uuid.UUID `json:"i"`
}

// Valid implements Cursor.
func (c *TimeCursor) Valid() bool { return CursorTimeOK(c.At) }

// NewestCursor is a TimeCursor after every row: a newest-first list's first
// page starts below it.
func NewestCursor() TimeCursor {
	return TimeCursor{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: uuid.Max}
}

// CursorTimeOK bounds a cursor's time to what Postgres and the API can hold.
func CursorTimeOK(t time.Time) bool {
	return !t.Before(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)) && t.Before(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
}
