package alerting

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/tendhealth/tend/engine/delivery"
	"github.com/tendhealth/tend/engine/internal/pg"
	"github.com/tendhealth/tend/engine/internal/rota"
	"github.com/tendhealth/tend/rpm"
)

// recipient is a user to notify and their enabled devices.
type recipient struct {
	userID   uuid.UUID
	teamRole string // clinician, lead, scheduler, or "patient"
	devices  []uuid.UUID
	// online: a client of theirs holds a connection (staff only).
	online bool
	// tz, quietStart and quietEnd are the user's quiet hours (nil: none).
	tz, quietStart, quietEnd *string
}

// quietUntil returns the end of the quiet window r is in at now, if any.
func (r recipient) quietUntil(now time.Time) (time.Time, bool) {
	if r.quietStart == nil || r.tz == nil || r.quietEnd == nil {
		return time.Time{}, false
	}
	return delivery.QuietUntil(*r.tz, *r.quietStart, *r.quietEnd, now)
}

// route notifies the care team about alerts, inside the ingest transaction:
// one notification per (alert, user) and one delivery job per (notification,
// device), inserted with River's InsertManyTx so they commit with the reading.
//
// Critical and high alerts page the team's clinicians and leads on call now
// by its rota (package rota); when nobody is on call, or for medium and low
// alerts, the first level is the team's clinicians (when a team has none,
// its leads). Disabled users are skipped. Patients of a critical alert
// get a safety message.
//
// A team whose policy skips offline clinicians at the first step pages, of
// those, only the ones online, when anyone is and the alert escalates;
// escalation step 1 pages whoever was left out.
//
// A medium or low alert for a user inside their quiet hours is held: its
// notification is recorded with held_until (the window's end) and no device
// job; a unique notify.catchup job at that instant sends one catch-up
// notification for everything held (package delivery). Critical and high alerts
// always go out at once.
func (al *Service) route(ctx context.Context, tx pgx.Tx, patientID, teamID uuid.UUID, groups []*alertGroup) error {
	var fresh *time.Time
	if al.fresh != nil {
		f := al.fresh()
		fresh = &f
	}
	all, err := loadRecipients(ctx, tx, teamID, patientID, fresh)
	if err != nil {
		return err
	}
	now := al.now()
	onCall, policy, err := teamRouting(ctx, tx, teamID, now)
	if err != nil {
		return err
	}
	return al.storeRoute(ctx, tx, planRoute(all, onCall, policy, groups, now))
}

