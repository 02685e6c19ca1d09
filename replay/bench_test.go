package replay_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// Benchmark sizes; override with RECLEDGER_BENCH_EVENTS (throughput) and
// RECLEDGER_BENCH_RESTART_EVENTS (restart with a checkpoint).
const (
	benchEvents        = 200_000
	benchRestartEvents = 1_000_000
	benchAgents        = 200
	benchSealEvery     = 50_000
	benchTail          = 1_000
)

func benchSize(env string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(env)); err == nil && n > 0 {
		return n
	}
	return def
}

// buildBenchLedger writes about n events of a busy site into dir/ledger.db
// and closes it.
func buildBenchLedger(b *testing.B, dir string, n int) (path string, head uint64) {
	b.Helper()
	path = filepath.Join(dir, "ledger.db")
	st, err := ledger.Open(path, ledger.Options{Now: replaytest.NewClock(replaytest.Start, time.Millisecond).Now})
	if err != nil {
		b.Fatal(err)
	}
	head, err = replaytest.Bulk(context.Background(), st, n, benchAgents, benchSealEvery)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	return path, head
}

// reportRate reports wall-clock and CPU rates. The machine is shared: wall
// time measures the neighbours too, CPU time (user+system of the whole
// process, reader goroutine and GC included) measures this code.
func reportRate(b *testing.B, events uint64, cpu time.Duration) {
	n := float64(events) * float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(n/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/event")
}

// cpuTime is the process's user+system time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBoltCursorScan is the floor: a bare bbolt cursor over the
// events bucket, touching every value, no copy, no decode.
func BenchmarkBoltCursorScan(b *testing.B) {
	path, head := buildBenchLedger(b, b.TempDir(), benchSize("RECLEDGER_BENCH_EVENTS", benchEvents))
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var sink uint64
	cpu0 := cpuTime(b)
	for b.Loop() {
		var n uint64
		err := db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket([]byte("events")).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				sink += binary.BigEndian.Uint64(k) + uint64(len(v))
				n++
			}
			return nil
		})
		if err != nil || n != head {
			b.Fatalf("scanned %d of %d: %v", n, head, err)
		}
	}
	reportRate(b, head, cpuTime(b)-cpu0)
	_ = sink
}

// BenchmarkReplayBolt folds the whole ledger from bbolt (Store.Scan:
// bounded transactions, decode with hash check, Apply).
func BenchmarkReplayBolt(b *testing.B) {
	path, head := buildBenchLedger(b, b.TempDir(), benchSize("RECLEDGER_BENCH_EVENTS", benchEvents))
	st, err := ledger.Open(path, ledger.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cpu0 := cpuTime(b)
	for b.Loop() {
		s, stats, err := replay.Run(context.Background(), st, replay.Options{})
		if err != nil || stats.Events != head || s.Seq() != head {
			b.Fatalf("replayed %d of %d: %v", stats.Events, head, err)
		}
	}
	reportRate(b, head, cpuTime(b)-cpu0)
}

// BenchmarkReplayJetStream folds the whole ledger from the JetStream
// mirror (ledger.ScanJetStream on an in-process server).
func BenchmarkReplayJetStream(b *testing.B) {
	n := benchSize("RECLEDGER_BENCH_EVENTS", benchEvents)
	_, js := startJetStream(b)
	ctx := context.Background()
	if err := ledger.EnsureStreams(ctx, js, replaytest.Site, 1); err != nil {
		b.Fatal(err)
	}
	st := openStore(b)
	ob := ledger.NewOutbox(st, js, replaytest.Site, nil)
	octx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Run(octx) }()
	head, err := replaytest.Bulk(ctx, st, n, benchAgents, benchSealEvery)
	if err != nil {
		b.Fatal(err)
	}
	waitMirrored(b, ob)
	cancel()
	<-done
	src := replay.JetStreamSource{JS: js, Site: replaytest.Site}
	cpu0 := cpuTime(b) // the in-process nats-server's CPU counts too
	for b.Loop() {
		s, stats, err := replay.Run(ctx, src, replay.Options{})
		if err != nil || stats.Events != head || s.Seq() != head {
			b.Fatalf("replayed %d of %d: %v", stats.Events, head, err)
		}
	}
	reportRate(b, head, cpuTime(b)-cpu0)
}

