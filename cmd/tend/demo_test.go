package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tendhealth/tend/rules"
)

// TestDemoLinesFit formats the widest lines the demo can print — the
// longest rule id of the default pack, the longest push headers, every story
// patient with alerts — and checks that each fits in 120 columns, and that
// the summary is a table, not a Go value. Message lines (the longest
// preview, the widest symptom report) fit too.
func TestDemoLinesFit(t *testing.T) {
	pack, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	longest := ""
	for _, r := range pack.Rules() {
		if len(r.ID) > len(longest) {
			longest = r.ID
		}
	}
	var lines []string
	for _, st := range stories {
		lines = append(lines, alertLine("critical", st.name, "BP 288/188 mmHg", longest, "01a232ac-2626-7d01-9848-fb885274e4a3", "escalated"))
		lines = append(lines, pushLine(st.name[:strings.Index(st.name, " ")]+"'s phone", "", "critical", "reminder", "",
			`"Time to check your blood pressure"`, ""))
		lines = append(lines, pushLine(st.name[:strings.Index(st.name, " ")]+"'s phone", "", "critical", "care_team_message", "",
			`"New message from your care team"`, ""))
	}
	// The widest headers each service sends (a medium alert's on FCM), with
	// a latency of seconds, after hours of running.
	for _, dev := range [][2]string{{"Android", "FCM"}, {"iPhone", "APNs"}, {"browser", "Web Push"}} {
		lines = append(lines, pushLine(dev[0], dev[1], "critical", "catchup", "01a232ac-2626-7d01-9848-fb885274e4a3",
			"priority normal, tend_default, ttl 43200s", "9999 ms"))
	}
	// The longest message lines: a name of 14 characters, the longest
	// preview, every story's symptom report.
	for _, st := range stories {
		if st.says == nil {
			continue
		}
		lines = append(lines, messageLine(st.name, "to the team", preview(strings.Repeat("ü", 300))),
			messageLine(demoClinician, "to "+st.name, preview(st.says.reply)))
		if len(st.says.symptoms) > 0 {
			lines = append(lines, messageLine(st.name, "to the team", symptomsText(append(st.says.symptoms,
				map[string]any{"code": "weakness_one_side", "severity": 10}, map[string]any{"code": "shortness_of_breath", "severity": 10}))))
		}
	}
	var buf strings.Builder
	p := &printer{w: &buf, start: time.Now().Add(-9999 * time.Second)}
	for _, l := range lines {
		p.printf("%s", l)
	}

	stats := newDemoStats()
	sims := []*simPatient{}
	for i := range stories {
		sims = append(sims, &simPatient{name: stories[i].name, story: &stories[i]})
		for _, r := range pack.Rules() {
			stats.alert(stories[i].name+r.ID, "critical", time.Now(), stories[i].name, r.ID, "BP 288/188 mmHg")
		}
	}
	sims = append(sims, &simPatient{name: "Ana Costa"})
	stats.readings.Store(123456)
	stats.delivered("x", "Android")
	stats.message(false, false)
	stats.message(true, false)
	stats.message(false, true)
	stats.message(false, true)
	stats.summary(&buf, 150*time.Second, sims)
	out := buf.String()
	if wide := fits(out, demoWidth); len(wide) > 0 {
		t.Errorf("lines wider than %d columns:\n%s", demoWidth, strings.Join(wide, "\n"))
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Summary after 150 s$`),
		regexp.MustCompile(`(?m)^  readings posted\s+123456$`),
		regexp.MustCompile(`(?m)^  PATIENT\s+PROGRAM\s+ALERT\s+RULE\s+VALUE$`),
		regexp.MustCompile(`(?m)^  Sam Lee\s+COPD\s+critical\s+\S+\s+BP 288/188 mmHg$`),
		regexp.MustCompile(`(?m)^  1 stable patients\s+none$`),
		regexp.MustCompile(`(?m)^  messages\s+2 from patients \(1 symptom report\), 2 replies from the clinician$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("summary lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "map[") {
		t.Errorf("the summary prints a Go map:\n%s", out)
	}
}

// lineWatch collects the demo's output and calls done once every pattern has
// matched a line.
type lineWatch struct {
	mu      sync.Mutex
	buf     strings.Builder
	partial string
	want    []*regexp.Regexp
	done    func()
}

func (w *lineWatch) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	w.partial += string(b)
	for {
		i := strings.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i]
		w.partial = w.partial[i+1:]
		w.want = slicesDeleteFunc(w.want, func(re *regexp.Regexp) bool { return re.MatchString(line) })
		if len(w.want) == 0 && w.done != nil {
			w.done()
			w.done = nil
		}
	}
	return len(b), nil
}

func slicesDeleteFunc(s []*regexp.Regexp, del func(*regexp.Regexp) bool) []*regexp.Regexp {
	out := s[:0]
	for _, x := range s {
		if !del(x) {
			out = append(out, x)
		}
	}
	return out
}

