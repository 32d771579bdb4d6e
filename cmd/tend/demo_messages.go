package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// The demo's conversations: story patients write to their care team from
// the app (a message, or a symptom report that appears in their thread as a
// structured message), and the demo clinician, who follows their threads,
// reads and answers. The patient's phone is pushed the reply after the
// message hold, since the simulated patient does not open the app.

// demoClinician is the demo clinician's name as the MESSAGE lines show it.
const demoClinician = "Dr Ada Osei"

// previewLen is how much of a message text a MESSAGE line shows.
const previewLen = 46

// preview shortens a message text for a MESSAGE line: quoted, at most
// previewLen characters of it, on one line.
func preview(body string) string {
	body = strings.Join(strings.Fields(body), " ")
	if utf8.RuneCountInString(body) > previewLen {
		body = string([]rune(body)[:previewLen-1]) + "…"
	}
	return `"` + body + `"`
}

// symptomsText writes a symptom report's symptoms in a few words:
// "symptom report: shortness of breath 6/10, cough 4/10".
func symptomsText(symptoms []map[string]any) string {
	var parts []string
	for _, s := range symptoms {
		parts = append(parts, fmt.Sprintf("%s %v/10", strings.ReplaceAll(fmt.Sprint(s["code"]), "_", " "), s["severity"]))
	}
	text := "symptom report: " + strings.Join(parts, ", ")
	if utf8.RuneCountInString(text) > previewLen+14 {
		text = string([]rune(text)[:previewLen+13]) + "…"
	}
	return text
}

// messageLine formats a message: who wrote, to whom, what (a preview).
func messageLine(from, to, what string) string {
	return fmt.Sprintf("MESSAGE    %-14s %-12s %s", from, to, what)
}

// converse sends each story patient's message at its time.
func (d *demoRun) converse(ctx context.Context) {
	for _, p := range d.sims {
		if p.story == nil || p.story.says == nil {
			continue
		}
		say := p.story.says
		t := time.NewTimer(time.Until(d.start.Add(say.at)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		d.say(ctx, p, say)
	}
}

// say posts a story patient's message (or symptom report) from their app.
func (d *demoRun) say(ctx context.Context, p *simPatient, say *storySay) {
	var err error
	what := preview(say.body)
	if len(say.symptoms) > 0 {
		what = symptomsText(say.symptoms)
		err = callJSON(ctx, d.client, http.MethodPost, d.base+"/v1/patients/"+p.id.String()+"/symptom-reports", p.app,
			map[string]any{"symptoms": say.symptoms, "note": say.body}, nil)
	} else {
		var threads struct {
			Items []struct {
				ID   string `json:"id"`
				Kind string `json:"kind"`
			} `json:"items"`
		}
		if err = callJSON(ctx, d.client, http.MethodGet, d.base+"/v1/threads", p.app, nil, &threads); err == nil {
			err = fmt.Errorf("the patient has no thread")
			for _, t := range threads.Items {
				if t.Kind == "patient" {
					err = callJSON(ctx, d.client, http.MethodPost, d.base+"/v1/threads/"+t.ID+"/messages", p.app,
						map[string]any{"body": say.body, "client_id": "demo-" + p.id.String()}, nil)
					break
				}
			}
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			d.out.printf("error      %s's message: %v", p.firstName(), err)
		}
		return
	}
	d.stats.message(len(say.symptoms) > 0, false)
	d.out.printf("%s", messageLine(p.name, "to the team", what))
}

// pollThreads reads, as the clinician, the threads with unread messages:
// marks them read and answers each story patient's message once.
func (d *demoRun) pollThreads(ctx context.Context, reply bool) {
	var threads struct {
		Items []struct {
			ID          string `json:"id"`
			Kind        string `json:"kind"`
			PatientID   string `json:"patient_id"`
			UnreadCount int    `json:"unread_count"`
		} `json:"items"`
	}
	if err := callJSON(ctx, d.client, http.MethodGet, d.base+"/v1/threads?limit=100", d.docToken, nil, &threads); err != nil {
		return
	}
	for _, t := range threads.Items {
		if t.Kind != "patient" || t.UnreadCount == 0 {
			continue
		}
		var page struct {
			Items []struct {
				ID         string `json:"id"`
				SenderRole string `json:"sender_role"`
			} `json:"items"`
		}
		if err := callJSON(ctx, d.client, http.MethodGet, d.base+"/v1/threads/"+t.ID+"/messages?limit=50", d.docToken, nil, &page); err != nil ||
			len(page.Items) == 0 {
			continue
		}
		last := page.Items[len(page.Items)-1].ID
		_ = callJSON(ctx, d.client, http.MethodPost, d.base+"/v1/threads/"+t.ID+"/read", d.docToken, map[string]any{"up_to": last}, nil)
		sim := d.sim(t.PatientID)
		for _, m := range page.Items {
			if m.SenderRole != "patient" || !reply || sim == nil || sim.story.says == nil {
				continue
			}
			key := "message:" + m.ID
			d.mu.Lock()
			seen := d.printed[key]
			d.printed[key] = true
			d.mu.Unlock()
			if seen {
				continue
			}
			text := sim.story.says.reply
			if err := callJSON(ctx, d.client, http.MethodPost, d.base+"/v1/threads/"+t.ID+"/messages", d.docToken,
				map[string]any{"body": text, "client_id": "demo-reply-" + m.ID}, nil); err != nil {
				if ctx.Err() == nil {
					d.out.printf("error      replying to %s: %v", sim.firstName(), err)
				}
				continue
			}
			d.stats.message(false, true)
			d.out.printf("%s", messageLine(demoClinician, "to "+sim.firstName(), preview(text)))
		}
	}
}

// sim finds a story patient by id.
func (d *demoRun) sim(patientID string) *simPatient {
	for _, p := range d.sims {
		if p.id.String() == patientID && p.story != nil {
			return p
		}
	}
	return nil
}
