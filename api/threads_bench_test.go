package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// BenchmarkListThreads times GET /v1/threads (the first page, 50 threads)
// for a clinician who takes part in about 2,000 threads — 1,000 patients of
// their care team, each with its patient thread and its staff-only thread,
// plus the team channel — with recent messages in a tenth of them, over
// real HTTP. Reported: p50 and p99 latency in ms.
func BenchmarkListThreads(b *testing.B) {
	ctx := context.Background()
	pool := enginetest.NewPool(b)
	eng, err := engine.New(engine.Config{Pool: pool, Keys: testKeys(b)})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := api.New(api.Config{Engine: eng, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	sys := engine.System("bench")
	doc, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: "Dr Busy", Role: engine.RoleClinician})
	if err != nil {
		b.Fatal(err)
	}
	team, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Large team", MemberIDs: []uuid.UUID{doc.ID}})
	if err != nil {
		b.Fatal(err)
	}
	// Another team's 1,000 patients, which the clinician must not see.
	other, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Other team"})
	if err != nil {
		b.Fatal(err)
	}
	clinician := engine.Actor{UserID: doc.ID, Role: engine.RoleClinician}
	for i := range 2000 {
		tm := team.ID
		if i%2 == 1 {
			tm = other.ID
		}
		if _, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: "P", Timezone: "UTC", CareTeamID: tm}); err != nil {
			b.Fatal(err)
		}
	}
	threads, _, err := eng.ListThreads(ctx, clinician, engine.ThreadFilter{Limit: 500})
	if err != nil {
		b.Fatal(err)
	}
	for i, th := range threads {
		if i%5 == 0 {
			if _, err := eng.PostMessage(ctx, clinician, th.ID, engine.NewMessage{Body: "checking in"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM threads WHERE care_team_id = $1`, team.ID).Scan(&n); err != nil || n < 2000 {
		b.Fatalf("%d threads of the team, %v", n, err)
	}
	tok, err := eng.CreateToken(ctx, sys, doc.ID)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", hs.URL+"/v1/threads", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