// TestDemoStories runs tend demo on an empty database until its stories
// have been told: the heart-failure patient's weight gain, the COPD
// patient's falling saturation ("SpO2 84 %"), the hypertensive's crisis
// confirmed by a retake, the reminders pushed to the patients' phones, a
// dose confirmed, the heart-failure patient's message and the COPD
// patient's symptom report each answered by the clinician, and (unless
// -short) a forgotten dose that is missed and raises an alert. Every line fits in 120 columns, pushes do not stutter
// ("alert alert"), stable patients raise nothing, and it ends with the
// summary table.
func TestDemoStories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dbURL := newEmptyDatabase(ctx, t)
	want := []*regexp.Regexp{
		regexp.MustCompile(`ALERT\s+high\s+Maria Alvarez\s+weight 84\.0 kg\s+hf-weight-gain-24h\s`),
		regexp.MustCompile(`ALERT\s+high\s+Sam Lee\s+SpO2 88 %\s+spo2-copd-below-usual\s`),
		regexp.MustCompile(`RETAKE\s+Sam Lee\s+SpO2 84 %\s+spo2-critical: measure again`),
		regexp.MustCompile(`ALERT\s+critical\s+Sam Lee\s+SpO2 84 %\s+spo2-critical\s`),
		regexp.MustCompile(`RETAKE\s+James Okafor\s+BP 186/122 mmHg\s+bp-crisis`),
		regexp.MustCompile(`ALERT\s+critical\s+James Okafor\s+BP 188/124 mmHg\s+bp-crisis\s`),
		regexp.MustCompile(`PUSH\s+iPhone APNs\s+critical\s+alert\s+…[0-9a-f]{8}\s+apns-priority 10`),
		regexp.MustCompile(`PUSH\s+Sam's phone\s+\w+\s+reminder\s+"Time for your medication"`),
		regexp.MustCompile(`DOSE\s+Sam Lee\s+tiotropium 18 µg\s+TAKEN`),
		regexp.MustCompile(`MESSAGE\s+Maria Alvarez\s+to the team\s+"My ankles are swollen again`),
		regexp.MustCompile(`MESSAGE\s+Sam Lee\s+to the team\s+symptom report: shortness of breath 6/10, cough 4/10$`),
		regexp.MustCompile(`MESSAGE\s+Dr Ada Osei\s+to Maria\s+"Thank you, Maria`),
		regexp.MustCompile(`MESSAGE\s+Dr Ada Osei\s+to Sam\s+"Sam, please use your rescue inhaler`),
	}
	if !testing.Short() {
		want = append(want,
			regexp.MustCompile(`PUSH\s+Maria's phone\s+\w+\s+reminder\s+"Time to check your blood pressure"`),
			regexp.MustCompile(`ALERT\s+medium\s+Maria Alvarez\s+missed dose\s+missed-doses\s`),
			regexp.MustCompile(`DOSE\s+Maria Alvarez\s+furosemide 40 mg\s+MISSED`))
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	out := &lineWatch{want: want, done: stop}
	env := envMap(map[string]string{"TEND_DATABASE_URL": dbURL})
	if err := demo(runCtx, env, []string{"--patients", "5"}, out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.buf.String())
	}
	text := out.buf.String()
	if len(out.want) > 0 {
		var missing []string
		for _, re := range out.want {
			missing = append(missing, re.String())
		}
		t.Fatalf("the demo did not show:\n  %s\noutput:\n%s", strings.Join(missing, "\n  "), text)
	}
	for _, l := range strings.Split(text, "\n") {
		if n := utf8.RuneCountInString(l); n > demoWidth {
			t.Errorf("line of %d columns: %s", n, l)
		}
	}
	if regexp.MustCompile(`alert\s+alert`).MatchString(text) {
		t.Errorf("a push line stutters:\n%s", text)
	}
	for _, name := range []string{"Ana Costa", "Ben Carter"} {
		if regexp.MustCompile(`ALERT\s+\w+\s+` + name).MatchString(text) {
			t.Errorf("stable patient %s raised an alert:\n%s", name, text)
		}
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Summary after \d+ s$`),
		regexp.MustCompile(`(?m)^  PATIENT\s+PROGRAM\s+ALERT\s+RULE\s+VALUE$`),
		regexp.MustCompile(`(?m)^  Sam Lee\s+COPD\s+high\s+spo2-copd-below-usual\s+SpO2 88 %$`),
		regexp.MustCompile(`(?m)^\s+critical\s+spo2-critical\s+SpO2 84 %$`),
		regexp.MustCompile(`(?m)^  2 stable patients\s+none$`),
		regexp.MustCompile(`(?m)^  messages\s+2 from patients \(1 symptom report\), 2 replies from the clinician$`),
	} {
		if !re.MatchString(text) {
			t.Errorf("the summary lacks %s:\n%s", re, text)
		}
	}
	compareReadmeDemoTable(t, text)
	t.Logf("demo output:\n%s", text)
}

// summaryTable is a demo summary's patient table: from its header to the
// stable patients' line, the stable count written N (the README's demo
// runs more patients than the test).
func summaryTable(text string) []string {
	var rows []string
	in := false
	stable := regexp.MustCompile(`^  \d+ stable patients`)
	for l := range strings.SplitSeq(text, "\n") {
		l = strings.TrimRight(l, " ")
		if strings.HasPrefix(l, "  PATIENT ") {
			in = true
		}
		if !in {
			continue
		}
		if stable.MatchString(l) {
			return append(rows, stable.ReplaceAllString(l, "  N stable patients"))
		}
		rows = append(rows, l)
	}
	return rows
}

// compareReadmeDemoTable holds README's demo summary table to the one the
// demo printed: the same rows, to the space (without -short every row;
// with it, the demo may stop before the missed dose's row).
func compareReadmeDemoTable(t *testing.T, demoOut string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme, got := summaryTable(string(b)), summaryTable(demoOut)
	if len(readme) < 3 || len(got) < 3 {
		t.Fatalf("no summary table found (README %d rows, demo %d rows)", len(readme), len(got))
	}
	same := slices.Equal(readme, got)
	if testing.Short() {
		same = !slices.ContainsFunc(got, func(r string) bool { return !slices.Contains(readme, r) })
	}
	if !same {
		t.Errorf("README's demo table:\n%s\ndiffers from the demo's summary:\n%s", strings.Join(readme, "\n"), strings.Join(got, "\n"))
	}
}
