package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// benchAppenders are the concurrency levels every write benchmark runs at.
var benchAppenders = []int{1, 64, 512}

// benchCommand is a typical command event (about 300 bytes stored).
var benchCommand = Event{Type: TypeCommand, Data: Command{
	Command: "pauserecording", SenderID: "agent-0042", PeripheralID: "5000", Extension: "4711",
	Params:    []Param{{Key: "reason", Value: "card"}, {Key: "duration", Value: "120"}},
	Transport: TransportFinesse, Method: "POST", Client: "10.1.2.3", Principal: "finesse-prod",
}}

// runAppenders runs n goroutines that together call op b.N times, and
// reports the throughput as events/s.
func runAppenders(b *testing.B, n int, op func(i uint64) error) {
	b.Helper()
	b.ResetTimer()
	err := spread(n, 1, uint64(b.N), op)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// spread runs n goroutines that together call op for i = from..to, and
// returns the first error.
func spread(n int, from, to uint64, op func(i uint64) error) error {
	next := atomic.Uint64{}
	next.Store(from - 1)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range n {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > to {
					return
				}
				if err := op(i); err != nil {
					failed.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// BenchmarkAppend measures Store.Append of single events by concurrent
// appenders: the grouping writer should share each fsync among them.
func BenchmarkAppend(b *testing.B) {
	for _, n := range benchAppenders {
		b.Run("appenders="+strconv.Itoa(n), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "ledger.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var batches atomic.Int64
			s.Subscribe(func([]Envelope) { batches.Add(1) })
			ctx := context.Background()
			b.ReportAllocs()
			runAppenders(b, n, func(uint64) error {
				_, err := s.Append(ctx, benchCommand)
				return err
			})
			if seq, _ := s.Head(); seq != uint64(b.N) {
				b.Fatalf("head %d after %d appends", seq, b.N)
			}
			b.ReportMetric(float64(b.N)/float64(batches.Load()), "events/batch")
		})
	}
}

// benchValue is a stored value of about the size of benchCommand's.
var benchValue = bytes.Repeat([]byte("v"), 300)

// benchBolt runs the plain-bbolt baselines: put seq → 300 bytes, one write
// per op, through write (db.Batch or db.Update).
func benchBolt(b *testing.B, write func(db *bolt.DB, fn func(*bolt.Tx) error) error) {
	for _, n := range benchAppenders {
		b.Run("appenders="+strconv.Itoa(n), func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "bolt.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketEvents); return err }); err != nil {
				b.Fatal(err)
			}
			runAppenders(b, n, func(i uint64) error {
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], i)
				return write(db, func(tx *bolt.Tx) error { return tx.Bucket(bucketEvents).Put(k[:], benchValue) })
			})
		})
	}
}

// BenchmarkBoltBatch is the baseline of bbolt's own grouping (db.Batch).
func BenchmarkBoltBatch(b *testing.B) {
	benchBolt(b, func(db *bolt.DB, fn func(*bolt.Tx) error) error { return db.Batch(fn) })
}

// BenchmarkBoltUpdate is the baseline of one transaction per write.
func BenchmarkBoltUpdate(b *testing.B) {
	benchBolt(b, func(db *bolt.DB, fn func(*bolt.Tx) error) error { return db.Update(fn) })
}

// BenchmarkAppendVsBatch runs Store.Append and plain bbolt.Batch (the same
// puts as BenchmarkBoltBatch) by turns, in rounds, each b.N events by the
// same number of appenders, and reports both rates and x-batch, their
// ratio. The machine is shared: a ratio of rates measured in the same
// seconds is steadier than rates from two benchmarks run one after the
// other.
func BenchmarkAppendVsBatch(b *testing.B) {
	const rounds = 4
	for _, n := range benchAppenders {
		b.Run("appenders="+strconv.Itoa(n), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(filepath.Join(dir, "ledger.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			db, err := bolt.Open(filepath.Join(dir, "bolt.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketEvents); return err }); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			appendOp := func(uint64) error { _, err := s.Append(ctx, benchCommand); return err }
			batchOp := func(i uint64) error {
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], i)
				return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketEvents).Put(k[:], benchValue) })
			}
			var inAppend, inBatch time.Duration
			per := max(1, b.N/rounds)
			b.ResetTimer()
			for done := 0; done < b.N; done += per {
				from, to := uint64(done+1), uint64(min(done+per, b.N))
				start := time.Now()
				if err := spread(n, from, to, appendOp); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := spread(n, from, to, batchOp); err != nil {
					b.Fatal(err)
				}
				inAppend, inBatch = inAppend+mid.Sub(start), inBatch+time.Since(mid)
			}
			b.StopTimer()
			if seq, _ := s.Head(); seq != uint64(b.N) {
				b.Fatalf("head %d after %d appends", seq, b.N)
			}
			appendRate, batchRate := float64(b.N)/inAppend.Seconds(), float64(b.N)/inBatch.Seconds()
			b.ReportMetric(appendRate, "append-events/s")
			b.ReportMetric(batchRate, "batch-events/s")
			b.ReportMetric(appendRate/batchRate, "x-batch")
		})
	}
}

// BenchmarkAppendDuringCheckpoint saves a 95 MB checkpoint state (the
// unsealed day of a busy site) while one appender appends, and reports
// the worst append's wait during the saves (worst-append-ms) beside the
// save's time: "one-tx" writes the state as one value in one transaction,
// as before parts; "parts" as SaveCheckpoint does (DefaultSectionTxBytes):
//
//	go test ./ledger -run X -bench AppendDuringCheckpoint -benchtime 3x
func BenchmarkAppendDuringCheckpoint(b *testing.B) {
	for _, c := range []struct {
		name    string
		txBytes int
	}{{"one-tx", 1 << 30}, {"parts", DefaultSectionTxBytes}} {
		b.Run(c.name, func(b *testing.B) {
			s := jsStore(b)
			jsAppend(b, s, 100)
			s.sectionTxBytes = c.txBytes
			state := append([]byte("recledger.checkpoint\n"), bytes.Repeat([]byte("x"), 95<<20)...)
			var worst atomic.Int64
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					t0 := time.Now()
					if _, err := s.Append(context.Background(), jsEvents(100+i, 1)...); err != nil {
						b.Error(err)
						return
					}
					if d := int64(time.Since(t0)); d > worst.Load() {
						worst.Store(d)
					}
				}
			}()
			seq := uint64(0)
			for b.Loop() {
				seq++
				if err := s.SaveCheckpoint(context.Background(), "v", seq, state, nil); err != nil {
					b.Fatal(err)
				}
			}
			close(stop)
			<-done
			b.ReportMetric(float64(worst.Load())/1e6, "worst-append-ms")
		})
	}
}
