package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// scale runs three tend serve and two tend worker processes on one private
// cluster. It measures ingest with tend load against one process and
// against the three at once, then checks that work every process could
// pick up is done exactly once: escalation steps, medication reminders and
// a broadcast's copies.
func (h *harness) scale(ctx context.Context) error {
	c, dbURL, admin, err := h.privateTend(ctx)
	if c != nil {
		defer c.stop()
	}
	if err != nil {
		return err
	}
	procs, err := h.startTend(ctx, dbURL, "serve", "serve", "serve", "worker", "worker")
	for _, p := range procs {
		defer p.stop()
	}
	if err != nil {
		return err
	}
	serves := []string{procs[0].base, procs[1].base, procs[2].base}
	h.printf("three tend serve (%v) and two tend worker on one cluster", serves)
	one, err := h.loadRate(ctx, admin, serves[:1])
	if err != nil {
		return err
	}
	three, err := h.loadRate(ctx, admin, serves)
	if err != nil {
		return err
	}
	h.printf("tend load, 16 devices per server, 10 s: one process %.0f readings/s; three processes %.0f readings/s (%.2f×; one shared Postgres and %d CPUs)",
		one, three, three/one, numCPU())
	return h.exactlyOnce(ctx, dbURL, admin, serves)
}

var rateLine = regexp.MustCompile(`(?m)^readings/s: (\d+)`)

// loadRate runs one tend load per server at once and sums readings/s.
func (h *harness) loadRate(ctx context.Context, admin string, servers []string) (float64, error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total float64
	var firstErr error
	for _, base := range servers {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, h.bin, "load", "--url", base, "--token", admin, "--devices", "16",
				"--patients", "200", "--duration", "10s", "--warmup", "2s")
			cmd.Env = os.Environ()
			out, err := cmd.Output()
			mu.Lock()
			defer mu.Unlock()
			m := rateLine.FindSubmatch(out)
			if err != nil || m == nil {
				firstErr = fmt.Errorf("tend load against %s: %v: %s", base, err, out)
				return
			}
			n, _ := strconv.ParseFloat(string(m[1]), 64)
			total += n
		})
	}
	wg.Wait()
	return total, firstErr
}

// exactlyOnce sets up a team with a two-level escalation policy (critical:
// 1 minute), raises critical alerts through all three servers, schedules a
// medication reminder two minutes ahead for each patient and broadcasts to
// the team, then waits for the work and counts it.
func (h *harness) exactlyOnce(ctx context.Context, dbURL, admin string, serves []string) error {
	const patients = 12
	s, err := h.escalationTeam(ctx, serves[0], admin, patients)
	if err != nil {
		return err
	}
	due := time.Now().UTC().Add(2 * time.Minute).Truncate(time.Minute)
	for i, p := range s.patients {
		base := serves[i%len(serves)]
		if err := call(ctx, base, s.clinician, "/v1/patients/"+p+"/readings", map[string]any{"kind": "blood_glucose", "value": 40,
			"unit": "mg/dL", "observed_at": time.Now().UTC().Add(-time.Second).Format(time.RFC3339), "source_id": "scale:" + p}, nil); err != nil {
			return err
		}
		if err := call(ctx, base, admin, "/v1/patients/"+p+"/schedules", map[string]any{"type": "medication", "medication": "Furosemide",
			"dose": "40 mg", "times": []string{due.Format("15:04")}, "start_date": due.Format("2006-01-02")}, nil); err != nil {
			return err
		}
	}
	var b struct{ ID string }
	if err := call(ctx, serves[1], s.lead, "/v1/care-teams/"+s.teamID+"/broadcasts", map[string]any{"body": "The clinic is closed on Friday."}, &b); err != nil {
		return err
	}
	h.printf("%d critical alerts raised through three servers; reminders due at %s; broadcast %s; waiting for the escalations and reminders",
		patients, due.Format("15:04"), b.ID)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	h.waitCounts(ctx, conn, s, b.ID, patients, time.Until(due)+2*time.Minute)
	return nil
}

// escalationWorld is the exactly-once scenario's team: a clinician (first
// level), a lead (second level) and patients with patient users.
type escalationWorld struct {
	clinician, lead, leadID, teamID string
	patients                        []string
}

