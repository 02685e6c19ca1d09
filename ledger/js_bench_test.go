//go:build unix

package ledger

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsBenchEvents is the ledger size of the scan benchmarks.
const jsBenchEvents = 100_000

// jsBenchStore returns a store of n events, appended in large batches.
func jsBenchStore(b *testing.B, n int) *Store {
	b.Helper()
	s := jsStore(b)
	for done := 0; done < n; {
		k := min(2000, n-done)
		if _, err := s.Append(context.Background(), jsEvents(done, k)...); err != nil {
			b.Fatal(err)
		}
		done += k
	}
	return s
}

// BenchmarkScanBolt reads the whole ledger from bbolt (decoded, hash-checked).
func BenchmarkScanBolt(b *testing.B) {
	s := jsBenchStore(b, jsBenchEvents)
	ctx := context.Background()
	cpu0 := jsCPU(b)
	for b.Loop() {
		n := 0
		if err := s.Scan(ctx, 0, func(Envelope) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != jsBenchEvents {
			b.Fatalf("scanned %d", n)
		}
	}
	jsReport(b, cpu0)
}

// BenchmarkScanJetStream reads the whole ledger back from the stream
// (batched direct gets, decoded, hash- and chain-checked).
func BenchmarkScanJetStream(b *testing.B) {
	s := jsBenchStore(b, jsBenchEvents)
	srv := jsServer(b, b.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(b, srv)
	o, stop := jsOutbox(b, s, js)
	start := time.Now()
	jsWait(b, 60*time.Second, "mirror", func() bool { return o.Confirmed() == jsBenchEvents })
	b.Logf("outbox published %d events in %v (%.0f events/s)", jsBenchEvents, time.Since(start), jsBenchEvents/time.Since(start).Seconds())
	stop()
	ctx := context.Background()
	// A reader (replay, verify, restore beside a server) is a client in
	// ClientsAccount: its reads cross the account boundary.
	nc, reader, err := Connect(ctx, srv.ClientURL(), "reader", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	for _, by := range []struct {
		name string
		js   jetstream.JetStream
	}{{"own", js}, {"reader", reader}} {
		b.Run(by.name, func(b *testing.B) {
			cpu0 := jsCPU(b)
			for b.Loop() {
				n := 0
				if err := ScanJetStream(ctx, by.js, jsTestSite, 0, func(Envelope) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != jsBenchEvents {
					b.Fatalf("scanned %d", n)
				}
			}
			jsReport(b, cpu0)
		})
	}
}

// BenchmarkJetStreamRawRead is the ceiling of the ordered consumer that
// ScanJetStream falls back to: messages counted, not decoded.
func BenchmarkJetStreamRawRead(b *testing.B) {
	s := jsBenchStore(b, jsBenchEvents)
	srv := jsServer(b, b.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(b, srv)
	o, stop := jsOutbox(b, s, js)
	jsWait(b, 60*time.Second, "mirror", func() bool { return o.Confirmed() == jsBenchEvents })
	stop()
	ctx := context.Background()
	cpu0 := jsCPU(b)
	for b.Loop() {
		cons, err := js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{siteEventsFilter(jsTestSite)}})
		if err != nil {
			b.Fatal(err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(jsReadBatch))
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < jsBenchEvents; n++ {
			if _, err := it.Next(); err != nil {
				b.Fatal(err)
			}
		}
		it.Stop()
	}
	jsReport(b, cpu0)
}

// BenchmarkDecodeFast compares the canonical fast path with Decode.
func BenchmarkDecodeFast(b *testing.B) {
	raws := jsSealed(b)
	b.Run("fast", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok := decodeFast(raws[i%len(raws)]); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("Decode", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := Decode(raws[i%len(raws)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// jsCPU is the CPU time this process has used so far (every goroutine,
// the in-process nats-server's included).
func jsCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// jsReport reports events per second of wall time and per second of CPU
// time since cpu0: the machine is shared, so the second is the steadier.
func jsReport(b *testing.B, cpu0 time.Duration) {
	events := float64(jsBenchEvents) * float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(events/(jsCPU(b)-cpu0).Seconds(), "events/cpu-s")
}

// BenchmarkOutboxPublish mirrors a ledger of jsBenchEvents into an empty
// stream: the catch-up rate after JetStream was away.
func BenchmarkOutboxPublish(b *testing.B) {
	s := jsBenchStore(b, jsBenchEvents)
	srv := jsServer(b, b.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(b, srv)
	ctx := context.Background()
	cpu0 := jsCPU(b)
	for b.Loop() {
		b.StopTimer()
		if err := js.DeleteStream(ctx, EventsStream); err != nil {
			b.Fatal(err)
		}
		if err := EnsureStreams(ctx, js, jsTestSite, 1); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		o, stop := jsOutbox(b, s, js)
		jsWait(b, 120*time.Second, "mirror", func() bool { return o.Confirmed() == jsBenchEvents })
		stop()
	}
	jsReport(b, cpu0)
}

// BenchmarkDirectGetFlood is readers' floods of direct gets while the
// site takes events, their answers sent nowhere: "batches" is 2
// connections × 100 requests for batches of 10,000 of an 8,000-event
// stream, "singles" 8 connections × 50,000 single gets with 3 KB reply
// subjects. It reports the peak heap in use while the server works
// through them, and the outbox's greatest lag meanwhile (it must keep up:
// the reads do not hold the stream). Without the relay's bounds
// (nats_relay.go), 2 × 500 batch requests took the heap past 4 GB and
// stalled the outbox; while requests crossed into the streams' account as
// a service, the server kept each one's way back for 15 s, and a walk's
// 8 × 200,000 singles took it to 10 GB.
func BenchmarkDirectGetFlood(b *testing.B) {
	floods := []struct {
		name         string
		conns, reqs  int
		body         string
		replyPadding int
	}{
		{"batches", 2, 100, `{"seq":1,"batch":10000}`, 0},
		{"singles", 8, 50_000, `{"seq":1}`, 3000},
	}
	for _, f := range floods {
		b.Run(f.name, func(b *testing.B) {
			srv, js := jsCapturing(b)
			ctx := context.Background()
			s := jsBenchStore(b, 8000)
			o, _ := jsOutboxUnder(b, s, js, srv.Capture())
			jsWait(b, 60*time.Second, "mirror", func() bool { return o.Confirmed() == 8000 })
			pad := strings.Repeat("x", f.replyPadding)
			for b.Loop() {
				traffic, stopTraffic := context.WithCancel(ctx)
				go func() {
					for traffic.Err() == nil {
						_, _ = s.Append(ctx, jsEvents(0, 10)...)
						time.Sleep(5 * time.Millisecond)
					}
				}()
				var wg sync.WaitGroup
				for range f.conns {
					c, err := nats.Connect(srv.ClientURL())
					if err != nil {
						b.Fatal(err)
					}
					wg.Go(func() {
						defer c.Close()
						for i := range f.reqs {
							_ = c.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, "_INBOX.nowhere"+pad+"."+strconv.Itoa(i), []byte(f.body))
						}
						_ = c.Flush()
					})
				}
				var peak, lag uint64
				var ms runtime.MemStats
				for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(100 * time.Millisecond) {
					runtime.ReadMemStats(&ms)
					peak, lag = max(peak, ms.HeapInuse), max(lag, o.Lag())
				}
				wg.Wait()
				stopTraffic()
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(lag), "max-outbox-lag")
			}
		})
	}
}

// BenchmarkVerifyVsCheckPages runs the two checks of a stopped ledger file
// that verify reads it whole for, by turns on the same file: the chain
// (Verify: every event decoded and hashed) and the page walk (CheckPages),
// and reports their times and the walk's share of the chain's; and the
// light walk a start opening the file for writing takes (start-walk-µs).
func BenchmarkVerifyVsCheckPages(b *testing.B) {
	s := jsBenchStore(b, jsBenchEvents)
	ctx := context.Background()
	var inChain, inPages, inLight time.Duration
	for b.Loop() {
		light := time.Now()
		if rep, err := checkPages(ctx, s.path, true); err != nil || !rep.OK {
			b.Fatalf("light page walk: %+v %v", rep, err)
		}
		inLight += time.Since(light)
		start := time.Now()
		if rep, err := s.Verify(ctx); err != nil || !rep.OK {
			b.Fatalf("verify: %+v %v", rep, err)
		}
		mid := time.Now()
		if rep, err := CheckPages(ctx, s.path); err != nil || !rep.OK {
			b.Fatalf("check pages: %+v %v", rep, err)
		}
		inChain, inPages = inChain+mid.Sub(start), inPages+time.Since(mid)
	}
	b.ReportMetric(float64(inChain.Milliseconds())/float64(b.N), "chain-ms")
	b.ReportMetric(float64(inPages.Milliseconds())/float64(b.N), "pages-ms")
	b.ReportMetric(float64(inPages)/float64(inChain), "pages/chain")
	b.ReportMetric(float64(inLight.Microseconds())/float64(b.N), "start-walk-µs")
}
