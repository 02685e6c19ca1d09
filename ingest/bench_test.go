package ingest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user+system) this process has used: server and
// client together, the steadier figure on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommandPath measures the whole HTTP write path: request parsing,
// auth (open), append with fsync (group commit), the live projections and
// the JSON answer, with 64 concurrent clients, each an agent on its own
// call alternating pause and resume. Reports commands/s.
func BenchmarkCommandPath(b *testing.B) {
	const clients = 64
	s := newStack(b, nil)
	s.must(200, "PUT", "/v1/config/teams/sales", "application/json", `{}`)
	for i := range clients {
		s.must(200, "PUT", fmt.Sprintf("/v1/config/users/a%d", i), "application/json",
			fmt.Sprintf(`{"name":"Agent %d","team":"sales","recording":"desktop","extension":"%d"}`, i, 5000+i))
		s.signal(fmt.Sprintf(`{"call_id":"c-%d","extension":"%d","type":"ringing","direction":"inbound","ani":"+13125550100"}`, i, 5000+i))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	var next atomic.Int64
	var failed atomic.Int64
	b.SetParallelism((clients + 1) / 2) // × GOMAXPROCS goroutines; 64 on two cores
	ws0 := s.store.WriterStats()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := next.Add(1) - 1
		body := fmt.Sprintf("sender_id=a%d", id%clients)
		cmds := [2]string{"pause", "resume"}
		for i := 0; pb.Next(); i++ {
			resp, err := client.Post(s.srv.URL+"/recordingcontrols/rest/"+cmds[i%2], "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
	ws := s.store.WriterStats()
	b.ReportMetric(float64(ws.Events-ws0.Events)/float64(max(1, ws.Commits-ws0.Commits)), "events/commit")
}
