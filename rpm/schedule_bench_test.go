package rpm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tendhealth/tend/rpm"
)

// BenchmarkOccurrences48h expands one patient's twice-daily schedule for the
// next 48 hours, the materialiser's unit of work; patients rotate through
// zones with and without DST. s/100k_patients extrapolates to 100,000
// patients on one core.
func BenchmarkOccurrences48h(b *testing.B) {
	zones := []string{"America/New_York", "Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles", "Australia/Sydney", "UTC"}
	type patient struct {
		s   rpm.Schedule
		loc *time.Location
	}
	patients := make([]patient, 1000)
	for i := range patients {
		s := twiceDaily(fmt.Sprintf("%08d", i))
		s.Times = []string{fmt.Sprintf("%02d:%02d", 6+i%4, i%60), fmt.Sprintf("%02d:30", 18+i%5)}
		patients[i] = patient{s, zone(b, zones[i%len(zones)])}
	}
	// A window that contains the US spring-forward change.
	from := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	to := from.Add(48 * time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := patients[i%len(patients)]
		occ, err := rpm.Occurrences(p.s, p.loc, from, to)
		if err != nil || len(occ) != 4 {
			b.Fatalf("got %d occurrences, %v", len(occ), err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i)*100_000/1e9, "s/100k_patients")
}