// BenchmarkRestartWithCheckpoint is a server restart on a large ledger:
// the newest checkpoint is benchTail events behind the head; Load decodes
// it and replays the tail. It reports the restart time, the checkpoint's
// size and the peak heap in use during the load.
func BenchmarkRestartWithCheckpoint(b *testing.B) {
	ctx := context.Background()
	path, head := buildBenchLedger(b, b.TempDir(), benchSize("RECLEDGER_BENCH_RESTART_EVENTS", benchRestartEvents))
	st, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cp, _, err := replay.Run(ctx, st, replay.Options{Until: replay.UntilSeq(head - benchTail)})
	if err != nil {
		b.Fatal(err)
	}
	// Saved as serve saves: the Checkpointer's path, sections and head in
	// one transaction.
	var sectionBytes int64
	for _, sec := range cp.PendingSections() {
		sectionBytes += int64(len(sec.Data))
	}
	live := saveAsServe(b, st, cp)
	blob, seq, secs, err := live.Snapshot()
	if err != nil || seq != head-benchTail || len(secs) != 0 {
		b.Fatalf("after the save: seq %d, %d sections still held: %v", seq, len(secs), err)
	}
	cp, live = nil, nil
	runtime.GC()

	var peak uint64
	cpu0 := cpuTime(b)
	for b.Loop() {
		stop := sampleHeap(&peak)
		s, tail, err := replay.Load(ctx, st, st)
		stop()
		if err != nil || tail != benchTail || s.Seq() != head {
			b.Fatalf("load: tail %d, seq %d of %d: %v", tail, s.Seq(), head, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restart")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/restart")
	b.ReportMetric(float64(len(blob))/(1<<20), "checkpoint-MiB")
	b.ReportMetric(float64(sectionBytes)/(1<<20), "sections-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(head), "ledger-events")
	st.Close()
}

// BenchmarkRebuildWithStoredSections: a replay from seq 1 (what `recledger
// replay` does) over a ledger whose checkpoint stored its sealed history,
// holding the sections it cuts (held) or reading them back from the file
// after each seal (stored, replay.Options.Sections). It reports the rate
// and the peak heap in use.
func BenchmarkRebuildWithStoredSections(b *testing.B) {
	ctx := context.Background()
	path, head := buildBenchLedger(b, b.TempDir(), benchSize("RECLEDGER_BENCH_RESTART_EVENTS", benchRestartEvents))
	st, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cp, _, err := replay.Run(ctx, st, replay.Options{Until: replay.UntilSeq(head - benchTail)})
	if err != nil {
		b.Fatal(err)
	}
	saveAsServe(b, st, cp)
	cp = nil
	for _, bc := range []struct {
		name     string
		sections projections.SectionReader
	}{{"held", nil}, {"stored", st}} {
		b.Run(bc.name, func(b *testing.B) {
			runtime.GC()
			var peak uint64
			cpu0 := cpuTime(b)
			for b.Loop() {
				stop := sampleHeap(&peak)
				s, stats, err := replay.Run(ctx, st, replay.Options{Sections: bc.sections})
				stop()
				if err != nil || s.Seq() != head || stats.Events != head {
					b.Fatalf("rebuild: seq %d of %d: %v", s.Seq(), head, err)
				}
			}
			reportRate(b, head, cpuTime(b)-cpu0)
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// saveAsServe saves s in st as serve's Checkpointer does (sections and
// head in one transaction; a stopped Checkpointer saves once) and returns
// the Live it saved from.
func saveAsServe(b *testing.B, st *ledger.Store, s *projections.State) *projections.Live {
	b.Helper()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	live := projections.NewLive(s)
	if err := (&replay.Checkpointer{Store: st, Source: st, Live: live}).Run(stopped); err != nil {
		b.Fatal(err)
	}
	return live
}

// sampleHeap records the peak HeapInuse into peak until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// BenchmarkSealedQueries is what a query of sealed history costs once the
// sections are in bbolt (the state after a restart): one cold contact, the
// contacts of a sealed day, its manifest, one agent's pauses over an
// hour of it, and every pause row and contact, collected and streamed.
func BenchmarkSealedQueries(b *testing.B) {
	ctx := context.Background()
	path, _ := buildBenchLedger(b, b.TempDir(), benchSize("RECLEDGER_BENCH_EVENTS", benchEvents))
	st, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, _, err := replay.Run(ctx, st, replay.Options{})
	if err != nil {
		b.Fatal(err)
	}
	saveAsServe(b, st, s)
	s, _, err = replay.Load(ctx, st, st)
	if err != nil || len(s.PendingSections()) != 0 {
		b.Fatalf("load: %v", err)
	}
	days := s.SealedDays()
	if len(days) < 2 {
		b.Fatalf("%d sealed days", len(days))
	}
	day := days[len(days)/2]
	cts, err := s.Contacts(ctx, ledger.ContactQuery{Day: day})
	if err != nil || len(cts) == 0 {
		b.Fatalf("contacts of %s: %d, %v", day, len(cts), err)
	}
	id := cts[len(cts)/2].ContactID
	from := cts[len(cts)/2].StartedAt
	pq := ledger.PauseQuery{UserID: cts[len(cts)/2].UserID, From: from, To: ledger.T(from.Add(time.Hour))}
	for _, q := range []struct {
		name string
		fn   func() error
	}{
		{"contact", func() error { _, err := s.Contact(ctx, id); return err }},
		{"contacts-of-day", func() error { _, err := s.Contacts(ctx, ledger.ContactQuery{Day: day}); return err }},
		// one agent's whole history, as GET /v1/contacts?user_id= asks it
		{"contacts-of-user", func() error { _, err := s.Contacts(ctx, ledger.ContactQuery{UserID: pq.UserID}); return err }},
		{"manifest", func() error { _, err := s.Manifest(ctx, day); return err }},
		{"pauses-hour", func() error { _, err := s.Pauses(ctx, pq); return err }},
		// the whole history, as an export: collected, and streamed (one
		// sealed chunk of rows at a time; compare B/op)
		{"pauses-all", func() error { _, err := s.Pauses(ctx, ledger.PauseQuery{}); return err }},
		{"pauses-all-streamed", func() error {
			return s.EachPause(ctx, ledger.PauseQuery{}, func(*ledger.PauseRow) error { return nil })
		}},
		{"contacts-all", func() error { _, err := s.Contacts(ctx, ledger.ContactQuery{}); return err }},
		{"contacts-all-streamed", func() error {
			return s.EachContact(ctx, ledger.ContactQuery{}, func(*ledger.Contact) error { return nil })
		}},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := q.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
