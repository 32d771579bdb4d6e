package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// daysBefore dates vals one a day, the last a day before now.
func daysBefore(now time.Time, vals []map[string]any) []map[string]any {
	for i, v := range vals {
		v["observed_at"] = now.AddDate(0, 0, -(len(vals) - i)).Truncate(time.Minute).UTC().Format(time.RFC3339)
	}
	return vals
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
			// A day apart to the minute, ending a day before this
			// morning's weight (posted now), so that yesterday's weight is
			// yesterday's at any time of day the demo runs.
			return daysBefore(now, ws)
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
		told: "COPD; SpO2 around 92 % for 5 days, 88 % last night (twice)",
		history: func(now time.Time) []map[string]any {
			var rs []map[string]any
			for i, v := range []float64{92, 91, 92, 93, 91, 92, 92, 91, 92, 91} {
				r := vital("spo2", v, "%")
				r["observed_at"] = now.Add(-time.Duration(5*24-12*i) * time.Hour).UTC().Format(time.RFC3339)
				rs = append(rs, r)
			}
			// Asked to measure again (pack v3 confirms a fall below the
			// usual level with a retake), Sam did so four minutes later.
			for _, m := range []time.Duration{0, 4 * time.Minute} {
				last := vital("spo2", 88, "%")
				last["observed_at"] = now.Add(-10*time.Hour + m).UTC().Format(time.RFC3339)
				rs = append(rs, last)
			}
			return rs
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
	docID    uuid.UUID // the clinician
	start    time.Time

	mu      sync.Mutex
	names   map[string]string // patient id → display name
	printed map[string]bool   // alerts already printed, dose transitions already printed
	values  map[string]string // alert id → the value that fired
	sims    []*simPatient
}

// enrol creates the patients, their devices, histories and schedules.
func (d *demoRun) enrol(ctx context.Context, n int) ([]*simPatient, error) {
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
	for i := range sims {
		p := newSimPatient(i)
		if err := d.createPatient(ctx, p, i); err != nil {
			return nil, err
		}
		sims[i] = p
		if p.story == nil {
			continue
		}
		if err := d.enrolStory(ctx, p, now, first, loc); err != nil {
			return nil, err
		}
	}
	if n > len(stories) {
		d.out.printf("PATIENTS   %d stable patients (hypertension, diabetes) posting normal readings", n-len(stories))
	}
	d.out.printf("           first doses due at %s %s (in %.0f s); a dose not confirmed is missed 1 min later",
		first.Format("15:04"), demoZone, time.Until(first).Seconds())
	d.sims = sims
	return sims, nil
}

// newSimPatient is the i-th simulated patient: a story's, or a stable one.
func newSimPatient(i int) *simPatient {
	stableNames := []string{"Ana Costa", "Ben Carter", "Chen Wei", "Dana Kim", "Eli Novak", "Fatima Noor", "Gus Moreau",
		"Hana Sato", "Ivan Petrov", "Jade Brown", "Kofi Mensah", "Lena Fischer", "Mo Haddad", "Nia Evans", "Omar Aziz"}
	p := &simPatient{rng: rand.New(rand.NewPCG(uint64(i), 42)), reminded: make(chan phonePush, 8)}
	if i < len(stories) {
		p.story = &stories[i]
		p.name, p.prog = p.story.name, p.story.program
		return p
	}
	k := i - len(stories)
	p.name = stableNames[k%len(stableNames)]
	if k >= len(stableNames) {
		p.name += fmt.Sprintf(" %d", k/len(stableNames)+1)
	}
	p.prog = []string{"hypertension", "diabetes"}[k%2]
	return p
}

// createPatient enrols p in the demo's team with a device that posts its
// readings.
func (d *demoRun) createPatient(ctx context.Context, p *simPatient, i int) error {
	sys := engine.System("demo")
	pt, err := d.eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: p.name, Timezone: demoZone, CareTeamID: d.team,
		Programs: []string{p.prog}})
	if err != nil {
		return err
	}
	p.id = pt.ID
	d.names[p.id.String()] = p.name
	dev, err := d.eng.CreateUser(ctx, sys, engine.NewUser{Name: fmt.Sprintf("device %02d", i+1), Role: engine.RoleDevice, PatientID: p.id})
	if err != nil {
		return err
	}
	p.token, err = d.eng.CreateToken(ctx, sys, dev.ID)
	return err
}

// enrolStory gives a story's patient their own app, with a phone for
// reminders and requests to measure again, their history, personal
// parameters and schedules (the first doses due at first).
func (d *demoRun) enrolStory(ctx context.Context, p *simPatient, now, first time.Time, loc *time.Location) error {
	sys := engine.System("demo")
	u, err := d.eng.CreateUser(ctx, sys, engine.NewUser{Name: p.name, Role: engine.RolePatient, PatientID: p.id})
	if err != nil {
		return err
	}
	if p.app, err = d.eng.CreateToken(ctx, sys, u.ID); err != nil {
		return err
	}
	if err := d.phones.patientPhone(ctx, d.eng, engine.Actor{UserID: u.ID, Role: engine.RolePatient, PatientID: p.id, RequestID: "demo"}, p); err != nil {
		return err
	}
	hist := p.story.history(now)
	for j, r := range hist {
		r["source_id"] = fmt.Sprintf("hist-%s:%d", short(p.id.String()), j)
	}
	if _, err := postJSON[ingestResponse](ctx, d.client, d.base+"/v1/patients/"+p.id.String()+"/readings", p.token,
		map[string]any{"readings": hist}); err != nil {
		return fmt.Errorf("history of %s: %w", p.name, err)
	}
	d.stats.readings.Add(int64(len(hist)))
	d.out.printf("PATIENT    %-14s %s", p.name, p.story.told)
	if len(p.story.personal) > 0 {
		if err := callJSON(ctx, d.client, http.MethodPut, d.base+"/v1/patients/"+p.id.String()+"/params", d.docToken,
			p.story.personal, nil); err != nil {
			return fmt.Errorf("parameters of %s: %w", p.name, err)
		}
	}
	if p.story.schedule == nil {
		return nil
	}
	var what []string
	for _, sc := range p.story.schedule(first.Format("15:04")) {
		sc["start_date"] = now.In(loc).Format(time.DateOnly)
		if err := callJSON(ctx, d.client, http.MethodPost, d.base+"/v1/patients/"+p.id.String()+"/schedules", d.docToken, sc, nil); err != nil {
			return fmt.Errorf("schedule of %s: %w", p.name, err)
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
	return nil
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
			// LastReading is the reading that fired (absent for alerts
			// raised by no reading).
			LastReading map[string]any `json:"last_reading"`
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
		switch {
		case a.RuleID == "missed-doses":
			value = "missed dose"
		case a.LastReading != nil:
			value = describe(a.LastReading)
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
