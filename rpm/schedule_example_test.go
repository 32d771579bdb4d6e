package rpm_test

import (
	"fmt"
	"time"

	"github.com/tendhealth/tend/rpm"
)

func ExampleOccurrences() {
	s := rpm.Schedule{ID: "sched-1", Type: rpm.MedicationSchedule, Medication: "metoprolol",
		Times: []string{"02:30", "08:00"}, StartDate: "2026-03-01"}
	ny, err := rpm.ValidateZone("America/New_York")
	if err != nil {
		panic(err)
	}
	// The day clocks spring forward: 02:30 does not exist and fires at 03:00.
	from := time.Date(2026, 3, 8, 0, 0, 0, 0, ny)
	occ, err := rpm.Occurrences(s, ny, from, from.Add(24*time.Hour))
	if err != nil {
		panic(err)
	}
	for _, o := range occ {
		fmt.Println(o.Key, o.At.Format("15:04 MST"))
	}
	// Output:
	// sched-1/2026-03-08/02:30 03:00 EDT
	// sched-1/2026-03-08/08:00 08:00 EDT
}
