package engine

import (
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tendhealth/tend/engine/internal/pg"
)

// ConfigurePool prepares a pool configuration for Tend: uuid.UUID values
// travel in binary. Build every pool the engine uses with it.
func ConfigurePool(cfg *pgxpool.Config) { pg.ConfigurePool(cfg) }
