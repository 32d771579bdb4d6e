package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// Named is a report with the name of the pack it scores.
type Named struct {
	Pack   string
	Report Report
}

// WriteText prints the reports side by side: per event type sensitivity
// with its 95 % interval and median time-to-alert, per rule and per program
// the non-actionable alerts per patient-week by cause.
func WriteText(w io.Writer, reps []Named) error {
	if len(reps) == 0 {
		return nil
	}
	var b strings.Builder
	c := reps[0].Report.Config
	fmt.Fprintf(&b, "cohort: seed %d, %d patients, %d weeks (%.0f patient-weeks), artefacts %s ×%g, answer rate %.1f, routine %s, %d readings\n\n",
		c.Seed, c.Patients, c.Weeks, reps[0].Report.PatientWeeks, profileName(c.Artefacts), c.ArtefactRate, c.answerRate(),
		routineText(c.Routine), reps[0].Report.Readings)
	fmt.Fprintf(&b, "%-22s", "event")
	for _, r := range reps {
		fmt.Fprintf(&b, "  %-40s", r.Pack)
	}
	b.WriteString("\n")
	for _, t := range EventTypes() {
		fmt.Fprintf(&b, "%-22s", t)
		for _, r := range reps {
			e := r.Report.Event(t)
			cell := fmt.Sprintf("%d/%d %5.1f%% [%4.1f–%5.1f] %s", e.Caught, e.Measurable, 100*e.Sensitivity, 100*e.Low, 100*e.High, medianText(e))
			fmt.Fprintf(&b, "  %-40s", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nby routine\n")
	for _, key := range routineKeys(reps) {
		fmt.Fprintf(&b, "%-22s", key.typ)
		for _, r := range reps {
			cell := "—"
			for _, e := range r.Report.ByRoutine {
				if e.Type == key.typ && e.Routine == key.routine {
					cell = fmt.Sprintf("%s: %d/%d %5.1f%% [%4.1f–%5.1f]", e.Routine, e.Caught, e.Measurable, 100*e.Sensitivity, 100*e.Low, 100*e.High)
				}
			}
			fmt.Fprintf(&b, "  %-40s", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nneedless pages per patient-week (artefact/noise/physiology/fluctuation counts)\n")
	fmt.Fprintf(&b, "%-22s", "program")
	for _, r := range reps {
		fmt.Fprintf(&b, "  %-40s", r.Pack)
	}
	b.WriteString("\n")
	row := func(name string, cell func(Report) string) {
		fmt.Fprintf(&b, "%-22s", name)
		for _, r := range reps {
			fmt.Fprintf(&b, "  %-40s", cell(r.Report))
		}
		b.WriteString("\n")
	}
	row("all", func(r Report) string {
		return fmt.Sprintf("%.3f (%s) of %d alerts", r.PerPatientWeek, causesText(r.NonActionable), r.Alerts)
	})
	for _, p := range reps[0].Report.Programs {
		row(p.Program, func(r Report) string {
			s := r.Program(p.Program)
			return fmt.Sprintf("%.3f (%s)", s.PerPatientWeek, causesText(s.NonActionable))
		})
	}
	b.WriteString("\nper rule: non-actionable per patient-week (causes) · alerts · findings/suppressed/not confirmed\n")
	ids := ruleIDs(reps)
	for _, id := range ids {
		row(id, func(r Report) string {
			for _, s := range r.Rules {
				if s.RuleID == id {
					return fmt.Sprintf("%.3f (%s) · %d · %d/%d/%d", s.PerPatientWeek, causesText(s.NonActionable), s.Alerts, s.Findings, s.Suppressed, s.NotConfirmed)
				}
			}
			return "—"
		})
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func medianText(e EventStat) string {
	if math.IsNaN(e.MedianHours) {
		return "—"
	}
	return fmt.Sprintf("%.1fh p90 %.1fh %.0frd", e.MedianHours, e.P90Hours, e.MedianReadings)
}

func causesText(c [numCauses]int) string {
	return fmt.Sprintf("%d/%d/%d/%d", c[Artefact], c[Noise], c[Physiology], c[Fluctuation])
}

func profileName(a ArtefactProfile) string {
	if a == ArtefactsNormal {
		return "normal"
	}
	return string(a)
}

func routineText(r Routine) string {
	if r == (Routine{}) {
		return "mixed"
	}
	return fmt.Sprintf("SpO2 %d×, BP %d×, glucose %d× a day, weighed %.0f%% of days", r.SpO2PerDay, r.BPPerDay, r.GlucosePerDay, 100*r.WeighDays)
}

// routineKeys lists the event types and routines of the reports, in report
// order.
func routineKeys(reps []Named) []eventKey {
	seen := map[eventKey]bool{}
	var out []eventKey
	for _, r := range reps {
		for _, e := range r.Report.ByRoutine {
			k := eventKey{typ: e.Type, routine: e.Routine}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func ruleIDs(reps []Named) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reps {
		for _, s := range r.Report.Rules {
			if !seen[s.RuleID] {
				seen[s.RuleID] = true
				out = append(out, s.RuleID)
			}
		}
	}
	return out
}

// WriteHTML writes a self-contained report (no scripts, no external
// resources) with inline SVG plots: sensitivity per event type with its
// interval, and non-actionable alerts per patient-week per rule by cause.
func WriteHTML(w io.Writer, reps []Named) error {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tend cohort simulation</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}svg{display:block;margin:1em 0}</style></head><body>
<h1>Tend cohort simulation</h1>`)
	var text strings.Builder
	if err := WriteText(&text, reps); err != nil {
		return err
	}
	colours := []string{"#1f6feb", "#d4760b", "#2da44e", "#8250df"}
	// Sensitivity plot.
	types := EventTypes()
	const rowH, left, width = 22, 190, 420
	h := rowH*len(types)*len(reps) + 40
	fmt.Fprintf(&b, `<h2>Sensitivity per event type (95 %% Wilson interval)</h2><svg width="%d" height="%d" role="img">`, left+width+80, h)
	for x := 0; x <= 100; x += 20 {
		px := left + width*x/100
		fmt.Fprintf(&b, `<line x1="%d" y1="10" x2="%d" y2="%d" stroke="#eee"/><text x="%d" y="%d" font-size="11" text-anchor="middle">%d%%</text>`, px, px, h-20, px, h-5, x)
	}
	px95 := left + width*95/100
	fmt.Fprintf(&b, `<line x1="%d" y1="10" x2="%d" y2="%d" stroke="#cf222e" stroke-dasharray="4"/>`, px95, px95, h-20)
	y := 20
	for _, t := range types {
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="12">%s</text>`, y+len(reps)*rowH/2, html.EscapeString(string(t)))
		for i, r := range reps {
			e := r.Report.Event(t)
			col := colours[i%len(colours)]
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" opacity="0.7"/>`, left, y, float64(width)*e.Sensitivity, rowH-6, col)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#000"/>`, float64(left)+float64(width)*e.Low, y+(rowH-6)/2, float64(left)+float64(width)*e.High, y+(rowH-6)/2)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">%.1f%%</text>`, left+width+6, y+rowH-8, 100*e.Sensitivity)
			y += rowH
		}
	}
	b.WriteString(`</svg>`)
	// Non-actionable per rule, stacked by cause.
	ids := ruleIDs(reps)
	maxV := 0.05
	for _, r := range reps {
		for _, s := range r.Report.Rules {
			maxV = math.Max(maxV, s.PerPatientWeek)
		}
	}
	h = rowH*len(ids)*len(reps) + 40
	causeCol := []string{"#cf222e", "#d4a72c", "#6e7781", "#0969da"}
	fmt.Fprintf(&b, `<h2>Non-actionable alerts per patient-week, per rule</h2><p>`)
	for _, c := range Causes() {
		fmt.Fprintf(&b, `<span style="color:%s">■</span> %s &nbsp; `, causeCol[c], c)
	}
	fmt.Fprintf(&b, `</p><svg width="%d" height="%d" role="img">`, left+width+80, h)
	y = 20
	for _, id := range ids {
		fmt.Fprintf(&b, `<text x="0" y="%d" font-size="12">%s</text>`, y+len(reps)*rowH/2, html.EscapeString(id))
		for _, r := range reps {
			x := float64(left)
			for _, s := range r.Report.Rules {
				if s.RuleID != id {
					continue
				}
				for _, c := range Causes() {
					v := float64(s.NonActionable[c]) / r.Report.PatientWeeks
					wd := float64(width) * v / maxV
					fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`, x, y, wd, rowH-6, causeCol[c])
					x += wd
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%.3f %s</text>`, x+4, y+rowH-8, s.PerPatientWeek, html.EscapeString(r.Pack))
			}
			y += rowH
		}
	}
	b.WriteString(`</svg><h2>Figures</h2><pre>`)
	b.WriteString(html.EscapeString(text.String()))
	b.WriteString("</pre></body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMatrix prints the matrix of each pack as one table per pack: per
// artefact profile, answer rate, event type and routine, the sensitivity
// with its 95 % interval and the median and 90th-percentile time from
// detectability to the page; then per profile, answer rate and program the
// needless pages per patient-week with their causes; then the figures that
// miss the default goals.
func WriteMatrix(w io.Writer, names []string, ms []Matrix) error {
	var b strings.Builder
	for i, m := range ms {
		mc := m.Config
		fmt.Fprintf(&b, "pack %s · seeds %v · %d patients × %d weeks per seed · every routine (mixed cohort)\n\n", names[i], mc.Seeds, mc.Patients, mc.Weeks)
		fmt.Fprintf(&b, "%-8s %-6s %-21s %-18s %11s %7s %15s %8s %8s %4s\n", "artefact", "answer", "event", "routine", "caught", "sens", "95% interval", "median", "p90", "rd")
		for _, c := range m.Cells {
			for _, e := range slices.Concat(c.Report.Events, c.Report.ByRoutine) {
				routine := e.Routine
				if routine == "" {
					routine = "all routines"
				}
				fmt.Fprintf(&b, "%-8s %-6.1f %-21s %-18s %11s %6.1f%% %15s %8s %8s %4s\n", c.Profile, c.AnswerRate, e.Type, routine,
					fmt.Sprintf("%d/%d", e.Caught, e.Measurable), 100*e.Sensitivity, fmt.Sprintf("[%.1f–%.1f]", 100*e.Low, 100*e.High),
					hoursText(e.MedianHours), hoursText(e.P90Hours), numText(e.MedianReadings))
			}
		}
		fmt.Fprintf(&b, "\n%-8s %-6s %-14s %8s   %s\n", "artefact", "answer", "program", "needless", "per patient-week; causes artefact/noise/physiology/fluctuation")
		for _, c := range m.Cells {
			fmt.Fprintf(&b, "%-8s %-6.1f %-14s %8.3f   %s of %d pages\n", c.Profile, c.AnswerRate, "all", c.Report.PerPatientWeek, causesText(c.Report.NonActionable), c.Report.Alerts)
			for _, p := range c.Report.Programs {
				fmt.Fprintf(&b, "%-8s %-6.1f %-14s %8.3f   %s\n", c.Profile, c.AnswerRate, p.Program, p.PerPatientWeek, causesText(p.NonActionable))
			}
		}
		misses := m.Misses(DefaultGoals())
		fmt.Fprintf(&b, "\nfigures that miss the goals (≥ 95 %% caught, interval ≥ 92 %%, median ≤ 1 reading; needless ≤ 0.25, COPD ≤ 0.4, double ≤ 0.35): %d\n", len(misses))
		for _, x := range misses {
			fmt.Fprintf(&b, "  %s\n", x)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hoursText(h float64) string {
	if math.IsNaN(h) {
		return "—"
	}
	return fmt.Sprintf("%.1fh", h)
}

func numText(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}