// loadRecipients loads the team's members and the patient's own users who
// may be told, with their devices and quiet hours, and whether each staff
// member is online (a heartbeat after fresh; nil: nobody is).
func loadRecipients(ctx context.Context, tx pgx.Tx, teamID, patientID uuid.UUID, fresh *time.Time) ([]recipient, error) {
	rows, err := tx.Query(ctx, recipientsSQL, teamID, patientID, fresh)
	if err != nil {
		return nil, fmt.Errorf("route: load recipients: %w", err)
	}
	var all []recipient
	for rows.Next() {
		var r recipient
		if err := rows.Scan(&r.userID, &r.teamRole, &r.tz, &r.quietStart, &r.quietEnd, &r.devices, &r.online); err != nil {
			rows.Close()
			return nil, fmt.Errorf("route: load recipients: %w", err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("route: load recipients: %w", err)
	}
	return all, nil
}

// notifications are the notifications to insert, column by column, and
// the jobs that go with them (deliveries, catch-ups, escalations).
type notifications struct {
	id, user, alert []uuid.UUID
	typ, urgency    []string
	held            []*time.Time
	devices         []int32
	jobs            []river.InsertManyParams
}

// add records a notification of alert for r, and a delivery job per
// device unless it is held until held (its catch-up is the caller's).
func (n *notifications) add(r recipient, alert uuid.UUID, typ string, u rpm.Urgency, held *time.Time) {
	id := pg.NewID()
	n.id, n.user, n.alert = append(n.id, id), append(n.user, r.userID), append(n.alert, alert)
	n.typ, n.urgency, n.held = append(n.typ, typ), append(n.urgency, string(u)), append(n.held, held)
	if held != nil {
		n.devices = append(n.devices, 0)
		return
	}
	n.devices = append(n.devices, int32(len(r.devices)))
	for _, d := range r.devices {
		n.jobs = append(n.jobs, delivery.Job(id, d, alert, u))
	}
}

// queue queues the notifications' insert on b.
func (n *notifications) queue(b *pgx.Batch, now time.Time) {
	b.Queue(insertNotificationsSQL, n.id, n.user, n.typ, n.alert, n.urgency, n.held, n.devices, now)
}

// routePlan is what routing decided for one transaction's alerts: the
// notifications and their jobs, and the alerts' notified, undelivered and
// escalation state.
type routePlan struct {
	notifications
	now               time.Time
	notified, unreach []uuid.UUID
	escID             []uuid.UUID // escalations to schedule, due at escDue
	escDue            []time.Time
	catchups          map[catchup]bool
	quiet             map[uuid.UUID]*time.Time // per user, computed once
}

// planRoute decides who is told of each alert and how, from the
// recipients, who is on call and the team's policy; it reads nothing.
func planRoute(all []recipient, onCall []uuid.UUID, policy *teamPolicy, groups []*alertGroup, now time.Time) *routePlan {
	team, patients := firstLevel(all)
	urgent := pageOnCall(team, all, onCall)
	var teamOnline, urgentOnline []recipient
	if policy.skipOffline() {
		teamOnline, urgentOnline = onlineFirst(team), onlineFirst(urgent)
	}
	p := &routePlan{now: now, catchups: map[catchup]bool{}, quiet: map[uuid.UUID]*time.Time{}}
	for _, g := range groups {
		devices := 0
		paged, online := team, teamOnline
		if g.urgency == rpm.Critical || g.urgency == rpm.High {
			paged, online = urgent, urgentOnline
		}
		if policy.skipsOffline(g.urgency) {
			paged = online
		}
		for _, r := range paged {
			p.tell(r, g, "alert")
			devices += len(r.devices)
		}
		undelivered := false
		if g.urgency == rpm.Critical {
			for _, r := range patients {
				p.tell(r, g, "safety")
			}
			if devices == 0 {
				p.unreach = append(p.unreach, g.alertID)
				undelivered = true
			}
		}
		p.notified = append(p.notified, g.alertID)
		// Set the first escalation step's due time; when nobody's device
		// could be told, it is due now and a job takes it at once (the sweep
		// would, should the job be lost).
		if g.status == "open" {
			if undelivered {
				p.escID, p.escDue = append(p.escID, g.alertID), append(p.escDue, now)
				p.jobs = append(p.jobs, escalateJob(g.alertID, 1))
			} else if d := policy.deadline(g.urgency); d > 0 {
				p.escID, p.escDue = append(p.escID, g.alertID), append(p.escDue, now.Add(d))
			}
		}
	}
	for c := range p.catchups {
		p.jobs = append(p.jobs, delivery.CatchupJob(c.user, c.at))
	}
	return p
}

// heldUntil is the end of the quiet hours r is in, or nil.
func (p *routePlan) heldUntil(r recipient) *time.Time {
	q, ok := p.quiet[r.userID]
	if !ok {
		if end, in := r.quietUntil(p.now); in {
			q = &end
		}
		p.quiet[r.userID] = q
	}
	return q
}

// tell plans one notification of g for r; a medium or low alert is held
// for r's quiet hours, with one catch-up per user and end.
func (p *routePlan) tell(r recipient, g *alertGroup, typ string) {
	var held *time.Time
	if typ == "alert" && (g.urgency == rpm.Medium || g.urgency == rpm.Low) {
		held = p.heldUntil(r)
	}
	p.add(r, g.alertID, typ, g.urgency, held)
	if held != nil {
		p.catchups[catchup{user: r.userID, at: *held}] = true
	}
}

// storeRoute records a plan: the notifications and the alerts' state in
// one batch, then the jobs, in the ingest's transaction.
func (al *Service) storeRoute(ctx context.Context, tx pgx.Tx, p *routePlan) error {
	b := &pgx.Batch{}
	p.queue(b, p.now)
	b.Queue(markNotifiedSQL, p.notified, p.now)
	if len(p.unreach) > 0 {
		b.Queue(markUndeliveredSQL, p.unreach)
	}
	if len(p.escID) > 0 {
		b.Queue(scheduleEscalationsSQL, p.escID, p.escDue)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("route: record notifications: %w", err)
	}
	if len(p.unreach) > 0 {
		al.metrics.Undelivered.Add(float64(len(p.unreach)))
	}
	if len(p.catchups) > 0 {
		held := 0
		for _, h := range p.held {
			if h != nil {
				held++
			}
		}
		al.metrics.Held.Add(float64(held))
	}
	if len(p.jobs) > 0 {
		if _, err := al.jobs().InsertManyTx(ctx, tx, p.jobs); err != nil {
			return fmt.Errorf("route: enqueue deliveries: %w", err)
		}
	}
	return nil
}

// firstLevel picks who is paged first: clinicians, else leads; and,
// separately, the patient's own users. Schedulers are never paged for alerts
// (they cannot open them): a team without clinicians or leads leaves a
// critical alert undelivered.
func firstLevel(all []recipient) (team, patients []recipient) {
	byRole := map[string][]recipient{}
	for _, r := range all {
		byRole[r.teamRole] = append(byRole[r.teamRole], r)
	}
	patients = byRole["patient"]
	switch {
	case len(byRole["clinician"]) > 0:
		team = byRole["clinician"]
	default:
		team = byRole["lead"]
	}
	return team, patients
}

// teamRouting returns who of team is on call at now by its rota, and its
// escalation policy (nil: none).
func teamRouting(ctx context.Context, tx pgx.Tx, teamID uuid.UUID, now time.Time) ([]uuid.UUID, *teamPolicy, error) {
	var tz string
	var slots []rota.Slot
	var policy *teamPolicy
	if err := tx.QueryRow(ctx, teamRotaSQL, teamID).Scan(&tz, &slots, &policy); err != nil {
		return nil, nil, fmt.Errorf("route: load rota: %w", err)
	}
	if len(slots) == 0 {
		return nil, policy, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC // validated when stored; a zone the system no longer knows falls back to UTC
	}
	return rota.OnCall(slots, loc, now), policy, nil
}

// pageOnCall picks who is paged first for a critical or high alert: the
// team's clinicians and leads on call now; when nobody is, the first level
// of every alert (team).
func pageOnCall(team, all []recipient, onCall []uuid.UUID) []recipient {
	var out []recipient
	for _, r := range all {
		if (r.teamRole == "clinician" || r.teamRole == "lead") && slices.Contains(onCall, r.userID) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return team
	}
	return out
}

// onlineFirst keeps those of rs who are online; when none is, all of rs:
// a page is never dropped for want of someone online.
func onlineFirst(rs []recipient) []recipient {
	var on []recipient
	for _, r := range rs {
		if r.online {
			on = append(on, r)
		}
	}
	if len(on) == 0 {
		return rs
	}
	return on
}

// firstPage is who the first page of an alert of urgency u reaches among
// a team's staff: who is on call for a critical or high alert (else the
// first level), the first level otherwise.
func firstPage(u rpm.Urgency, staff []recipient, onCall []uuid.UUID) []recipient {
	team, _ := firstLevel(staff)
	if u == rpm.Critical || u == rpm.High {
		return pageOnCall(team, staff, onCall)
	}
	return team
}

// catchup is one user's end of quiet hours.
type catchup struct {
	user uuid.UUID
	at   time.Time
}
