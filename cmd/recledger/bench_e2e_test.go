package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/cmd/internal/naive"
	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// e2eRequests is roughly how many requests each load level plays.
const e2eRequests = 25_000

// cpuTime is the CPU time (user+system) this process has used. The machine
// is shared, so wall-clock rates move with the neighbours' load; CPU time
// per request is the steadier figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// e2eServer starts the real server in-process: embedded JetStream and the
// bbolt ledger in dir, HTTP and NATS on free ports.
func e2eServer(tb testing.TB, ctx context.Context, dir string) *Server {
	tb.Helper()
	cfg := DefaultServeConfig()
	cfg.Data = dir
	cfg.HTTP = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:-1"
	cfg.Site = "bench"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := StartServer(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return srv
}

// e2eStop stops srv and waits for it.
func e2eStop(tb testing.TB, srv *Server) {
	tb.Helper()
	srv.Stop()
	if err := srv.Wait(); err != nil {
		tb.Errorf("server stopped with: %v", err)
	}
}

// e2eHeapProfile writes the live heap (what the server holds after the
// day) to path, for `go tool pprof -sample_index=inuse_space`.
func e2eHeapProfile(tb testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		tb.Fatal(err)
	}
}

// e2eLabels runs start with the profiler labels of a server's side:
// goroutines it starts (the listener, the connections, the ledger's
// writer) inherit them, so that
//
//	go tool pprof -tags rl.test cpu.out
//	go tool pprof -tagfocus e2e=recledger-server -top rl.test cpu.out
//
// tell the server's CPU from the in-process simulator's (e2e=NAME-client;
// the embedded JetStream's own goroutines carry its labels instead).
func e2eLabels(ctx context.Context, name string, start func()) {
	pprof.Do(ctx, pprof.Labels("e2e", name+"-server"), func(context.Context) { start() })
}

// e2eSimulate plays agents concurrent agents with no rate cap. cpuPerReq is
// the process's CPU time (server and simulator) per request played.
func e2eSimulate(tb testing.TB, ctx context.Context, name, url string, agents int) (rep simulator.Report, cpuPerReq time.Duration) {
	tb.Helper()
	cpu0 := cpuTime()
	defer func() {
		if rep.Sent > 0 {
			cpuPerReq = (cpuTime() - cpu0) / time.Duration(rep.Sent)
		}
	}()
	calls := max(3, e2eRequests/agents/11) // ~11 requests per call
	var err error
	// The client's goroutines (and the HTTP transport's, which inherit
	// the labels) are tagged, so a CPU profile tells the server's share
	// (see e2eLabels).
	pprof.Do(ctx, pprof.Labels("e2e", name+"-client"), func(ctx context.Context) {
		rep, err = simulator.Run(ctx, simulator.Config{URL: url, Agents: agents, CallsPerAgent: calls, Seed: 1, Concurrency: agents})
	})
	if err != nil {
		tb.Fatal(err)
	}
	if !rep.Check.Match {
		tb.Errorf("%d agents: the server's counts do not match what was sent: %+v", agents, rep.Check)
	}
	if n := rep.HTTPErrors["transport"] + rep.HTTPErrors["503"] + rep.HTTPErrors["500"]; n > 0 {
		tb.Errorf("%d agents: %d requests failed: %v", agents, n, rep.HTTPErrors)
	}
	return rep, cpuPerReq
}

// BenchmarkE2E measures the whole server over HTTP with the simulator: durable
// requests/s and latency at 16, 64 and 256 concurrent agents, the same load
// against the naive one-bbolt.Batch-per-request server and the ratio, replay
// speed of the resulting ledger, and the heap after a day of 1,000 agents.
// Run it with `make bench-e2e` (-benchtime 1x: each level plays one day).
func BenchmarkE2E(b *testing.B) {
	for _, agents := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) {
			for range b.N {
				ctx := b.Context()
				var srv *Server
				e2eLabels(ctx, "recledger", func() { srv = e2eServer(b, ctx, b.TempDir()) })
				ws0 := srv.store.WriterStats()
				rep, cpu := e2eSimulate(b, ctx, "recledger", "http://"+srv.Addr(), agents)
				ws := srv.store.WriterStats()
				e2eStop(b, srv)
				perCommit := float64(ws.Events-ws0.Events) / float64(max(1, ws.Commits-ws0.Commits))

				nv, err := naive.Open(filepath.Join(b.TempDir(), "naive.db"))
				if err != nil {
					b.Fatal(err)
				}
				var hs *httptest.Server
				e2eLabels(ctx, "naive", func() { hs = httptest.NewServer(nv.Handler()) })
				nrep, ncpu := e2eSimulate(b, ctx, "naive", hs.URL, agents)
				hs.Close()
				nv.Close()

				b.ReportMetric(rep.PerSecond, "req/s")
				b.ReportMetric(rep.AppendedPerSecond, "events/s")
				b.ReportMetric(rep.Latency.P50ms, "p50-ms")
				b.ReportMetric(rep.Latency.P99ms, "p99-ms")
				b.ReportMetric(nrep.PerSecond, "naive-req/s")
				b.ReportMetric(nrep.Latency.P99ms, "naive-p99-ms")
				b.ReportMetric(rep.PerSecond/nrep.PerSecond, "x-naive")
				b.ReportMetric(float64(cpu.Microseconds()), "cpu-us/req")
				b.ReportMetric(float64(ncpu.Microseconds()), "naive-cpu-us/req")
				b.ReportMetric(perCommit, "events/commit")
				b.Logf("%d agents: recledger %.0f req/s p50 %.2fms p99 %.2fms %dus CPU/req %.1f events/commit | naive %.0f req/s p50 %.2fms p99 %.2fms %dus CPU/req | %.2fx; %d requests, check match=%v",
					agents, rep.PerSecond, rep.Latency.P50ms, rep.Latency.P99ms, cpu.Microseconds(), perCommit,
					nrep.PerSecond, nrep.Latency.P50ms, nrep.Latency.P99ms, ncpu.Microseconds(),
					rep.PerSecond/nrep.PerSecond, rep.Sent, rep.Check.Match)
			}
		})
	}
	b.Run("day=1000agents", func(b *testing.B) {
		for range b.N {
			ctx := b.Context()
			dir := b.TempDir()
			srv := e2eServer(b, ctx, dir)
			rep, err := simulator.Run(ctx, simulator.Config{URL: "http://" + srv.Addr(), Agents: 1000, CallsPerAgent: 20, Seed: 1, Concurrency: 256})
			if err != nil {
				b.Fatal(err)
			}
			if !rep.Check.Match {
				b.Errorf("1000 agents: counts do not match: %+v", rep.Check)
			}
			rep = simulator.Report{} // drop the simulator's garbage before measuring
			http.DefaultClient.CloseIdleConnections()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if path := os.Getenv("RECLEDGER_E2E_HEAPPROFILE"); path != "" {
				e2eHeapProfile(b, path)
			}
			e2eStop(b, srv)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")

			// Replay the day's ledger from scratch.
			store, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			_, st, err := replay.Run(ctx, store, replay.Options{})
			took := time.Since(start)
			store.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Events)/took.Seconds(), "replay-events/s")
			b.Logf("1000 agents x 20 calls: heap in use %.1f MB after the day; replay of %d events in %s (%.0f events/s)",
				float64(ms.HeapInuse)/(1<<20), st.Events, took.Round(time.Millisecond), float64(st.Events)/took.Seconds())
		}
	})
}
