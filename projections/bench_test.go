package projections

import (
	"fmt"
	"math/rand"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// BenchmarkApply folds a realistic mix (calls with answer and end, PCI
// pauses, tags, metadata) and reports events/s of wall time, and events
// per second of CPU time used by the process (the machine is shared and
// noisy, so the second is the fairer figure); the target is at least 2M
// events/s on one core:
//
//	go test ./projections -run XXX -bench Apply -cpu 1
//
// Sub-benchmark quiet folds as the server does (no change lines,
// State.SetQuiet); bare as replay does without a trace (no command
// results either, State.SetResults).
func BenchmarkApply(b *testing.B) {
	b.Run("trace", func(b *testing.B) { benchApply(b, false, true) })
	b.Run("quiet", func(b *testing.B) { benchApply(b, true, true) })
	b.Run("bare", func(b *testing.B) { benchApply(b, true, false) })
}

func benchApply(b *testing.B, quiet, results bool) {
	g := newEnvGen(b)
	g.config(genConfig(200, 0))
	g.realistic(rand.New(rand.NewSource(1)), 200, 100_000)
	benchFold(b, g.out, quiet, results, nil)
}

// benchFold folds envs into a new State per iteration (quiet and results
// as State.SetQuiet and SetResults), calls check, when set, with each
// folded state, and reports events/s of wall time and events per second
// of the process's CPU time.
func benchFold(b *testing.B, envs []ledger.Envelope, quiet, results bool, check func(*State)) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		s := New()
		s.SetQuiet(quiet)
		s.SetResults(results)
		for i := range envs {
			if _, err := s.Apply(&envs[i]); err != nil {
				b.Fatal(err)
			}
		}
		if check != nil {
			check(s)
		}
		n += len(envs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(n)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// BenchmarkApplyDays folds two busy days as a replay meets them: the
// realistic mix of BenchmarkApply, signals carrying their own times (as a
// CTI feed's may), and each day sealed (manifest, cooled contacts, pause
// rows: sections hashed), without results or change lines, as
// replay.Run folds. BenchmarkApply shows neither cost.
func BenchmarkApplyDays(b *testing.B) {
	g := newEnvGen(b)
	g.config(genConfig(200, 0))
	g.clientTimes = true
	rng := rand.New(rand.NewSource(1))
	for range 2 { // a seal every 50,000 events, as replay's benchmarks do
		g.realistic(rng, 200, len(g.out)+50_000)
		g.add(ledger.TypeDayClosed, time.Minute, ledger.DayClosed{Day: g.now.Format(time.DateOnly), By: ledger.SealRequest})
		g.now = g.now.Add(24 * time.Hour)
	}
	benchFold(b, g.out, true, false, func(s *State) {
		if len(s.book.Order) != 2 {
			b.Fatalf("%d days sealed, want 2", len(s.book.Order))
		}
	})
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeSignal compares the fast call-signal decoder with
// encoding/json on the same bytes (report the ratio of their ns/op).
func BenchmarkDecodeSignal(b *testing.B) {
	g := newEnvGen(b)
	g.realistic(rand.New(rand.NewSource(1)), 10, 1)
	e := &g.out[0]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var d ledger.CallSignal
			if err := decodeSignal(e, &d, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interned", func(b *testing.B) { // as a State decodes: repeating strings shared
		in := &interner{}
		b.ReportAllocs()
		for b.Loop() {
			var d ledger.CallSignal
			if err := decodeSignal(e, &d, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var d ledger.CallSignal
			if err := e.Unmarshal(&d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkConfigUserByUser folds a site configured one user at a time, as
// an administrator or `recledger simulate` does it: 1,000 user puts. A
// change must cost time in what it changes: anything done per configured
// user at each change (a copy of the configuration, a rebuilt index, a
// member per user) makes the whole n².
func BenchmarkConfigUserByUser(b *testing.B) {
	g := newEnvGen(b)
	g.config(genConfig(0, 0))
	for i := range 1000 {
		v, err := ledger.EncodeData(ledger.User{Name: "x", Team: "a", Recording: ledger.RecServer, Extension: fmt.Sprintf("%d", 3000+i)})
		if err != nil {
			b.Fatal(err)
		}
		g.add(ledger.TypeConfig, time.Second, ledger.ConfigChange{Part: ledger.PartUser, Op: ledger.OpPut, Key: fmt.Sprintf("u%d", i), Value: v})
	}
	benchFold(b, g.out, false, true, nil)
}
