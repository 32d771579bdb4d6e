package rpm

import (
	"math"
	"slices"
	"strings"
	"time"
)

// DoseStatus is the state of one due item of a schedule.
type DoseStatus string

// Dose states. A dose is pending from its time until the patient confirms
// it (taken or skipped) or its grace period ends (missed).
const (
	DosePending DoseStatus = "pending"
	DoseTaken   DoseStatus = "taken"
	DoseSkipped DoseStatus = "skipped"
	DoseMissed  DoseStatus = "missed"
)

// Valid reports whether s is a known dose status.
func (s DoseStatus) Valid() bool {
	switch s {
	case DosePending, DoseTaken, DoseSkipped, DoseMissed:
		return true
	}
	return false
}

// Dose is one due item as the adherence summary sees it.
type Dose struct {
	ScheduleID string
	Status     DoseStatus
	// DueAt is the occurrence's instant.
	DueAt time.Time
}

// AdherenceSummary counts one schedule's doses (or all of them, in Total).
type AdherenceSummary struct {
	ScheduleID string `json:"schedule_id,omitempty"`
	// Due counts every dose whose time has come, decided or not.
	Due     int `json:"due"`
	Taken   int `json:"taken"`
	Skipped int `json:"skipped"`
	Missed  int `json:"missed"`
	Pending int `json:"pending"`
	// Percentage is taken ÷ (taken + skipped + missed) × 100, rounded to one
	// decimal; nil while no dose is decided. Pending doses do not count yet.
	Percentage *float64 `json:"percentage"`
}

// Adherence summarises doses per schedule (ordered by schedule id) and in
// total. Doses due after now, and doses with an unknown status, are ignored.
func Adherence(doses []Dose, now time.Time) (perSchedule []AdherenceSummary, total AdherenceSummary) {
	index := map[string]int{}
	for _, d := range doses {
		if d.DueAt.After(now) || !d.Status.Valid() {
			continue
		}
		i, ok := index[d.ScheduleID]
		if !ok {
			i = len(perSchedule)
			index[d.ScheduleID] = i
			perSchedule = append(perSchedule, AdherenceSummary{ScheduleID: d.ScheduleID})
		}
		perSchedule[i].count(d.Status)
		total.count(d.Status)
	}
	slices.SortFunc(perSchedule, func(a, b AdherenceSummary) int { return strings.Compare(a.ScheduleID, b.ScheduleID) })
	for i := range perSchedule {
		perSchedule[i].finish()
	}
	total.finish()
	return perSchedule, total
}

func (a *AdherenceSummary) count(s DoseStatus) {
	a.Due++
	switch s {
	case DoseTaken:
		a.Taken++
	case DoseSkipped:
		a.Skipped++
	case DoseMissed:
		a.Missed++
	case DosePending:
		a.Pending++
	}
}

func (a *AdherenceSummary) finish() {
	decided := a.Taken + a.Skipped + a.Missed
	if decided == 0 {
		return
	}
	p := math.Round(float64(a.Taken)*1000/float64(decided)) / 10
	a.Percentage = &p
}
