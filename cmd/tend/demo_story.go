package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/engine"
)

// The demo's patients. The first three follow clinical stories told in
// compressed time: days of history are posted at enrolment (backdated, as a
// device catching up would), then the readings that tip each of them over
// a rule's threshold arrive within the first minute. The others are stable
// and raise nothing. Their reminders are real schedules: the doses come due
// at the next whole minute, the reminders are pushed to the story patients'
// phones, one patient confirms, one forgets.

// demoWidth is the widest line the demo prints.
const demoWidth = 120

// demoZone is the patients' time zone.
const demoZone = "America/Chicago"

// storyStep is one reading of a story, posted at an offset from the start.
type storyStep struct {
	at      time.Duration
	reading map[string]any
}

// story is a simulated patient's course.
type story struct {
	name     string
	program  string // the program the patient is enrolled in
	label    string // the program as the summary shows it
	history  func(now time.Time) []map[string]any
	told     string // what the history shows, printed at enrolment
	steps    []storyStep
	steady   func(rng *rand.Rand) map[string]any // after the story: readings at the new level
	schedule func(first string) []map[string]any // reminder schedules, their first dose at local time first
	// personal are the patient's personalised rule parameters.
	personal map[string]map[string]float64
	// confirms: the patient confirms medication doses when reminded.
	confirms bool
	// measuresWhenReminded: the patient takes this measurement when reminded.
	measuresWhenReminded func(rng *rand.Rand) map[string]any
	// says is what the patient writes to the care team from the app, and
	// how the demo clinician answers.
	says *storySay
}

// storySay is a story patient's message (or symptom report) to the care
// team, sent at an offset from the start, and the clinician's reply.
type storySay struct {
	at       time.Duration
	body     string           // a text message, or
	symptoms []map[string]any // a symptom report (with body as its note)
	reply    string
}

func bp(sys, dia float64) map[string]any {
	return map[string]any{"kind": "blood_pressure", "systolic": math.Round(sys), "diastolic": math.Round(dia), "unit": "mm[Hg]"}
}

func vital(kind string, v float64, unit string) map[string]any {
	return map[string]any{"kind": kind, "value": v, "unit": unit}
}

// daily returns readings at local hour h on each of the last len(vals) days
// (the last value yesterday).
func daily(now time.Time, h int, vals []map[string]any) []map[string]any {
	loc, _ := time.LoadLocation(demoZone)
	local := now.In(loc)
	out := make([]map[string]any, 0, len(vals))
	for i, v := range vals {
		day := local.AddDate(0, 0, -(len(vals) - i))
		at := time.Date(day.Year(), day.Month(), day.Day(), h, 0, 0, 0, loc)
		v["observed_at"] = at.UTC().Format(time.RFC3339)
		out = append(out, v)
	}
	return out
}

