package pg_test

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// TestArrayCodecRoundTrips sends every slice type the whole-array encoders
// take — with NULLs, empty, nil, non-ASCII text, extreme numbers and times
// before and after 2000 — and reads each back through PostgreSQL's own text
// form, against what pgx's own element-by-element encoding sends for the same
// values (a connection configured without ConfigurePool).
func TestArrayCodecRoundTrips(t *testing.T) {
	t.Parallel()
	ours := enginetest.NewPool(t)
	ctx := context.Background()
	theirs, err := pgx.Connect(ctx, ours.Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close(ctx)
	id, s, f := uuid.New(), "Zoë – ✓", 98.6
	at := time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	values := map[string]any{
		"uuid[] ids":          []uuid.UUID{id, uuid.Nil},
		"uuid[] nullable":     []*uuid.UUID{&id, nil},
		"text[] strings":      []string{s, "", "plain"},
		"text[] nullable":     []*string{nil, &s},
		"float8[] numbers":    []float64{f, -0.5, math.MaxFloat64, math.Inf(-1), math.NaN()},
		"float8[] nullable":   []*float64{&f, nil},
		"timestamptz[] times": []time.Time{at, at.Add(time.Microsecond), time.Date(2026, 12, 7, 20, 30, 0, 123456000, time.FixedZone("x", 3600))},
		"int4[] numbers":      []int32{0, -1, math.MaxInt32, math.MinInt32},
		"text[] empty":        []string{},
		"uuid[] nil":          []uuid.UUID(nil),
	}
	for name, v := range values {
		typ, _, _ := strings.Cut(name, " ")
		q := `SELECT $1::` + typ + `::text`
		var got, want pgtype.Text
		if err := ours.QueryRow(ctx, q, v).Scan(&got); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := theirs.QueryRow(ctx, q, v).Scan(&want); err != nil {
			t.Errorf("%s through pgx's own codec: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: PostgreSQL read %v, want %v (pgx's own encoding)", name, got, want)
		}
	}
}

// TestArrayCodecAllocations: encoding an array of 500 ids, numbers or times
// allocates a few times, not once or twice per element as pgx's own
// element-by-element encoding does.
func TestArrayCodecAllocations(t *testing.T) {
	cfg, err := pgx.ParseConfig(enginetest.NewPool(t).Config().ConnConfig.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	m := conn.TypeMap()
	pg.RegisterCodecs(m)
	ids, nums, times := make([]uuid.UUID, 500), make([]*float64, 500), make([]time.Time, 500)
	for i := range ids {
		ids[i], times[i] = uuid.New(), time.Now()
		if i%2 == 0 {
			v := float64(i)
			nums[i] = &v
		}
	}
	buf := make([]byte, 0, 64<<10)
	for _, c := range []struct {
		oid   uint32
		value any
	}{{pgtype.UUIDArrayOID, ids}, {pgtype.Float8ArrayOID, nums}, {pgtype.TimestamptzArrayOID, times}} {
		plan := m.PlanEncode(c.oid, pgtype.BinaryFormatCode, c.value)
		if plan == nil {
			t.Fatalf("no plan for %T", c.value)
		}
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := plan.Encode(c.value, buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("encoding %T of 500: %.0f allocations, want at most 2", c.value, allocs)
		}
	}
}
