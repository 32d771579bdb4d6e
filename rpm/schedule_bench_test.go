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
	patients := benchPatients(b, 1000)
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

// BenchmarkOccurrences100kPatients expands 100,000 patients' twice-daily
// schedules for 48 hours in one operation (run with -benchtime 1x).
func BenchmarkOccurrences100kPatients(b *testing.B) {
	patients := benchPatients(b, 100_000)
	from := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, p := range patients {
			occ, err := rpm.Occurrences(p.s, p.loc, from, from.Add(48*time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			n += len(occ)
		}
		if n != 400_000 {
			b.Fatalf("%d occurrences, want 400,000", n)
		}
	}
}

type benchPatient struct {
	s   rpm.Schedule
	loc *time.Location
}

// benchPatients builds n twice-daily schedules at varied times, rotating
// through zones with and without DST.
func benchPatients(b *testing.B, n int) []benchPatient {
	zones := []string{"America/New_York", "Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles", "Australia/Sydney", "UTC"}
	locs := make([]*time.Location, len(zones))
	for i, z := range zones {
		locs[i] = zone(b, z)
	}
	patients := make([]benchPatient, n)
	for i := range patients {
		s := twiceDaily(fmt.Sprintf("%08d", i))
		s.Times = []string{fmt.Sprintf("%02d:%02d", 6+i%4, i%60), fmt.Sprintf("%02d:30", 18+i%5)}
		patients[i] = benchPatient{s, locs[i%len(locs)]}
	}
	return patients
}