// stories are the three clinical courses of the demo.
var stories = []story{
	{
		name: "Maria Alvarez", program: "heart_failure", label: "heart failure",
		told: "heart failure; morning weights over 6 days: 81.2 → 82.5 kg",
		history: func(now time.Time) []map[string]any {
			var ws []map[string]any
			for _, w := range []float64{81.2, 81.3, 81.1, 81.6, 82.1, 82.5} {
				ws = append(ws, vital("body_weight", w, "kg"))
			}
			return daily(now, 7, ws)
		},
		// This morning's weight: 1.5 kg up on yesterday, 2.4 kg in three days.
		steps: []storyStep{{6 * time.Second, vital("heart_rate", 84, "/min")}, {9 * time.Second, vital("body_weight", 84.0, "kg")}},
		// Her cuff stays in its box until the reminder to measure.
		steady: func(rng *rand.Rand) map[string]any {
			return vital("heart_rate", math.Round(86+rng.NormFloat64()*3), "/min")
		},
		schedule: func(first string) []map[string]any {
			return []map[string]any{
				{"type": "medication", "medication": "Furosemide", "dose": "40 mg", "times": []string{first}, "grace_minutes": 1},
				{"type": "measurement", "kind": "blood_pressure", "times": []string{first}, "grace_minutes": 1},
			}
		},
		// Her team wants to hear of a single missed diuretic dose.
		personal: map[string]map[string]float64{"missed-doses": {"count": 1}},
		measuresWhenReminded: func(rng *rand.Rand) map[string]any {
			return bp(126+rng.NormFloat64()*3, 77+rng.NormFloat64()*2)
		},
		says: &storySay{at: 12 * time.Second, body: "My ankles are swollen again and my shoes feel tight this morning.",
			reply: "Thank you, Maria. Please keep your feet up; I will call you within the hour about your water tablets."},
	},
	{
		name: "Sam Lee", program: "copd", label: "COPD",
		told: "COPD; SpO2 around 92 % for 5 days, 88 % last night",
		history: func(now time.Time) []map[string]any {
			var rs []map[string]any
			for i, v := range []float64{92, 91, 92, 93, 91, 92, 92, 91, 92, 91} {
				r := vital("spo2", v, "%")
				r["observed_at"] = now.Add(-time.Duration(5*24-12*i) * time.Hour).UTC().Format(time.RFC3339)
				rs = append(rs, r)
			}
			last := vital("spo2", 88, "%")
			last["observed_at"] = now.Add(-10 * time.Hour).UTC().Format(time.RFC3339)
			return append(rs, last)
		},
		// An exacerbation: saturation keeps falling, breathing quickens.
		steps: []storyStep{{4 * time.Second, vital("spo2", 88, "%")}, {14 * time.Second, vital("heart_rate", 104, "/min")},
			{18 * time.Second, vital("spo2", 87, "%")}, {27 * time.Second, vital("spo2", 86, "%")},
			{34 * time.Second, vital("spo2", 84, "%")}, {40 * time.Second, vital("spo2", 84, "%")}},
		steady: func(rng *rand.Rand) map[string]any {
			if rng.IntN(2) == 0 {
				return vital("spo2", float64(86+rng.IntN(2)), "%")
			}
			return vital("heart_rate", math.Round(102+rng.NormFloat64()*3), "/min")
		},
		schedule: func(first string) []map[string]any {
			return []map[string]any{{"type": "medication", "medication": "Tiotropium", "dose": "18 µg", "times": []string{first},
				"grace_minutes": 1}}
		},
		confirms: true,
		says: &storySay{at: 22 * time.Second, body: "Breathless walking to the kitchen, more than yesterday.",
			symptoms: []map[string]any{{"code": "shortness_of_breath", "severity": 6}, {"code": "cough", "severity": 4}},
			reply:    "Sam, please use your rescue inhaler now and sit upright; I am calling you in five minutes."},
	},
	{
		name: "James Okafor", program: "hypertension", label: "hypertension",
		told: "hypertension; blood pressure rising over 6 days: 146/90 → 168/103 mmHg",
		history: func(now time.Time) []map[string]any {
			return daily(now, 8, []map[string]any{bp(146, 90), bp(150, 93), bp(155, 95), bp(160, 98), bp(164, 100), bp(168, 103)})
		},
		// Today: past the crisis threshold, confirmed by the retake.
		steps: []storyStep{{7 * time.Second, bp(172, 106)}, {16 * time.Second, bp(178, 112)}, {25 * time.Second, bp(186, 122)},
			{31 * time.Second, bp(188, 124)}},
		steady: func(rng *rand.Rand) map[string]any {
			return bp(168+rng.NormFloat64()*3, 104+rng.NormFloat64()*2) // resting after the crisis: below 180/120
		},
	},
}

// stable makes the normal readings of a patient with no story.
func stable(rng *rand.Rand, program string) map[string]any {
	switch n := rng.IntN(3); {
	case n == 0:
		return bp(124+rng.NormFloat64()*6, 78+rng.NormFloat64()*4)
	case n == 1 && program == "diabetes":
		return vital("blood_glucose", math.Round(118+rng.NormFloat64()*12), "mg/dL")
	case n == 1:
		return vital("spo2", float64(95+rng.IntN(4)), "%")
	default:
		return vital("heart_rate", math.Round(72+rng.NormFloat64()*6), "/min")
	}
}

