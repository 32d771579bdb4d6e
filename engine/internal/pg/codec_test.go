package pg_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine/enginetest"
)

// TestUUIDCodecRoundTrips checks the binary uuid.UUID codec ConfigurePool
// installs, for values, NULLs, pointers and arrays.
func TestUUIDCodecRoundTrips(t *testing.T) {
	t.Parallel()
	pool := enginetest.NewPool(t)
	ctx := context.Background()
	id := uuid.New()
	var got uuid.UUID
	var gotPtr, gotNull *uuid.UUID
	var gotArr []uuid.UUID
	var text string
	err := pool.QueryRow(ctx, `SELECT $1::uuid, $2::uuid, NULL::uuid, $3::uuid[], $1::uuid::text`, id, &id, []uuid.UUID{id, uuid.Nil}).
		Scan(&got, &gotPtr, &gotNull, &gotArr, &text)
	if err != nil {
		t.Fatal(err)
	}
	if got != id || gotPtr == nil || *gotPtr != id || gotNull != nil || len(gotArr) != 2 || gotArr[0] != id || gotArr[1] != uuid.Nil || text != id.String() {
		t.Errorf("round trip: %v %v %v %v %q, want %v", got, gotPtr, gotNull, gotArr, text, id)
	}
	var nilPtr *uuid.UUID
	var isNull bool
	if err := pool.QueryRow(ctx, `SELECT $1::uuid IS NULL`, nilPtr).Scan(&isNull); err != nil || !isNull {
		t.Errorf("nil *uuid.UUID did not encode as NULL: %v %v", isNull, err)
	}
	var n int
	var first uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE x IS NULL), min(x::text)::uuid FROM unnest($1::uuid[]) AS x`,
		[]*uuid.UUID{&id, nil}).Scan(&n, &first); err != nil || n != 1 || first != id {
		t.Errorf("[]*uuid.UUID{id, nil} = %d NULLs, %v (%v), want 1 NULL and %v", n, first, err, id)
	}
	var notNull uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&notNull); err == nil {
		t.Error("scanning NULL into uuid.UUID succeeded")
	}
}
