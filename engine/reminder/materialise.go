package reminder

import (
	"cmp"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"golang.org/x/sync/errgroup"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/rpm"
)

// Queue is the River queue of reminder jobs (materialisation, the push at a
// dose's time, the missed-dose check).
const Queue = "reminder"

// active is a schedule that reminds, with its patient's time zone.
type active struct {
	spec      rpm.Schedule
	patientID uuid.UUID
	zone      *time.Location
}

// candidate is one occurrence offered to the doses table.
type candidate struct {
	id    uuid.UUID
	occ   rpm.Occurrence
	sched *active
}

// materialise stores the occurrences of schedules whose instant lies in
// [from, to) as pending doses, each with its reminder jobs (at its time,
// and the optional second reminder) and the time its missed-dose check is
// due, when its grace period ends (missed_check_at, taken by the missed-dose
// sweep: no job per dose). An occurrence already stored (by an earlier run,
// or by another process at the same moment: the occurrence key is unique,
// and a concurrent insert of the same key waits for the first and then
// skips it) is left alone, and jobs are inserted only for the doses this
// call stored, so no occurrence ever gets two sets of jobs. The jobs are
// not River unique jobs (a unique insert costs a hash and an index probe
// per job): the dose row is the claim — each job locks its dose by
// occurrence key and acts only on what its state still allows (Remind
// stamps reminded_at, CheckMissed decides a pending dose), so even a
// duplicate job would send nothing twice. The jobs go in with COPY
// (InsertManyFastTx). It returns how many doses it stored.
func (rs *Service) materialise(ctx context.Context, tx pgx.Tx, list []active, from, to time.Time) (int, error) {
	now := rs.now()
	var (
		cands                   = map[uuid.UUID]*candidate{}
		ids, schedules, patient []uuid.UUID
		keys                    []string
		dues, checks            []time.Time
	)
	for i := range list {
		s := &list[i]
		sid, err := uuid.Parse(s.spec.ID)
		if err != nil {
			return 0, fmt.Errorf("materialise: schedule id: %w", err)
		}
		occs, err := rpm.Occurrences(s.spec, s.zone, from, to)
		if err != nil {
			return 0, fmt.Errorf("materialise schedule %s: %w", sid, err)
		}
		for _, o := range occs {
			c := &candidate{id: pg.NewID(), occ: o, sched: s}
			cands[c.id] = c
			ids, schedules, patient = append(ids, c.id), append(schedules, sid), append(patient, s.patientID)
			keys, dues, checks = append(keys, o.Key), append(dues, o.At), append(checks, o.At.Add(s.spec.Grace()))
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, insertDosesSQL, ids, schedules, patient, keys, dues, checks, now)
	if err != nil {
		return 0, fmt.Errorf("materialise: store doses: %w", err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("materialise: store doses: %w", err)
	}
	if len(stored) == 0 {
		return 0, nil
	}
	jobs := make([]river.InsertManyParams, 0, 2*len(stored))
	for _, id := range stored {
		c := cands[id]
		jobs = append(jobs, doseJobs(c.sched.spec, c.occ)...)
	}
	if _, err := rs.jobs().InsertManyFastTx(ctx, tx, jobs); err != nil {
		return 0, fmt.Errorf("materialise: schedule reminders: %w", err)
	}
	return len(stored), nil
}

// doseJobs are an occurrence's reminder jobs.
func doseJobs(s rpm.Schedule, o rpm.Occurrence) []river.InsertManyParams {
	opts := func(at time.Time) *river.InsertOpts {
		return &river.InsertOpts{Queue: Queue, ScheduledAt: at, MaxAttempts: 10}
	}
	out := []river.InsertManyParams{{Args: sendArgs{Key: o.Key}, InsertOpts: opts(o.At)}}
	if again := s.RemindAgain(); again > 0 {
		out = append(out, river.InsertManyParams{Args: sendArgs{Key: o.Key, Again: true}, InsertOpts: opts(o.At.Add(again))})
	}
	return out
}

// patientZone reads a patient's time zone.
func (rs *Service) patientZone(ctx context.Context, tx pgx.Tx, patientID uuid.UUID) (*time.Location, error) {
	var tz string
	if err := tx.QueryRow(ctx, patientZoneSQL, patientID).Scan(&tz); err != nil {
		return nil, fmt.Errorf("patient time zone: %w", err)
	}
	return rpm.ValidateZone(tz)
}

// materialisePage is how many schedules one transaction of the periodic
// materialisation covers, and materialiseParallel how many such
// transactions run at once.
const (
	materialisePage     = 500
	materialiseParallel = 4
)

// Materialise stores the doses of every active schedule due within the
// horizon (48 hours by default) from now: pages of schedule ids are read in
// order and each page is materialised in its own transaction, a few at
// once. Each transaction share-locks its schedules and reads them again, so
// a schedule edited or paused meanwhile is expanded as it now is, or not at
// all. The periodic River job runs it; running it twice, or in two processes
// at once, stores and schedules each dose once. It returns how many doses
// it stored.
func (rs *Service) Materialise(ctx context.Context) (int, error) {
	now := rs.now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(materialiseParallel)
	var total atomic.Int64
	after := uuid.Nil
	for {
		rows, err := rs.pool.Query(gctx, activeSchedulesSQL, after, materialisePage)
		if err != nil {
			_ = g.Wait()
			return int(total.Load()), fmt.Errorf("materialise: schedules: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			_ = g.Wait()
			return int(total.Load()), fmt.Errorf("materialise: schedules: %w", err)
		}
		if len(ids) > 0 {
			g.Go(func() error {
				return pg.InTx(gctx, rs.pool, func(tx pgx.Tx) error {
					page, err := rs.lockActive(gctx, tx, ids)
					if err != nil {
						return err
					}
					stored, err := rs.materialise(gctx, tx, page, now, now.Add(rs.horizon))
					if err != nil || stored == 0 {
						return err
					}
					total.Add(int64(stored))
					return rs.audit.Write(gctx, tx, systemActor, audit.Entry{Action: "dose.materialise", ObjectType: "schedule",
						Detail: map[string]any{"schedules": len(page), "doses": stored}})
				})
			})
		}
		if len(ids) < materialisePage {
			break
		}
		after = ids[len(ids)-1]
	}
	err := g.Wait()
	return int(total.Load()), err
}

// lockActive share-locks the schedules of ids that still remind and reads
// them with their patients' zones (a patient with an invalid zone is
// skipped and logged, by id).
func (rs *Service) lockActive(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) ([]active, error) {
	rows, err := tx.Query(ctx, lockActiveSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("materialise: lock schedules: %w", err)
	}
	type row struct {
		id, patient uuid.UUID
		spec        rpm.Schedule
		tz          string
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.patient, &x.spec, &x.tz)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("materialise: lock schedules: %w", err)
	}
	page := make([]active, 0, len(got))
	zones := map[string]*time.Location{} // a page's patients share a few zones: load each once
	for _, x := range got {
		loc, ok := zones[x.tz]
		if !ok {
			loc, _ = rpm.ValidateZone(x.tz) // nil when invalid
			zones[x.tz] = loc
		}
		if loc == nil {
			rs.log.WarnContext(ctx, "reminders skipped: patient time zone invalid", "schedule_id", x.id, "patient_id", x.patient)
			continue
		}
		x.spec.ID = x.id.String()
		page = append(page, active{spec: x.spec, patientID: x.patient, zone: loc})
	}
	return page, nil
}

// materialiseArgs is the periodic materialisation job.
type materialiseArgs struct{}

// Kind is stable: it is stored in river_job.
func (materialiseArgs) Kind() string { return "reminder.materialise" }

type materialiseWorker struct {
	river.WorkerDefaults[materialiseArgs]
	rs *Service
}

func (w *materialiseWorker) Work(ctx context.Context, _ *river.Job[materialiseArgs]) error {
	_, err := w.rs.Materialise(ctx)
	return err
}

// Timeout bounds one materialisation; a large population takes a while.
func (w *materialiseWorker) Timeout(*river.Job[materialiseArgs]) time.Duration {
	return 10 * time.Minute
}

// AddWorkers registers the reminder workers and returns the periodic jobs:
// the materialisation every interval (DefaultInterval when 0) and the
// missed-dose sweep every missedEvery (DefaultMissedInterval when 0); a
// negative interval disables its job.
func (rs *Service) AddWorkers(workers *river.Workers, interval, missedEvery time.Duration) []*river.PeriodicJob {
	river.AddWorker(workers, &materialiseWorker{rs: rs})
	river.AddWorker(workers, &sendWorker{rs: rs})
	river.AddWorker(workers, &missedWorker{rs: rs})
	river.AddWorker(workers, &missedSweepWorker{rs: rs})
	var out []*river.PeriodicJob
	if interval >= 0 {
		interval = cmp.Or(interval, DefaultInterval)
		out = append(out, river.NewPeriodicJob(river.PeriodicInterval(interval),
			func() (river.JobArgs, *river.InsertOpts) {
				return materialiseArgs{}, &river.InsertOpts{Queue: Queue, UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: interval}}
			}, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	if missedEvery >= 0 {
		out = append(out, river.NewPeriodicJob(river.PeriodicInterval(cmp.Or(missedEvery, DefaultMissedInterval)),
			func() (river.JobArgs, *river.InsertOpts) {
				return missedSweepArgs{}, &river.InsertOpts{Queue: Queue, MaxAttempts: 1}
			}, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	return out
}

// systemActor is who decides missed doses and raises their alerts.
var systemActor = access.System("reminders")