// describe writes a reading the way a clinician says it: "SpO2 84 %",
// "BP 188/124 mmHg", "weight 84.0 kg".
func describe(r map[string]any) string {
	num := func(k string) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", r[k]), ".0") }
	switch r["kind"] {
	case "blood_pressure":
		return fmt.Sprintf("BP %s/%s mmHg", num("systolic"), num("diastolic"))
	case "spo2":
		return fmt.Sprintf("SpO2 %s %%", num("value"))
	case "body_weight":
		return fmt.Sprintf("weight %.1f kg", r["value"])
	case "heart_rate":
		return fmt.Sprintf("pulse %s/min", num("value"))
	case "blood_glucose":
		return fmt.Sprintf("glucose %s mg/dL", num("value"))
	}
	return fmt.Sprint(r["kind"])
}

// simPatient is one simulated patient and their device.
type simPatient struct {
	id    uuid.UUID
	name  string
	story *story
	prog  string
	token string // the device's
	app   string // the patient's own (the app on their phone), story patients only
	rng   *rand.Rand
	seq   atomic.Int64
	// reminded receives the pushes the patient's phone got.
	reminded chan phonePush
}

func (p *simPatient) firstName() string {
	first, _, _ := strings.Cut(p.name, " ")
	return first
}

// phonePush is a push to a patient's phone: its type and generic title.
type phonePush struct{ typ, title string }

func (p *simPatient) pushed(typ, title string) {
	select {
	case p.reminded <- phonePush{typ, title}:
	default:
	}
}

// demoRun is the demo's shared state.
type demoRun struct {
	eng      *engine.Engine
	team     uuid.UUID
	client   *http.Client
	base     string
	out      *printer
	stats    *demoStats
	phones   *demoPhones
	docToken string
	start    time.Time

	mu      sync.Mutex
	names   map[string]string // patient id → display name
	printed map[string]bool   // alerts already printed, dose transitions already printed
	values  map[string]string // alert id → the value that fired
	sims    []*simPatient
}

