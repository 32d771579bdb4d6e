package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/api"
	"github.com/tendhealth/tend/e2ee"
	"github.com/tendhealth/tend/engine"
	"github.com/tendhealth/tend/engine/enginetest"
)

// BenchmarkPostEnvelope posts encrypted messages over real HTTP to a team
// channel of 10 devices (each envelope wrapped to the 10 and the record
// key), from 10 senders at once, one per device. Sealing happens before the
// clock starts: what is timed is the server's side (decode, shape check,
// recipients check against the thread's devices, store, audit, push job).
// Reported: messages/s, and the CPU time per message of this process (the
// server and the benchmark's clients, cpu-us/op) and, when Postgres runs on
// this machine, of the server processes of the benchmark's database
// (db-cpu-us/op), which move far less with the machine's load than the rate.
func BenchmarkPostEnvelope(b *testing.B) {
	ctx := context.Background()
	record, err := e2ee.GenerateDeviceKeys()
	if err != nil {
		b.Fatal(err)
	}
	pool := enginetest.NewPool(b)
	eng, err := engine.New(engine.Config{Pool: pool, Keys: testKeys(b), RecordPublicKey: record.HPKEPublic})
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
	if _, err := eng.CreateCareTeam(ctx, sys, engine.NewCareTeam{Name: "Team", MemberIDs: []uuid.UUID{doc.ID}}); err != nil {
		b.Fatal(err)
	}
	a := engine.Actor{UserID: doc.ID, Role: engine.RoleClinician}
	const devices = 10
	senders := make([]*e2eeClient, devices)
	for i := range senders {
		k, err := e2ee.GenerateDeviceKeys()
		if err != nil {
			b.Fatal(err)
		}
		d, err := eng.RegisterE2EEDevice(ctx, a, engine.NewE2EEDevice{HPKEPublicKey: k.HPKEPublic, SigningPublicKey: k.SigningPublic()})
		if err != nil {
			b.Fatal(err)
		}
		senders[i] = &e2eeClient{keys: k, id: d.ID.String()}
	}
	threads, _, err := eng.ListThreads(ctx, a, engine.ThreadFilter{})
	if err != nil || len(threads) != 1 || threads[0].Kind != "team" {
		b.Fatalf("threads %+v, %v", threads, err)
	}
	th := threads[0].ID
	if _, err := eng.EncryptThread(ctx, a, th); err != nil {
		b.Fatal(err)
	}
	tk, err := eng.ThreadKeys(ctx, a, th)
	if err != nil {
		b.Fatal(err)
	}
	var keys threadKeys
	raw, _ := json.Marshal(tk)
	if err := json.Unmarshal(raw, &keys); err != nil {
		b.Fatal(err)
	}
	tok, err := eng.CreateToken(ctx, sys, doc.ID)
	if err != nil {
		b.Fatal(err)
	}
	bodies := make([][][]byte, devices)
	for i := range b.N {
		body, err := json.Marshal(senders[i%devices].seal(b, keys, fmt.Sprintf("message %d", i)))
		if err != nil {
			b.Fatal(err)
		}
		bodies[i%devices] = append(bodies[i%devices], body)
	}
	url := hs.URL + "/v1/threads/" + th.String() + "/envelopes"
	self := int32(os.Getpid())
	cpu, cpuOK := processCPU(self)
	dbCPU := databaseCPU(ctx, b, pool)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, mine := range bodies {
		wg.Go(func() {
			for _, body := range mine {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Errorf("post: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if after, ok := processCPU(self); ok && cpuOK {
		b.ReportMetric(float64((after-cpu).Microseconds())/float64(b.N), "cpu-us/op")
	}
	if d, ok := databaseCPUSince(ctx, b, pool, dbCPU); ok {
		b.ReportMetric(float64(d.Microseconds())/float64(b.N), "db-cpu-us/op")
	}
}
