package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// What the demo prints as it runs (one line per alert and push) and the
// summary at its end.

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
