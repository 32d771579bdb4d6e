package engine

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ConfigurePool prepares a pool configuration for the engine: it teaches each
// connection to encode and scan uuid.UUID as binary UUIDs. Without it pgx
// falls back to uuid.UUID's driver.Valuer (a string round trip per value),
// which costs a fifth of the ingest path's CPU.
func ConfigurePool(cfg *pgxpool.Config) {
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	prev := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		registerUUID(conn.TypeMap())
		if prev != nil {
			return prev(ctx, conn)
		}
		return nil
	}
}

// pgUUID is uuid.UUID seen through pgtype's UUID scanner and valuer interfaces.
type pgUUID uuid.UUID

func (u *pgUUID) ScanUUID(v pgtype.UUID) error {
	if !v.Valid {
		return errors.New("cannot scan NULL into uuid.UUID")
	}
	*u = pgUUID(v.Bytes)
	return nil
}

func (u pgUUID) UUIDValue() (pgtype.UUID, error) { return pgtype.UUID{Bytes: u, Valid: true}, nil }

type wrapUUIDEncodePlan struct{ next pgtype.EncodePlan }

func (p *wrapUUIDEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *wrapUUIDEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(pgUUID(value.(uuid.UUID)), buf)
}

type wrapUUIDScanPlan struct{ next pgtype.ScanPlan }

func (p *wrapUUIDScanPlan) SetNext(next pgtype.ScanPlan) { p.next = next }

func (p *wrapUUIDScanPlan) Scan(src []byte, dst any) error {
	return p.next.Scan(src, (*pgUUID)(dst.(*uuid.UUID)))
}

func registerUUID(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{
		func(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
			if v, ok := value.(uuid.UUID); ok {
				return &wrapUUIDEncodePlan{}, pgUUID(v), true
			}
			return nil, nil, false
		},
	}, m.TryWrapEncodePlanFuncs...)
	m.TryWrapScanPlanFuncs = append([]pgtype.TryWrapScanPlanFunc{
		func(target any) (pgtype.WrappedScanPlanNextSetter, any, bool) {
			if t, ok := target.(*uuid.UUID); ok {
				return &wrapUUIDScanPlan{}, (*pgUUID)(t), true
			}
			return nil, nil, false
		},
	}, m.TryWrapScanPlanFuncs...)
	m.RegisterDefaultPgType(uuid.UUID{}, "uuid")
}
