package alerting

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/access"
	"github.com/tendhealth/tend/engine/audit"
	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/events"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/rota"
	"github.com/tendhealth/tend/rpm"
	"github.com/tendhealth/tend/rules"
)

// Escalation. When route pages an open alert it sets the alert's
// escalation_due_at to the urgency's acknowledgement deadline (the team's
// policy, else rpm.Urgency.AckDeadline; an urgency without one never
// escalates) — to now for a critical alert that reached no device, which
// also gets a job that takes its first step at once. Step i notifies level i
// of the policy's levels (level 0, the first page, is route's) and sets the
// due time of step i+1 a deadline later; the step after the last level flags
// the alert escalation_exhausted and clears the due time.
//
// A periodic sweep (Sweep) takes the next step of every open alert whose due
// time has passed, in batches that lock their alerts with FOR UPDATE SKIP
// LOCKED, several batches in parallel: no River job waits per alert, so an
// acknowledgement cancels the pending step by clearing the column, and a
// backlog of thousands of overdue alerts costs a few statements per batch.
// A step does nothing unless the alert is still open (acknowledged, snoozed
// or resolved alerts do not escalate) and has not taken that step yet: the
// alert's row lock and escalation_level make each (alert, step) happen once
// however many sweeps, jobs or processes try it.

// DefaultLevels are the escalation levels of a team without a policy.
var DefaultLevels = []string{"on_call", "leads", "all"}

// DefaultSweepInterval is how often the escalation sweep runs by default.
const DefaultSweepInterval = 2 * time.Second

// Sweep sizes: alerts per transaction, and transactions in flight at once.
const (
	sweepBatch    = 250
	sweepParallel = 3
)

// teamPolicy is a care team's escalation policy as stored (package care
// validates it).
type teamPolicy struct {
	AckDeadlines map[rpm.Urgency]rules.Duration `json:"ack_deadlines"`
	Levels       []string                       `json:"levels"`
	// SkipOfflineFirstStep: the first page of an alert that escalates
	// reaches only those of its recipients who are online (all of them
	// when none is); step 1 pages the others.
	SkipOfflineFirstStep bool `json:"skip_offline_first_step"`
}

func (p *teamPolicy) skipOffline() bool { return p != nil && p.SkipOfflineFirstStep }

// skipsOffline reports whether the first page of an alert of urgency u
// leaves out offline clinicians: the policy asks for it and the alert
// escalates, so that a next step exists to page them.
func (p *teamPolicy) skipsOffline(u rpm.Urgency) bool { return p.skipOffline() && p.deadline(u) > 0 }

// deadline is the time an alert of urgency u waits for an acknowledgement
// before each step; 0 means it does not escalate.
func (p *teamPolicy) deadline(u rpm.Urgency) time.Duration {
	if p == nil || p.AckDeadlines == nil {
		return u.AckDeadline()
	}
	return p.AckDeadlines[u].Std()
}

func (p *teamPolicy) levels() []string {
	if p == nil || len(p.Levels) == 0 {
		return DefaultLevels
	}
	return p.Levels
}

// escalateArgs is one escalation step of an alert to take at once (an
// undelivered critical alert's first step). The kind string is stored in the
// database and must never change. Steps at a deadline are not jobs: the
// sweep takes them.
type escalateArgs struct {
	AlertID uuid.UUID `json:"alert_id"`
	Step    int       `json:"step"`
}

func (escalateArgs) Kind() string { return "alerting.escalate" }

// EscalationQueue is the River queue of escalation sweeps and immediate
// steps, apart from the default queue so that a sweep of many overdue alerts
// neither waits behind nor holds up other maintenance jobs.
const EscalationQueue = "escalate"

// escalateJob is step of alert, available to workers at once.
func escalateJob(alert uuid.UUID, step int) river.InsertManyParams {
	return river.InsertManyParams{Args: escalateArgs{AlertID: alert, Step: step},
		InsertOpts: &river.InsertOpts{Queue: EscalationQueue}}
}

type escalateWorker struct {
	river.WorkerDefaults[escalateArgs]
	al *Service
}

func (w *escalateWorker) Work(ctx context.Context, job *river.Job[escalateArgs]) error {
	_, err := w.al.Escalate(ctx, job.Args.AlertID, job.Args.Step)
	return err
}

// sweepArgs is the periodic escalation sweep. The kind string is stored in
// the database and must never change.
type sweepArgs struct{}

func (sweepArgs) Kind() string { return "alerting.escalation_sweep" }

type sweepWorker struct {
	river.WorkerDefaults[sweepArgs]
	al *Service
}

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[sweepArgs]) error {
	_, err := w.al.Sweep(ctx)
	return err
}