// enrol creates the patients, their devices, histories and schedules.
func (d *demoRun) enrol(ctx context.Context, n int) ([]*simPatient, error) {
	sys := engine.System("demo")
	now := time.Now()
	loc, err := time.LoadLocation(demoZone)
	if err != nil {
		return nil, err
	}
	// The first doses: the next whole minute at least 20 s away, in the
	// patients' zone.
	first := now.In(loc).Truncate(time.Minute).Add(time.Minute)
	if first.Sub(now) < 20*time.Second {
		first = first.Add(time.Minute)
	}
	d.values = map[string]string{}
	sims := make([]*simPatient, n)
	stableNames := []string{"Ana Costa", "Ben Carter", "Chen Wei", "Dana Kim", "Eli Novak", "Fatima Noor", "Gus Moreau",
		"Hana Sato", "Ivan Petrov", "Jade Brown", "Kofi Mensah", "Lena Fischer", "Mo Haddad", "Nia Evans", "Omar Aziz"}
	for i := range sims {
		p := &simPatient{rng: rand.New(rand.NewPCG(uint64(i), 42)), reminded: make(chan phonePush, 8)}
		if i < len(stories) {
			p.story = &stories[i]
			p.name, p.prog = p.story.name, p.story.program
		} else {
			k := i - len(stories)
			p.name = stableNames[k%len(stableNames)]
			if k >= len(stableNames) {
				p.name += fmt.Sprintf(" %d", k/len(stableNames)+1)
			}
			p.prog = []string{"hypertension", "diabetes"}[k%2]
		}
		pt, err := d.eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: p.name, Timezone: demoZone, CareTeamID: d.team,
			Programs: []string{p.prog}})
		if err != nil {
			return nil, err
		}
		p.id = pt.ID
		d.names[p.id.String()] = p.name
		dev, err := d.eng.CreateUser(ctx, sys, engine.NewUser{Name: fmt.Sprintf("device %02d", i+1), Role: engine.RoleDevice, PatientID: p.id})
		if err != nil {
			return nil, err
		}
		if p.token, err = d.eng.CreateToken(ctx, sys, dev.ID); err != nil {
			return nil, err
		}
		sims[i] = p
		if p.story == nil {
			continue
		}
		// The patient's own app, with a phone for reminders and requests to
		// measure again.
		u, err := d.eng.CreateUser(ctx, sys, engine.NewUser{Name: p.name, Role: engine.RolePatient, PatientID: p.id})
		if err != nil {
			return nil, err
		}
		if p.app, err = d.eng.CreateToken(ctx, sys, u.ID); err != nil {
			return nil, err
		}
		if err := d.phones.patientPhone(ctx, d.eng, engine.Actor{UserID: u.ID, Role: engine.RolePatient, PatientID: p.id, RequestID: "demo"}, p); err != nil {
			return nil, err
		}
		hist := p.story.history(now)
		for j, r := range hist {
			r["source_id"] = fmt.Sprintf("hist-%s:%d", short(p.id.String()), j)
		}
		if _, err := postJSON[ingestResponse](ctx, d.client, d.base+"/v1/patients/"+p.id.String()+"/readings", p.token,
			map[string]any{"readings": hist}); err != nil {
			return nil, fmt.Errorf("history of %s: %w", p.name, err)
		}
		d.stats.readings.Add(int64(len(hist)))
		d.out.printf("PATIENT    %-14s %s", p.name, p.story.told)
		if len(p.story.personal) > 0 {
			if err := callJSON(ctx, d.client, http.MethodPut, d.base+"/v1/patients/"+p.id.String()+"/params", d.docToken,
				p.story.personal, nil); err != nil {
				return nil, fmt.Errorf("parameters of %s: %w", p.name, err)
			}
		}
		if p.story.schedule == nil {
			continue
		}
		var what []string
		for _, sc := range p.story.schedule(first.Format("15:04")) {
			sc["start_date"] = now.In(loc).Format(time.DateOnly)
			if err := callJSON(ctx, d.client, http.MethodPost, d.base+"/v1/patients/"+p.id.String()+"/schedules", d.docToken, sc, nil); err != nil {
				return nil, fmt.Errorf("schedule of %s: %w", p.name, err)
			}
			if sc["type"] == "medication" {
				what = append(what, fmt.Sprintf("%s %s", strings.ToLower(sc["medication"].(string)), sc["dose"]))
			} else {
				what = append(what, "measure "+strings.ReplaceAll(sc["kind"].(string), "_", " "))
			}
		}
		note := "does not confirm"
		if p.story.confirms {
			note = "confirms in the app"
		}
		d.out.printf("REMINDERS  %-14s %s at %s; %s", p.name, strings.Join(what, ", "), first.Format("15:04"), note)
	}
	if n > len(stories) {
		d.out.printf("PATIENTS   %d stable patients (hypertension, diabetes) posting normal readings", n-len(stories))
	}
	d.out.printf("           first doses due at %s %s (in %.0f s); a dose not confirmed is missed 1 min later",
		first.Format("15:04"), demoZone, time.Until(first).Seconds())
	d.sims = sims
	return sims, nil
}

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

// watch follows, as the clinician, what happens outside the readings' own
// answers: alerts raised by jobs (missed doses) and doses decided.
func (d *demoRun) watch(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.poll(ctx, true)
			d.pollThreads(ctx, true)
		}
	}
}

