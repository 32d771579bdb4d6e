package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// catchupArgs releases a user's held notifications as one catch-up
// notification per device. Routing schedules it at the end of the user's
// quiet window; it is unique per (user, window end), so the alerts of one
// night share one job. The kind string is stored in the database and must
// never change.
type catchupArgs struct {
	UserID uuid.UUID `json:"user_id" river:"unique"`
	At     time.Time `json:"at" river:"unique"`
}

func (catchupArgs) Kind() string { return "notify.catchup" }

func catchupOpts(at time.Time) *river.InsertOpts {
	return &river.InsertOpts{Queue: Queue, ScheduledAt: at, Priority: 3, MaxAttempts: 25,
		UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type catchupWorker struct {
	river.WorkerDefaults[catchupArgs]
	dl *Service
}

func (w *catchupWorker) Work(ctx context.Context, job *river.Job[catchupArgs]) error {
	_, err := w.dl.catchUp(ctx, job.Args.UserID)
	if errors.Is(err, access.ErrNotFound) {
		return river.JobCancel(err)
	}
	return err
}

// catchUp sends a user's held notifications as one catch-up notification
// per enabled device, unless the user is (again, or still) inside a quiet
// window: then they wait for its end. It returns the catch-up's id, or
// uuid.Nil when nothing was sent.
//
// Everything happens in one transaction (mark the held notifications, insert
// the catch-up and its delivery jobs), so a re-run after a crash either finds
// nothing left to release or does it all again. The user's row is locked so
// that two catch-ups for one user never split the held notifications.
func (dl *Service) catchUp(ctx context.Context, userID uuid.UUID) (uuid.UUID, error) {
	var id uuid.UUID
	err := pg.InTx(ctx, dl.pool, func(tx pgx.Tx) error {
		var tz, start, end *string
		err := tx.QueryRow(ctx, lockQuietHoursSQL, userID).
			Scan(&tz, &start, &end)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("catch-up user: %w", access.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("catch-up: %w", err)
		}
		now := dl.now()
		q := newQuietWindow(pg.Deref(tz), pg.Deref(start), pg.Deref(end))
		if _, quiet := q.at(now); quiet {
			return dl.rescheduleHeld(ctx, tx, userID, q, now)
		}
		var n, medium, messages int
		err = tx.QueryRow(ctx, countHeldSQL, userID).Scan(&n, &medium, &messages)
		if err != nil {
			return fmt.Errorf("catch-up: count held: %w", err)
		}
		if n == 0 {
			return nil
		}
		urgency := rpm.Low
		if medium > 0 {
			urgency = rpm.Medium
		}
		id = pg.NewID()
		b := &pgx.Batch{}
		b.Queue(insertCatchupSQL, id, userID, urgency, n, now, messages)
		b.Queue(claimHeldSQL, userID, id)
		var devices []uuid.UUID
		b.Queue(enabledDevicesSQL, userID).
			QueryRow(func(r pgx.Row) error { return r.Scan(&devices) })
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("catch-up: record: %w", err)
		}
		if len(devices) == 0 {
			return nil
		}
		jobs := make([]river.InsertManyParams, len(devices))
		for i, d := range devices {
			jobs[i] = river.InsertManyParams{Args: deliverArgs{NotificationID: id, DeviceID: d}, InsertOpts: deliverOpts(urgency)}
		}
		if _, err := dl.jobs().InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("catch-up: enqueue deliveries: %w", err)
		}
		return nil
	})
	if err != nil {
		return uuid.Nil, err
	}
	if id != uuid.Nil {
		dl.metrics.Catchups.Inc()
	}
	return id, nil
}

