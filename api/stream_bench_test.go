package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
	"github.com/tendhealth/tend/rpm"
)

// BenchmarkStreamFanout connects N SSE clients of one care team to one
// process, measures the memory an idle connection costs, then raises an
// alert per iteration and measures how long it takes to reach every client
// (from the start of the ingest that raises it, commit included).
//
//	go test -run '^$' -bench BenchmarkStreamFanout -benchtime 20x ./api/
//
// Metrics: p50-ms, p99-ms and max-ms over every (iteration, client) pair;
// B/idle-conn is the heap and stacks of the whole process per connection,
// both ends included (the clients are raw connections with no goroutine while
// idle), so an upper bound of the server's share; goroutines/conn likewise.
func BenchmarkStreamFanout(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchStreamFanout(b, n) })
	}
}

func benchStreamFanout(b *testing.B, n int) {
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
	b.Cleanup(eng.CloseStreams)
	ctx := context.Background()
	sys := engine.System("bench")
	user := func(name string, role engine.Role, patient uuid.UUID) (string, engine.Actor) {
		u, err := eng.CreateUser(ctx, sys, engine.NewUser{Name: name, Role: role, PatientID: patient})
		if err != nil {
			b.Fatal(err)
		}
		tok, err := eng.CreateToken(ctx, sys, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		a, err := eng.Authenticate(ctx, tok)
		if err != nil {
			b.Fatal(err)
		}
		return tok, a
	}
	tok, clin := user("Dr Bench", engine.RoleClinician, uuid.Nil)
	team, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Bench", MemberIDs: []uuid.UUID{clin.UserID}})
	if err != nil {
		b.Fatal(err)
	}
	p, err := eng.CreatePatient(ctx, sys, engine.NewPatient{DisplayName: "Bench Patient", Timezone: "Europe/London",
		CareTeamID: team.ID, Programs: []string{"hypertension"}})
	if err != nil {
		b.Fatal(err)
	}
	_, dev := user("oximeter", engine.RoleDevice, p.ID)
	// One stream first, so that the process's listener is up before the
	// memory baseline.
	warm := dialStream(b, hs.Listener.Addr().String(), tok)
	defer warm.conn.Close()

	heap := func() (uint64, int) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc + m.StackInuse, runtime.NumGoroutine()
	}
	mem0, gr0 := heap()
	conns := make([]*sseConn, n)
	for i := range conns {
		conns[i] = dialStream(b, hs.Listener.Addr().String(), tok)
	}
	mem1, gr1 := heap()
	defer func() {
		for _, c := range conns {
			c.conn.Close()
		}
	}()

	// Readers: each reports when it has read an event's data line.
	arrived := make([]chan time.Time, n)
	for i, c := range conns {
		arrived[i] = make(chan time.Time, 1)
		go func() {
			sc := bufio.NewScanner(c.resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data:") {
					arrived[i] <- time.Now()
				}
			}
		}()
	}
	var lat []float64
	start := time.Now().Add(-time.Hour)
	b.ResetTimer()
	for i := range b.N {
		at := start.Add(time.Duration(i) * time.Second)
		t0 := time.Now()
		res, err := eng.Ingest(ctx, dev, engine.IngestRequest{PatientID: p.ID, Readings: []rpm.Reading{{
			Kind: rpm.SpO2, Value: new(72.0), Unit: "%", ObservedAt: at}}})
		if err != nil || len(res.Alerts) == 0 {
			b.Fatalf("ingest: %v %+v", err, res)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, ch := range arrived {
			wg.Go(func() {
				select {
				case t := <-ch:
					mu.Lock()
					lat = append(lat, float64(t.Sub(t0))/float64(time.Millisecond))
					mu.Unlock()
				case <-time.After(time.Minute):
					b.Error("a client received nothing within a minute")
				}
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(q float64) float64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	b.ReportMetric(float64(int64(mem1)-int64(mem0))/float64(n), "B/idle-conn")
	b.ReportMetric(float64(gr1-gr0)/float64(n), "goroutines/conn")
}

// sseConn is one raw streaming client: a connection and its response, read
// by nobody until the benchmark starts a reader.
type sseConn struct {
	conn net.Conn
	resp *http.Response
}

func dialStream(b *testing.B, addr, token string) *sseConn {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if err := req.Write(conn); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 512)
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("stream: %v %v", resp, err)
	}
	// The server writes its first line once subscribed.
	if _, err := bufio.NewReaderSize(resp.Body, 16).ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	return &sseConn{conn: conn, resp: resp}
}