// poll prints alerts and dose outcomes not yet printed.
func (d *demoRun) poll(ctx context.Context, print bool) {
	var alerts struct {
		Items []struct {
			ID        string    `json:"id"`
			PatientID string    `json:"patient_id"`
			RuleID    string    `json:"rule_id"`
			Urgency   string    `json:"urgency"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"items"`
	}
	if err := callJSON(ctx, d.client, http.MethodGet, d.base+"/v1/alerts?limit=200", d.docToken, nil, &alerts); err != nil {
		return
	}
	for _, a := range alerts.Items {
		d.mu.Lock()
		seen := d.printed[a.ID]
		d.printed[a.ID] = true
		name := d.names[a.PatientID]
		d.mu.Unlock()
		if seen {
			continue
		}
		value := "—"
		if a.RuleID == "missed-doses" {
			value = "missed dose"
		}
		d.stats.alert(a.ID, a.Urgency, a.CreatedAt, name, a.RuleID, value)
		if print {
			d.out.printf("%s", alertLine(a.Urgency, name, value, a.RuleID, a.ID, "opened"))
		}
	}
	for _, p := range d.sims {
		if p.story == nil || p.story.schedule == nil {
			continue
		}
		d.pollDoses(ctx, p, print)
	}
}

func (d *demoRun) pollDoses(ctx context.Context, p *simPatient, print bool) {
	var doses struct {
		Items []struct {
			ID         string `json:"id"`
			ScheduleID string `json:"schedule_id"`
			Type       string `json:"type"`
			Status     string `json:"status"`
		} `json:"items"`
	}
	var scheds struct {
		Items []struct {
			ID         string `json:"id"`
			Medication string `json:"medication"`
			Dose       string `json:"dose"`
			Kind       string `json:"kind"`
		} `json:"items"`
	}
	if callJSON(ctx, d.client, http.MethodGet, d.base+"/v1/patients/"+p.id.String()+"/doses", d.docToken, nil, &doses) != nil ||
		callJSON(ctx, d.client, http.MethodGet, d.base+"/v1/patients/"+p.id.String()+"/schedules", d.docToken, nil, &scheds) != nil {
		return
	}
	for _, ds := range doses.Items {
		if ds.Status != "taken" && ds.Status != "missed" && ds.Status != "skipped" {
			continue
		}
		key := ds.ID + ":" + ds.Status
		d.mu.Lock()
		seen := d.printed[key]
		d.printed[key] = true
		d.mu.Unlock()
		if seen {
			continue
		}
		d.stats.dose(ds.Status)
		what := "dose"
		for _, s := range scheds.Items {
			if s.ID == ds.ScheduleID {
				what = strings.TrimSpace(strings.ToLower(s.Medication) + " " + s.Dose)
				if ds.Type == "measurement" {
					what = "measure " + strings.ReplaceAll(s.Kind, "_", " ")
				}
			}
		}
		if print {
			d.out.printf("DOSE       %-14s %-30s %s", p.name, what, strings.ToUpper(ds.Status))
		}
	}
}

// alertLine formats an alert: urgency, patient, the value that fired, rule.
func alertLine(urgency, patient, value, ruleID, alertID, status string) string {
	line := fmt.Sprintf("ALERT      %-8s %-14s %-18s %-22s %s", urgency, patient, value, ruleID, short(alertID))
	if status != "" && status != "opened" {
		line += " (" + status + ")"
	}
	return line
}

// pushLine formats a push as it arrived: device, service, urgency, type,
// the alert it is about, the headers that carry its urgency, latency.
func pushLine(device, service, urgency, typ, alertID, headers, latency string) string {
	about := ""
	if alertID != "" {
		about = short(alertID)
	}
	line := fmt.Sprintf("PUSH       %-16s %-8s %-8s %-9s %s", strings.TrimSpace(device+" "+service), urgency, typ, about, headers)
	if latency != "" {
		line += "  " + latency
	}
	return line
}

// demoStats counts what happened, for the live latency and the summary.
type demoStats struct {
	mu        sync.Mutex
	readings  atomic.Int64
	alerts    map[string]int
	opened    []openedAlert
	pushes    map[string]int
	openedAt  map[string]time.Time
	latencies []time.Duration
	reminders int
	doses     map[string]int
	// messages from patients (symptom reports among them), replies from
	// the clinician.
	fromPatients, symptomReports, replies int
}

type openedAlert struct {
	patient, urgency, rule, value string
}

func newDemoStats() *demoStats {
	return &demoStats{alerts: map[string]int{}, pushes: map[string]int{}, openedAt: map[string]time.Time{}, doses: map[string]int{}}
}

func (s *demoStats) posted() { s.readings.Add(1) }

func (s *demoStats) reminder() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reminders++
}