// escalationTeam creates the team through the API of base.
func (h *harness) escalationTeam(ctx context.Context, base, admin string, patients int) (*escalationWorld, error) {
	s := &escalationWorld{}
	user := func(name, role, patient string) (id, token string, err error) {
		body := map[string]any{"name": name, "role": role}
		if patient != "" {
			body["patient_id"] = patient
		}
		var u struct{ ID string }
		var t struct{ Token string }
		if err = call(ctx, base, admin, "/v1/users", body, &u); err == nil {
			err = call(ctx, base, admin, "/v1/users/"+u.ID+"/tokens", map[string]any{}, &t)
		}
		return u.ID, t.Token, err
	}
	clinID, clin, err := user("Dr First Level", "clinician", "")
	if err != nil {
		return nil, err
	}
	if s.leadID, s.lead, err = user("Dr Lead", "clinician", ""); err != nil {
		return nil, err
	}
	s.clinician = clin
	var team struct{ ID string }
	if err := call(ctx, base, admin, "/v1/care-teams", map[string]any{"name": "Escalation ward",
		"members":    []map[string]string{{"user_id": clinID, "role": "clinician"}, {"user_id": s.leadID, "role": "lead"}},
		"escalation": map[string]any{"ack_deadlines": map[string]string{"critical": "1m"}, "levels": []string{"on_call", "leads"}}}, &team); err != nil {
		return nil, err
	}
	s.teamID = team.ID
	for i := range patients {
		var p struct{ ID string }
		if err := call(ctx, base, admin, "/v1/patients", map[string]any{"display_name": fmt.Sprintf("Ward patient %d", i),
			"timezone": "UTC", "care_team_id": team.ID, "programs": []string{"heart_failure"}}, &p); err != nil {
			return nil, err
		}
		if _, _, err := user(fmt.Sprintf("Ward patient %d", i), "patient", p.ID); err != nil {
			return nil, err
		}
		s.patients = append(s.patients, p.ID)
	}
	return s, nil
}

// waitCounts waits (up to wait) for the escalations, reminders and
// broadcast copies, then checks each happened exactly once.
func (h *harness) waitCounts(ctx context.Context, conn *pgx.Conn, s *escalationWorld, broadcast string, patients int, wait time.Duration) {
	var escalated, escalatedTwice, reminders, remindedTwice, copies, threads int
	count := func() error {
		return conn.QueryRow(ctx, `
			WITH esc AS (SELECT a.id, count(n.id) AS n FROM alerts a
				LEFT JOIN notifications n ON n.alert_id = a.id AND n.user_id = $1
				WHERE a.care_team_id = $2 GROUP BY a.id),
			rem AS (SELECT n.user_id, count(*) AS n FROM notifications n JOIN users u ON u.id = n.user_id
				WHERE n.reminder_kind IS NOT NULL AND u.patient_id = ANY($3) GROUP BY n.user_id)
			SELECT (SELECT count(*) FROM esc WHERE n >= 1), (SELECT count(*) FROM esc WHERE n > 1),
				(SELECT count(*) FROM rem), (SELECT count(*) FROM rem WHERE n > 1),
				(SELECT count(*) FROM messages WHERE broadcast_id = $4),
				(SELECT count(*) FROM threads t WHERE t.patient_id = ANY($3) AND t.care_team_id = $2 AND t.kind = 'patient')`,
			s.leadID, s.teamID, s.patients, broadcast).Scan(&escalated, &escalatedTwice, &reminders, &remindedTwice, &copies, &threads)
	}
	deadline := time.Now().Add(wait)
	for {
		if err := count(); err != nil {
			h.fail("count the work: %v", err)
			return
		}
		if (escalated == patients && reminders == patients && copies == threads) || time.Now().After(deadline) {
			break
		}
		sleep(ctx, 2*time.Second)
	}
	sleep(ctx, 5*time.Second) // a second run of anything would show now
	if err := count(); err != nil {
		h.fail("count the work: %v", err)
		return
	}
	h.printf("escalations to the lead: %d of %d alerts (more than once: %d); medication reminders: %d of %d patients (more than once: %d); broadcast copies: %d for %d threads",
		escalated, patients, escalatedTwice, reminders, patients, remindedTwice, copies, threads)
	if escalated != patients || escalatedTwice > 0 {
		h.fail("escalation steps not done exactly once")
	}
	if reminders != patients || remindedTwice > 0 {
		h.fail("reminders not sent exactly once")
	}
	if copies != threads || threads == 0 {
		h.fail("broadcast copies %d for %d threads", copies, threads)
	}
}

func numCPU() int { return runtime.NumCPU() }
