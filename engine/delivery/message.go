package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// MessagePush is the push of one message to its recipients.
type MessagePush struct {
	MessageID, ThreadID uuid.UUID
	Users               []uuid.UUID
	// Urgent messages are high urgency and go through quiet hours; others
	// are medium and wait for the end of a recipient's quiet hours, to
	// arrive in their catch-up.
	Urgent bool
	// ToPatient picks the patient's wording ("New message from your care
	// team").
	ToPatient bool
}

// NotifyMessage records a notification per recipient of a message and, in
// tx, enqueues its deliveries (or its catch-up, in quiet hours). A
// recipient already notified of the message is skipped, so a re-run sends
// nothing twice. The push carries ids and generic words only.
func (dl *Service) NotifyMessage(ctx context.Context, tx pgx.Tx, p MessagePush) error {
	urgency, typ := rpm.Medium, "message"
	if p.Urgent {
		urgency = rpm.High
	}
	if p.ToPatient {
		typ = "care_team_message"
	}
	rows, err := tx.Query(ctx, messageUsersSQL, p.Users)
	if err != nil {
		return fmt.Errorf("message push: users: %w", err)
	}
	type user struct {
		id             uuid.UUID
		tz, start, end *string
		devices        []uuid.UUID
		heldUntil      *time.Time
		notificationID uuid.UUID
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (user, error) {
		var u user
		err := r.Scan(&u.id, &u.tz, &u.start, &u.end, &u.devices)
		return u, err
	})
	if err != nil {
		return fmt.Errorf("message push: users: %w", err)
	}
	if len(users) == 0 {
		return nil
	}
	now := dl.now()
	ids, uids := make([]uuid.UUID, len(users)), make([]uuid.UUID, len(users))
	counts, held := make([]int32, len(users)), make([]*time.Time, len(users))
	byID := make(map[uuid.UUID]*user, len(users))
	for i := range users {
		u := &users[i]
		u.notificationID = pg.NewID()
		if !p.Urgent && u.tz != nil && u.start != nil && u.end != nil {
			if end, quiet := QuietUntil(*u.tz, *u.start, *u.end, now); quiet {
				u.heldUntil = &end
			}
		}
		ids[i], uids[i], counts[i], held[i] = u.notificationID, u.id, int32(len(u.devices)), u.heldUntil
		byID[u.notificationID] = u
	}
	rows, err = tx.Query(ctx, insertMessageNotesSQL, p.MessageID, p.ThreadID, ids, uids, counts, held, typ, urgency, now)
	if err != nil {
		return fmt.Errorf("message push: record notifications: %w", err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("message push: record notifications: %w", err)
	}
	var jobs []river.InsertManyParams
	for _, id := range inserted {
		u := byID[id]
		if u.heldUntil != nil {
			jobs = append(jobs, CatchupJob(u.id, *u.heldUntil))
			continue
		}
		for _, d := range u.devices {
			jobs = append(jobs, Job(id, d, uuid.Nil, urgency))
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := dl.jobs().InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("message push: enqueue deliveries: %w", err)
	}
	return nil
}