// message counts a message: a patient's (a symptom report or not), or
// the clinician's reply.
func (s *demoStats) message(symptomReport, reply bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case reply:
		s.replies++
	case symptomReport:
		s.fromPatients++
		s.symptomReports++
	default:
		s.fromPatients++
	}
}

func (s *demoStats) dose(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doses[status]++
}

func (s *demoStats) alert(id, urgency string, sent time.Time, patient, rule, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.openedAt[id]; ok {
		return
	}
	s.alerts[urgency]++
	s.openedAt[id] = sent
	s.opened = append(s.opened, openedAlert{patient: patient, urgency: urgency, rule: rule, value: value})
}

// delivered records a push and returns a note of the latency from the
// reading's POST to the push, when known.
func (s *demoStats) delivered(alertID, device string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes[device]++
	if at, ok := s.openedAt[alertID]; ok && alertID != "" {
		d := time.Since(at)
		s.latencies = append(s.latencies, d)
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return ""
}

// summary prints a table of what happened: totals, then each story
// patient's alerts.
func (s *demoStats) summary(w io.Writer, ran time.Duration, sims []*simPatient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(w, "\nSummary after %.0f s\n\n", ran.Seconds())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  readings posted\t%d\n", s.readings.Load())
	fmt.Fprintf(tw, "  alerts opened\tcritical %d, high %d, medium %d, low %d\n", s.alerts["critical"], s.alerts["high"],
		s.alerts["medium"], s.alerts["low"])
	devices := []string{"Android", "iPhone", "browser", "patients' phones"}
	var pushes []string
	for _, d := range devices {
		pushes = append(pushes, fmt.Sprintf("%s %d", d, s.pushes[d]))
	}
	fmt.Fprintf(tw, "  pushes delivered\t%s\n", strings.Join(pushes, ", "))
	fmt.Fprintf(tw, "  reminders\t%d pushed to patients; doses taken %d, missed %d, skipped %d\n", s.reminders,
		s.doses["taken"], s.doses["missed"], s.doses["skipped"])
	fmt.Fprintf(tw, "  messages\t%d from patients (%d %s), %d %s from the clinician\n", s.fromPatients, s.symptomReports,
		plural(s.symptomReports, "symptom report", "symptom reports"), s.replies, plural(s.replies, "reply", "replies"))
	if len(s.latencies) > 0 {
		l := slices.Clone(s.latencies)
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		fmt.Fprintf(tw, "  reading → push latency\tp50 %d ms, max %d ms\n", l[len(l)/2].Milliseconds(), l[len(l)-1].Milliseconds())
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PATIENT\tPROGRAM\tALERT\tRULE\tVALUE")
	stableAlerts := 0
	for _, p := range sims {
		var mine []openedAlert
		for _, a := range s.opened {
			if a.patient == p.name {
				mine = append(mine, a)
			}
		}
		if p.story == nil {
			stableAlerts += len(mine)
			continue
		}
		if len(mine) == 0 {
			fmt.Fprintf(tw, "  %s\t%s\tnone\n", p.name, p.story.label)
		}
		for i, a := range mine {
			name, label := p.name, p.story.label
			if i > 0 {
				name, label = "", ""
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", name, label, a.urgency, a.rule, a.value)
		}
	}
	if n := len(sims) - min(len(sims), len(stories)); n > 0 {
		fmt.Fprintf(tw, "  %d stable patients\t\t%s\n", n, map[bool]string{true: "none", false: fmt.Sprint(stableAlerts)}[stableAlerts == 0])
	}
	_ = tw.Flush()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// fits reports the lines of s wider than width columns.
func fits(s string, width int) []string {
	var wide []string
	for _, l := range strings.Split(s, "\n") {
		if utf8.RuneCountInString(l) > width {
			wide = append(wide, l)
		}
	}
	return wide
}