// escalationActor is who escalates.
var escalationActor = access.System("escalation")

// EscalateUndelivered escalates a critical alert that reached no device at
// once (delivery calls it when it flags one undelivered): the first step
// runs now, unless it ran already.
func (al *Service) EscalateUndelivered(ctx context.Context, alertID uuid.UUID) {
	if _, err := al.Escalate(ctx, alertID, 1); err != nil {
		al.log.ErrorContext(ctx, "escalate undelivered alert", "alert_id", alertID, "error", err)
	}
}

// Escalate takes step of alert id's escalation now if the alert is still
// open and has not taken it yet (the immediate job; exported for tests and
// tools), whatever its due time. It reports whether it did. Concurrent calls
// share transactions (a pg.Batcher).
func (al *Service) Escalate(ctx context.Context, id uuid.UUID, step int) (bool, error) {
	r := &escalateReq{id: id, step: step}
	if err := al.escalations.Do(ctx, r); err != nil {
		return false, err
	}
	return r.done, nil
}

// escalateReq is one escalation step to take, and whether it was.
type escalateReq struct {
	id   uuid.UUID
	step int
	done bool
}

// runEscalations takes a batch of explicit steps in one transaction, locking
// the alerts in id order so that concurrent batches cannot deadlock (sweeps
// skip locked alerts, so they never wait for these).
func (al *Service) runEscalations(ctx context.Context, reqs []*escalateReq) error {
	slices.SortFunc(reqs, func(a, b *escalateReq) int {
		if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
			return c
		}
		return a.step - b.step
	})
	ids := make([]uuid.UUID, 0, len(reqs))
	for _, r := range reqs {
		if len(ids) == 0 || ids[len(ids)-1] != r.id {
			ids = append(ids, r.id)
		}
	}
	return pg.InTx(ctx, al.pool, func(tx pgx.Tx) error {
		locked, err := scanEscalations(tx.Query(ctx, lockEscalationsSQL, ids))
		if err != nil {
			return err
		}
		byID := make(map[uuid.UUID]*escAlert, len(locked))
		for _, a := range locked {
			byID[a.id] = a
		}
		// Of several requests for one alert, the first (lowest) step not yet
		// taken wins; the others find it taken, as they would one by one.
		var todo []*escAlert
		taken := map[*escalateReq]bool{}
		for _, r := range reqs {
			a := byID[r.id]
			if a == nil || a.step != 0 || !a.due(r.step) {
				continue
			}
			a.step = r.step
			todo = append(todo, a)
			taken[r] = true
		}
		if err := al.takeSteps(ctx, tx, todo); err != nil {
			return err
		}
		for _, r := range reqs {
			r.done = taken[r]
		}
		return nil
	})
}

// Sweep takes the next step of every open alert whose escalation is due by
// the clock, in batches of sweepBatch alerts per transaction with
// sweepParallel transactions at once, until none is left (the periodic job;
// exported for tests and benchmarks). Alerts another sweep holds are
// skipped, not waited for. It returns how many steps it took.
func (al *Service) Sweep(ctx context.Context) (int, error) {
	var (
		mu    sync.Mutex
		total int
		first error
		wg    sync.WaitGroup
	)
	for range sweepParallel {
		wg.Go(func() {
			for ctx.Err() == nil {
				n, steps, err := al.sweepBatch(ctx)
				mu.Lock()
				total += steps
				if err != nil && first == nil {
					first = err
				}
				stop := first != nil
				mu.Unlock()
				if err != nil || stop || n < sweepBatch {
					return
				}
			}
		})
	}
	wg.Wait()
	return total, first
}

