package messaging

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/thread"
)

// pushQueue is the queue of message pushes: delivery's, since what they do
// is decide on pushes.
const pushQueue = delivery.Queue

// pushArgs is the push of one message, scheduled at the end of its hold.
// The kind string is stored in the database and must never change.
type pushArgs struct {
	MessageID uuid.UUID `json:"message_id"`
}

func (pushArgs) Kind() string { return "message.push" }

type pushWorker struct {
	river.WorkerDefaults[pushArgs]
	ms *Service
}

func (w *pushWorker) Work(ctx context.Context, job *river.Job[pushArgs]) error {
	_, err := w.ms.PushMessage(ctx, job.Args.MessageID)
	if errors.Is(err, access.ErrNotFound) {
		return river.JobCancel(err)
	}
	return err
}

// AddWorkers registers the message push worker.
func (ms *Service) AddWorkers(workers *river.Workers) {
	river.AddWorker(workers, &pushWorker{ms: ms})
}

// PushMessage decides, at the end of a message's hold, who is pushed about it, and
// hands those pushes to delivery: the recipients are the other side as it
// is now (a patient's message: the team's clinicians and leads; a staff
// message in a patient thread: the patient; in a staff thread: the other
// participants) minus whoever has read the message meanwhile. It returns the
// users notified. A re-run notifies no one twice.
func (ms *Service) PushMessage(ctx context.Context, messageID uuid.UUID) ([]uuid.UUID, error) {
	var users []uuid.UUID
	err := pg.InTx(ctx, ms.pool, func(tx pgx.Tx) error {
		var threadID uuid.UUID
		var seq int64
		var sender *uuid.UUID
		var senderRole, kind, threadKind string
		var urgent bool
		err := tx.QueryRow(ctx, pushMessageSQL, messageID).Scan(&threadID, &seq, &sender, &senderRole, &urgent, &kind, &threadKind)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("message push: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("message push: %w", err)
		}
		if kind != thread.Text && kind != thread.Encrypted {
			return nil // only text and encrypted messages are pushed
		}
		rows, err := tx.Query(ctx, pushRecipientsSQL, threadID)
		if err != nil {
			return fmt.Errorf("message push: recipients: %w", err)
		}
		type recipient struct {
			id       uuid.UUID
			role     string
			teamRole *string
			read     int64
		}
		all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (recipient, error) {
			var x recipient
			err := r.Scan(&x.id, &x.role, &x.teamRole, &x.read)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("message push: recipients: %w", err)
		}
		fromPatient := senderRole == string(access.RolePatient)
		toPatient := false
		seen := map[uuid.UUID]bool{}
		for _, r := range all {
			if seen[r.id] || (sender != nil && r.id == *sender) || r.read >= seq {
				continue
			}
			seen[r.id] = true
			if threadKind == thread.Patient {
				switch {
				case fromPatient && (r.teamRole == nil || (*r.teamRole != "clinician" && *r.teamRole != "lead")):
					continue
				case !fromPatient && r.role != string(access.RolePatient):
					continue
				}
				toPatient = !fromPatient
			}
			users = append(users, r.id)
		}
		if len(users) == 0 {
			return nil
		}
		return ms.delivery.NotifyMessage(ctx, tx, delivery.MessagePush{MessageID: messageID, ThreadID: threadID,
			Users: users, Urgent: urgent, ToPatient: toPatient})
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}