// rescheduleHeld makes a user's held notifications wait for the end of the
// window q is in at now, or releases them at once when q is nil or now is
// outside it (the user cleared or moved their quiet hours). It runs inside
// the caller's transaction.
func (dl *Service) rescheduleHeld(ctx context.Context, tx pgx.Tx, userID uuid.UUID, q *quietWindow, now time.Time) error {
	end, quiet := q.at(now)
	if !quiet {
		end = now.UTC()
	}
	tag, err := tx.Exec(ctx, rescheduleHeldSQL, userID, end)
	if err != nil {
		return fmt.Errorf("reschedule held notifications: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	if _, err := dl.jobs().InsertTx(ctx, tx, catchupArgs{UserID: userID, At: end}, catchupOpts(end)); err != nil {
		return fmt.Errorf("schedule catch-up: %w", err)
	}
	return nil
}

// catchupSweepArgs is the periodic safety net for held notifications whose
// catch-up did not run: one held by an ingest whose transaction was still
// open when the window's catch-up ran. The kind string must never change.
type catchupSweepArgs struct{}

func (catchupSweepArgs) Kind() string { return "notify.catchup_sweep" }

type catchupSweepWorker struct {
	river.WorkerDefaults[catchupSweepArgs]
	dl *Service
}

// catchupSweepInterval is how often the sweep runs; a straggler waits at
// most about twice this long past its window.
const catchupSweepInterval = time.Minute

func (w *catchupSweepWorker) Work(ctx context.Context, job *river.Job[catchupSweepArgs]) error {
	_, err := w.dl.sweepHeld(ctx)
	return err
}

// sweepHeld schedules a catch-up now for every user with notifications held
// past their window's end, and returns how many it scheduled.
func (dl *Service) sweepHeld(ctx context.Context) (int, error) {
	now := dl.now()
	rows, err := dl.pool.Query(ctx, dueHeldUsersSQL, now.Add(-catchupSweepInterval/2))
	if err != nil {
		return 0, fmt.Errorf("sweep held notifications: %w", err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("sweep held notifications: %w", err)
	}
	if len(users) == 0 {
		return 0, nil
	}
	// One job per user and sweep minute: unique, so overlapping sweeps
	// (two leaders in a failover) schedule it once.
	at := now.UTC().Truncate(time.Minute)
	jobs := make([]river.InsertManyParams, len(users))
	for i, u := range users {
		jobs[i] = river.InsertManyParams{Args: catchupArgs{UserID: u, At: at}, InsertOpts: catchupOpts(at)}
	}
	if _, err := dl.jobs().InsertMany(ctx, jobs); err != nil {
		return 0, fmt.Errorf("sweep held notifications: %w", err)
	}
	dl.log.WarnContext(ctx, "held notifications past their window: catch-up scheduled", "users", len(users))
	return len(users), nil
}

// AddWorkers registers the delivery and quiet-hours workers and returns their
// periodic jobs (run by the leader when workers run).
func (dl *Service) AddWorkers(workers *river.Workers) []*river.PeriodicJob {
	river.AddWorker(workers, &deliverWorker{dl: dl})
	river.AddWorker(workers, &catchupWorker{dl: dl})
	river.AddWorker(workers, &catchupSweepWorker{dl: dl})
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(catchupSweepInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				return catchupSweepArgs{}, &river.InsertOpts{Queue: Queue}
			}, nil),
	}
}

// CatchupJob is the job that ends user's quiet hours at at: one catch-up
// notification for everything held. It is unique per (user, instant).
func CatchupJob(user uuid.UUID, at time.Time) river.InsertManyParams {
	return river.InsertManyParams{Args: catchupArgs{UserID: user, At: at}, InsertOpts: catchupOpts(at)}
}

// RescheduleHeld moves the notifications held for userID to the end of the
// quiet window the user is now in — their own, or their organisation's when
// they set none — or releases them now when they are in none; inside the
// caller's transaction, after it changed the user's preferences.
func (dl *Service) RescheduleHeld(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	var tz, start, end *string
	if err := tx.QueryRow(ctx, lockQuietHoursSQL, userID).Scan(&tz, &start, &end); err != nil {
		return fmt.Errorf("reschedule held notifications: quiet hours: %w", err)
	}
	return dl.rescheduleHeld(ctx, tx, userID, newQuietWindow(pg.Deref(tz), pg.Deref(start), pg.Deref(end)), dl.now())
}
