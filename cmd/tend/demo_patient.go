package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// A simulated patient: their device posts readings over the real API and
// their app confirms doses, as the story says.

// run posts the patient's readings until ctx ends: the story's steps, then
// steady readings.
func (p *simPatient) run(ctx context.Context, d *demoRun, interval time.Duration) {
	var steps []storyStep
	if p.story != nil {
		steps = p.story.steps
	}
	// Stagger the start so patients do not post in lockstep.
	next := time.Duration(p.rng.Int64N(int64(interval)))
	if len(steps) > 0 {
		next = time.Until(d.start.Add(steps[0].at))
	}
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		var body map[string]any
		told := false
		select {
		case <-ctx.Done():
			return
		case push := <-p.reminded:
			if push.typ != "reminder" {
				continue
			}
			if p.story.confirms && strings.Contains(push.title, "medication") {
				go d.confirm(ctx, p)
			}
			if p.story.measuresWhenReminded == nil || !strings.Contains(push.title, "check") {
				continue
			}
			body, told = p.story.measuresWhenReminded(p.rng), true
		case <-t.C:
			switch {
			case len(steps) > 0:
				body, told = steps[0].reading, true
				steps = steps[1:]
			case p.story != nil:
				body = p.story.steady(p.rng)
			default:
				body = stable(p.rng, p.prog)
			}
			if len(steps) > 0 {
				t.Reset(time.Until(d.start.Add(steps[0].at)))
			} else {
				t.Reset(time.Duration(float64(interval) * (0.5 + p.rng.Float64())))
			}
		}
		d.post(ctx, p, body, told)
	}
}

// post sends one reading and prints what it caused.
func (d *demoRun) post(ctx context.Context, p *simPatient, body map[string]any, told bool) {
	r := make(map[string]any, len(body)+2)
	for k, v := range body {
		r[k] = v
	}
	r["observed_at"] = time.Now().UTC().Format(time.RFC3339Nano)
	r["source_id"] = fmt.Sprintf("sim-%s:%d", short(p.id.String()), p.seq.Add(1))
	sent := time.Now()
	res, err := postJSON[ingestResponse](ctx, d.client, d.base+"/v1/patients/"+p.id.String()+"/readings", p.token, r)
	if err != nil {
		if ctx.Err() == nil {
			d.out.printf("error      posting a reading: %v", err)
		}
		return
	}
	d.stats.posted()
	value := describe(body)
	if told {
		d.out.printf("READING    %-14s %s", p.name, value)
	}
	for _, a := range res.Alerts {
		d.mu.Lock()
		seen := d.printed[a.ID]
		d.printed[a.ID] = true
		if !seen {
			d.values[a.ID] = value
		}
		d.mu.Unlock()
		if a.Status == "opened" {
			d.stats.alert(a.ID, a.Urgency, sent, p.name, a.RuleID, value)
		}
		if !seen || a.Status != "updated" {
			d.out.printf("%s", alertLine(a.Urgency, p.name, value, a.RuleID, a.ID, a.Status))
		}
	}
	for _, rt := range res.Retakes {
		d.out.printf("RETAKE     %-14s %-18s %s: measure again before %s", p.name, value, rt.RuleID,
			rt.RetakeBy.Local().Format(time.TimeOnly))
	}
}

// confirm marks the patient's due medication doses taken, as the app does
// when the patient taps "Taken".
func (d *demoRun) confirm(ctx context.Context, p *simPatient) {
	var doses struct {
		Items []struct {
			ID    string    `json:"id"`
			Type  string    `json:"type"`
			DueAt time.Time `json:"due_at"`
		} `json:"items"`
	}
	if err := callJSON(ctx, d.client, http.MethodGet, d.base+"/v1/patients/"+p.id.String()+"/doses?status=pending", p.app, nil, &doses); err != nil {
		return
	}
	for _, ds := range doses.Items {
		if ds.Type == "medication" && !ds.DueAt.After(time.Now()) {
			_ = callJSON(ctx, d.client, http.MethodPost, d.base+"/v1/doses/"+ds.ID+"/confirm", p.app, map[string]any{"status": "taken"}, nil)
		}
	}
}