// sweepBatch takes one batch of due steps in one transaction. It returns
// how many alerts it locked and how many steps it took.
func (al *Service) sweepBatch(ctx context.Context) (int, int, error) {
	var n, steps int
	err := pg.InTx(ctx, al.pool, func(tx pgx.Tx) error {
		due, err := scanEscalations(tx.Query(ctx, dueEscalationsSQL, al.now(), sweepBatch))
		if err != nil {
			return err
		}
		n = len(due)
		var todo []*escAlert
		var stale []uuid.UUID // due, yet with no step left to take: nothing is pending
		for _, a := range due {
			if a.due(a.level + 1) {
				a.step = a.level + 1
				todo = append(todo, a)
			} else {
				stale = append(stale, a.id)
			}
		}
		if len(stale) > 0 {
			if _, err := tx.Exec(ctx, setEscalationDueSQL, stale, nil); err != nil {
				return fmt.Errorf("clear escalations: %w", err)
			}
		}
		steps = len(todo)
		return al.takeSteps(ctx, tx, todo)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("escalation sweep: %w", err)
	}
	return n, steps, nil
}

// ScheduleEscalations sets the due time of each alert's next escalation step
// to at: for benchmarks that measure a sweep of overdue alerts alone.
func (al *Service) ScheduleEscalations(ctx context.Context, alerts []uuid.UUID, at time.Time) error {
	if _, err := al.pool.Exec(ctx, setEscalationDueSQL, alerts, at); err != nil {
		return fmt.Errorf("schedule escalations: %w", err)
	}
	return nil
}

// EnqueueEscalations inserts an immediate job for step of each alert's
// escalation with COPY: for benchmarks that measure the immediate path.
func (al *Service) EnqueueEscalations(ctx context.Context, alerts []uuid.UUID, step int) error {
	jobs := make([]river.InsertManyParams, len(alerts))
	for i, id := range alerts {
		jobs[i] = escalateJob(id, step)
	}
	if _, err := al.jobs().InsertManyFast(ctx, jobs); err != nil {
		return fmt.Errorf("enqueue escalations: %w", err)
	}
	return nil
}

// escAlert is a locked alert, what a step needs of it and its team, and the
// step to take (0: none).
type escAlert struct {
	id, teamID, patientID uuid.UUID
	status                string
	urgency               rpm.Urgency
	level                 int
	exhausted             bool
	policy                *teamPolicy
	tz                    string
	slots                 []rota.Slot
	step                  int
}

// pages reports whether a's step notifies anyone: it has a level, or it is
// step 1 of a policy that left offline clinicians out of the first page.
func (a *escAlert) pages() bool {
	return a.step < len(a.policy.levels()) || (a.step == 1 && a.policy.skipsOffline(a.urgency))
}

// due reports whether step may be taken: the alert is open, not exhausted,
// and has not taken step yet.
func (a *escAlert) due(step int) bool {
	return a.status == "open" && !a.exhausted && step >= 1 && a.level < step
}

func scanEscalations(rows pgx.Rows, err error) ([]*escAlert, error) {
	if err != nil {
		return nil, fmt.Errorf("escalate: lock alerts: %w", err)
	}
	defer rows.Close()
	var out []*escAlert
	for rows.Next() {
		a := &escAlert{}
		if err := rows.Scan(&a.id, &a.status, &a.urgency, &a.teamID, &a.patientID, &a.level, &a.exhausted,
			&a.policy, &a.tz, &a.slots); err != nil {
			return nil, fmt.Errorf("escalate: lock alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("escalate: lock alerts: %w", err)
	}
	return out, nil
}

// takeSteps takes each alert's step (locked in tx): it loads the staff of
// their teams and who was already told of each alert in one round trip,
// records notifications, alert updates, alert events, audit entries and
// stream events in another, and enqueues the deliveries with one insert.
func (al *Service) takeSteps(ctx context.Context, tx pgx.Tx, alerts []*escAlert) error {
	if len(alerts) == 0 {
		return nil
	}
	now := al.now()
	staff, told, err := loadStepRecipients(ctx, tx, alerts)
	if err != nil {
		return err
	}
	var (
		n          notifications
		uID        []uuid.UUID
		uStep      []int32
		uExhausted []bool
		uDue       []*time.Time
		eAction    []string
		eDetail    []map[string]any
		onCall     = map[uuid.UUID][]uuid.UUID{} // per team, computed once
	)
	b := &pgx.Batch{}
	for _, a := range alerts {
		exhausted, detail, due := planStep(a, staff[a.teamID], told[a.id], onCall, &n, now)
		action := "escalated"
		if exhausted {
			action = "escalation_exhausted"
		}
		uID, uStep, uExhausted, uDue = append(uID, a.id), append(uStep, int32(a.step)), append(uExhausted, exhausted), append(uDue, due)
		eAction, eDetail = append(eAction, action), append(eDetail, detail)
		al.audit.Queue(b, escalationActor, audit.Entry{Action: "alert.escalate", PatientID: a.patientID,
			ObjectType: "alert", ObjectID: a.id.String(), Detail: detail})
		events.Queue(b, now, events.Event{Type: events.AlertUpdated, CareTeamID: a.teamID, PatientID: a.patientID,
			Payload: map[string]any{"alert_id": a.id, "status": a.status, "urgency": a.urgency, "escalation_level": a.step,
				"escalation_exhausted": exhausted}})
	}
	if len(n.id) > 0 {
		n.queue(b, now)
	}
	b.Queue(markEscalationsSQL, uID, uStep, uExhausted, uDue, now)
	b.Queue(insertAlertEventsSQL, uID, eAction, eDetail, now)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("escalate: record the steps: %w", err)
	}
	if len(n.jobs) > 0 {
		if _, err := al.jobs().InsertManyTx(ctx, tx, n.jobs); err != nil {
			return fmt.Errorf("escalate: enqueue deliveries: %w", err)
		}
	}
	return nil
}

// loadStepRecipients loads, for the alerts that have a level left, their
// teams' staff and who each alert has already told, in one round trip.
func loadStepRecipients(ctx context.Context, tx pgx.Tx, alerts []*escAlert) (staff map[uuid.UUID][]recipient, told map[uuid.UUID][]uuid.UUID, err error) {
	var teams, notifying []uuid.UUID
	for _, a := range alerts {
		if a.pages() {
			notifying = append(notifying, a.id)
			if !slices.Contains(teams, a.teamID) {
				teams = append(teams, a.teamID)
			}
		}
	}
	staff, told = map[uuid.UUID][]recipient{}, map[uuid.UUID][]uuid.UUID{}
	if len(notifying) == 0 {
		return staff, told, nil
	}
	b := &pgx.Batch{}
	b.Queue(teamStaffSQL, teams).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var team uuid.UUID
			var r recipient
			if err := rows.Scan(&team, &r.userID, &r.teamRole, &r.tz, &r.quietStart, &r.quietEnd, &r.devices); err != nil {
				return err
			}
			staff[team] = append(staff[team], r)
		}
		return rows.Err()
	})
	b.Queue(alertsNotifiedSQL, notifying).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var alert, user uuid.UUID
			if err := rows.Scan(&alert, &user); err != nil {
				return err
			}
			told[alert] = append(told[alert], user)
		}
		return rows.Err()
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("escalate: load recipients: %w", err)
	}
	return staff, told, nil
}

