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
// the request actually created. Requests and readings travel as separate
// arrays (a few requests, many readings), so the readings' arrays hold plain
// values that encode in binary.
type ReadingCreations struct {
	// per request
	actor, patient []*uuid.UUID
	org            []uuid.UUID
	role, request  []string
	// per reading
	reading []uuid.UUID
	job     []int32 // 1-based ordinal of the reading's request
	source  []*string
}

// Add records the readings of the next request (ids[i] with its source id,
// "" for none) by actor for patient of organisation org.
func (c *ReadingCreations) Add(a access.Actor, patient, org uuid.UUID, ids []uuid.UUID, sources []string) {
	c.actor, c.patient, c.org = append(c.actor, pg.NilIfZero(a.UserID)), append(c.patient, &patient), append(c.org, org)
	c.role, c.request = append(c.role, Role(a)), append(c.request, a.RequestID)
	n := int32(len(c.actor))
	for i := range ids {
		c.reading, c.job = append(c.reading, ids[i]), append(c.job, n)
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
	b.Queue(readingCreationsSQL, now, c.actor, c.role, c.patient, c.request, c.reading, c.job, c.source, c.org)
}
