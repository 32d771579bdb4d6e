package audit

import (
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
)

// ReadingCreations collects a group commit's readings for their
// reading.create entries: one entry per request, counting only the readings
// the request actually created.
type ReadingCreations struct {
	actor, patient, reading []*uuid.UUID
	role, request           []string
	job                     []int32
	source                  []*string
}

// Add records the readings of request n (ids[i] with its source id, "" for
// none) by actor for patient.
func (c *ReadingCreations) Add(n int32, a access.Actor, patient uuid.UUID, ids []uuid.UUID, sources []string) {
	for i := range ids {
		c.actor, c.patient, c.reading = append(c.actor, pg.NilIfZero(a.UserID)), append(c.patient, &patient), append(c.reading, &ids[i])
		c.role, c.request, c.job = append(c.role, Role(a)), append(c.request, a.RequestID), append(c.job, n)
		var src *string
		if sources[i] != "" {
			src = &sources[i]
		}
		c.source = append(c.source, src)
	}
}

// Queue adds the entries to b. It must follow the readings' insert in the
// same transaction: a reading whose source_id was already known (a duplicate,
// never stored) is not counted, and a request of duplicates only writes no
// entry.
func (c *ReadingCreations) Queue(b *pgx.Batch, now time.Time) {
	b.Queue(readingCreationsSQL, now, c.actor, c.role, c.patient, c.reading, c.request, c.job, c.source)
}