// planStep plans one alert's step: a notification (into n) for each of its
// level's recipients not told yet, held for the quiet hours of a medium or
// low alert with a catch-up. It returns whether the levels are exhausted,
// the step's audit detail and when the next step is due (nil: never).
func planStep(a *escAlert, staff []recipient, told []uuid.UUID, onCall map[uuid.UUID][]uuid.UUID, n *notifications,
	now time.Time) (exhausted bool, detail map[string]any, due *time.Time) {
	levels := a.policy.levels()
	detail = map[string]any{"step": a.step}
	if !a.pages() {
		return true, detail, nil
	}
	oc, ok := onCall[a.teamID]
	if !ok {
		loc, err := time.LoadLocation(a.tz)
		if err != nil {
			loc = time.UTC
		}
		oc = rota.OnCall(a.slots, loc, now)
		onCall[a.teamID] = oc
	}
	to := stepRecipients(a, levels, staff, oc, told)
	for _, r := range to {
		var held *time.Time
		if a.urgency == rpm.Medium || a.urgency == rpm.Low {
			if end, in := r.quietUntil(now); in {
				held = &end
			}
		}
		n.add(r, a.id, "alert", a.urgency, held)
		if held != nil {
			n.jobs = append(n.jobs, delivery.CatchupJob(r.userID, *held))
		}
	}
	detail["notified"] = len(to)
	if a.step >= len(levels) {
		return true, detail, nil
	}
	detail["level"] = levels[a.step]
	if d := a.policy.deadline(a.urgency); d > 0 {
		next := now.Add(d)
		due = &next
	}
	return false, detail, due
}

// stepRecipients is who a's step pages: its level's recipients and, at
// step 1 of a policy that skips offline clinicians, whoever the first page
// left out — each once, leaving out whoever was told already.
func stepRecipients(a *escAlert, levels []string, staff []recipient, onCall, told []uuid.UUID) []recipient {
	var to []recipient
	if a.step < len(levels) {
		to = levelRecipients(levels[a.step], staff, onCall)
	}
	if a.step == 1 && a.policy.skipsOffline(a.urgency) {
		for _, r := range firstPage(a.urgency, staff, onCall) {
			if !slices.ContainsFunc(to, func(x recipient) bool { return x.userID == r.userID }) {
				to = append(to, r)
			}
		}
	}
	return slices.DeleteFunc(to, func(r recipient) bool { return slices.Contains(told, r.userID) })
}

// levelRecipients picks who one escalation level of a team pages: on_call
// (who is on call now, else the first level), leads (else everyone), all
// (every clinician and lead). Medium and low notifications wait out a user's
// quiet hours as route's do.
func levelRecipients(level string, staff []recipient, onCall []uuid.UUID) []recipient {
	switch level {
	case "on_call":
		first, _ := firstLevel(staff)
		return slices.Clone(pageOnCall(first, staff, onCall))
	case "leads":
		var to []recipient
		for _, r := range staff {
			if r.teamRole == "lead" {
				to = append(to, r)
			}
		}
		if len(to) == 0 {
			return slices.Clone(staff)
		}
		return to
	default: // all
		return slices.Clone(staff)
	}
}
