package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestConcurrentAppends(t *testing.T) {
	const goroutines, each = 64, 200
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	var (
		mu     sync.Mutex
		hooked []Envelope
	)
	s.Subscribe(func(envs []Envelope) {
		mu.Lock()
		hooked = append(hooked, envs...)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				evs := []Event{cmd("tag")}
				if i%10 == 0 {
					evs = append(evs, cmd("tag2")) // some multi-event appends
				}
				envs, err := s.Append(ctx, evs...)
				if err != nil {
					errs <- err
					return
				}
				for j := 1; j < len(envs); j++ {
					if envs[j].Seq != envs[j-1].Seq+1 {
						errs <- errors.New("one append's events are not contiguous")
						return
					}
				}
			}
			_ = g
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := uint64(goroutines * (each + each/10))
	if seq, _ := s.Head(); seq != want {
		t.Fatalf("head %d, want %d", seq, want)
	}
	if len(hooked) != int(want) {
		t.Fatalf("hooks saw %d, want %d", len(hooked), want)
	}
	var prev Envelope
	err := s.Scan(ctx, 0, func(e Envelope) error {
		if e.Seq != prev.Seq+1 {
			t.Fatalf("seq %d after %d", e.Seq, prev.Seq)
		}
		if e.Seq > 1 && (e.ID.Compare(prev.ID) <= 0 || e.Time.Before(prev.Time.Time) || e.Prev != prev.Hash) {
			t.Fatalf("seq %d does not follow %d: %s %s", e.Seq, prev.Seq, e.ID, prev.ID)
		}
		if h := hooked[e.Seq-1]; h.Hash != e.Hash {
			t.Fatalf("hook order differs at seq %d", e.Seq)
		}
		prev = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, want)
}

// TestCloseWhileAppending closes the store under 32 appending callers:
// each append either is acknowledged, and then is in the file after a
// reopen, or returns ErrClosed; none waits for ever, and nothing
// unacknowledged is stored. The requests queued when Close is called are
// committed, not dropped.
func TestCloseWhileAppending(t *testing.T) {
	const goroutines = 32
	ctx := context.Background()
	s, path := openTest(t, Options{})
	var (
		mu    sync.Mutex
		acked = map[uint64]string{}
		wg    sync.WaitGroup
	)
	errs := make(chan error, goroutines)
	started := make(chan struct{}, goroutines)
	for range goroutines {
		wg.Go(func() {
			for i := 0; ; i++ {
				envs, err := s.Append(ctx, cmd("tag"))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				acked[envs[0].Seq] = envs[0].ID.String()
				mu.Unlock()
				if i == 20 {
					started <- struct{}{}
				}
			}
		})
	}
	for range goroutines {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("appends still waiting 10 s after Close")
	}
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("append during Close: %v, want ErrClosed", err)
		}
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if head, _ := s.Head(); head != uint64(len(acked)) {
		t.Fatalf("head %d after reopen, %d appends acknowledged", head, len(acked))
	}
	err = s.Scan(ctx, 0, func(e Envelope) error {
		if acked[e.Seq] != e.ID.String() {
			return fmt.Errorf("seq %d: stored id %s, acknowledged %q", e.Seq, e.ID, acked[e.Seq])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIDsIncreaseAcrossRestartWithClockBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := Open(path, Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Append(ctx, cmd("a"), cmd("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	back := clock.Add(-time.Hour)
	s, err = Open(path, Options{Now: func() time.Time { return back }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	second, err := s.Append(ctx, cmd("c"))
	if err != nil {
		t.Fatal(err)
	}
	last, next := first[1], second[0]
	if next.Seq != 3 || next.Prev != last.Hash {
		t.Fatalf("restart did not continue the chain: %+v", next)
	}
	if next.ID.Compare(last.ID) <= 0 {
		t.Fatalf("id %s not after %s", next.ID, last.ID)
	}
	if !next.Time.Equal(last.Time.Time) || !next.Time.Equal(clock) {
		t.Fatalf("time went backwards: %s after %s", next.Time, last.Time)
	}
	mustVerify(t, s, 3)
}

func TestBadEventFailsOnlyItsCaller(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a")); err != nil {
		t.Fatal(err)
	}
	seq0, h0 := s.Head()
	_, err := s.Append(ctx, cmd("b"), Event{Type: TypeCommand, Data: make(chan int)})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("unencodable data: %v", err)
	}
	if _, err := s.Append(ctx, Event{Data: 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty type: %v", err)
	}
	if seq, h := s.Head(); seq != seq0 || h != h0 {
		t.Fatalf("head moved to %d", seq)
	}
	envs, err := s.Append(ctx, cmd("c"))
	if err != nil || envs[0].Seq != seq0+1 || envs[0].Prev != h0 {
		t.Fatalf("next append: %+v %v", envs, err)
	}
	mustVerify(t, s, 2)
}

func TestCommitFailureFailsWholeBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a")); err != nil {
		t.Fatal(err)
	}
	seq0, h0 := s.Head()
	// Cap the file at its size: the next transaction that needs a new
	// page fails in Commit. The writer is idle, and the next Append's
	// channel send orders this write before its reads.
	s.db.MaxSize = 1
	big := Event{Type: TypeConfig, Data: map[string]string{"blob": string(bytes.Repeat([]byte("x"), 1<<20))}}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.Append(ctx, big) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("caller %d: %v, want ErrUnavailable", i, err)
		}
	}
	t.Logf("failed batch: %v", errs[0])
	if seq, h := s.Head(); seq != seq0 || h != h0 {
		t.Fatalf("head moved to %d after a failed commit", seq)
	}
	if _, err := s.Get(ctx, seq0+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed batch left seq %d: %v", seq0+1, err)
	}
	// Remembered for whoever asks (/readyz), whoever appended.
	if err := s.WriteFailure(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("WriteFailure after a failed batch: %v", err)
	}
	lastID := s.LastID()
	s.db.MaxSize = 0
	envs, err := s.Append(ctx, cmd("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFailure(); err != nil {
		t.Fatalf("WriteFailure after a batch committed: %v", err)
	}
	if envs[0].Seq != seq0+1 || envs[0].Prev != h0 || envs[0].ID.Compare(lastID) <= 0 {
		t.Fatalf("append after failure does not continue the chain: %+v", envs[0])
	}
	mustVerify(t, s, 2)
}

// TestFailedCommitThatLandedStopsAppends: a batch reported failed whose
// write is in the file all the same (its last fsync failed after bbolt
// made it visible; here, an event put behind the writer's back) leaves the
// head unknown: appends stop with ErrUnavailable, saying to reopen, rather
// than fork the chain at a seq the file already holds.
func TestFailedCommitThatLandedStopsAppends(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a")); err != nil {
		t.Fatal(err)
	}
	other, _ := openTest(t, Options{})
	landed, err := other.Append(ctx, cmd("x"), cmd("y"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).Put(seqKey(2), landed[1].Raw)
	}); err != nil {
		t.Fatal(err)
	}
	s.db.MaxSize = 1
	big := Event{Type: TypeConfig, Data: map[string]string{"blob": string(bytes.Repeat([]byte("x"), 1<<20))}}
	if _, err := s.Append(ctx, big); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("the failing batch: %v", err)
	}
	s.db.MaxSize = 0
	_, err = s.Append(ctx, cmd("b"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "reopen") {
		t.Fatalf("append after a failed commit found in the file: %v, want appends stopped", err)
	}
	if got, err := s.Get(ctx, 2); err != nil || got.Hash != landed[1].Hash {
		t.Fatalf("seq 2 was overwritten: %+v %v", got, err)
	}
	// Nor does a probe say the file takes writes again.
	if err := s.ProbeWrite(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("probe of a store whose head is unknown: %v", err)
	}
	// The file itself is whole: Damaged, for which readers and servers
	// refuse a store, names nothing.
	if err := s.Damaged(); err != nil {
		t.Fatalf("a store whose head is unknown called damaged: %v", err)
	}
}

func TestCancelledWhileWaiting(t *testing.T) {
	s, _ := openTest(t, Options{})
	// Hold bbolt's writer lock so the writer blocks in Begin with the
	// first request taken; the second then waits in the channel.
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := &request{evs: []prepared{mustPrepare(t, cmd("taken"))}, res: make(chan result, 1)}
	res1 := make(chan error, 1)
	go func() { _, err := s.submit(ctx1, first); res1 <- err }()
	for first.state.Load() != reqTaken {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the writer reach Begin

	ctx2, cancel2 := context.WithCancel(context.Background())
	res2 := make(chan error, 1)
	go func() { _, err := s.Append(ctx2, cmd("abandoned")); res2 <- err }()
	for len(s.reqs) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel2()
	if err := <-res2; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting request: %v, want context.Canceled", err)
	}
	cancel1()
	select {
	case err := <-res1:
		t.Fatalf("taken request returned before its commit: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-res1; err != nil {
		t.Fatalf("taken request: %v, want its true (successful) result", err)
	}
	envs, err := s.Append(context.Background(), cmd("next"))
	if err != nil || envs[0].Seq != 2 {
		t.Fatalf("next append: %+v %v (the abandoned event must not be stored)", envs, err)
	}
	mustVerify(t, s, 2)
}

func mustPrepare(t *testing.T, ev Event) prepared {
	t.Helper()
	p, err := prepare(ev)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGatherLingersForReturningCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Store{reqs: make(chan *request, 16), stop: make(chan struct{}), max: 5}
		w := &writer{s: s, timer: time.NewTimer(time.Hour)}
		w.timer.Stop()
		mk := func(n int) *request { return &request{evs: make([]prepared, n), res: make(chan result, 1)} }
		gap := time.Hour // the gap rule is off until its own case below
		gather := func(expect int, linger time.Duration, first *request) ([]*request, time.Duration) {
			w.expect, w.lingerUntil, w.lingerGap = expect, time.Now().Add(linger), gap
			start := time.Now()
			b := w.gather(nil, first, true)
			return b, time.Since(start)
		}

		if b, took := gather(1, time.Millisecond, mk(1)); len(b) != 1 || took != 0 {
			t.Errorf("lone appender: %d requests after %v, want 1 at once", len(b), took)
		}
		go func() {
			time.Sleep(100 * time.Microsecond)
			s.reqs <- mk(1)
			s.reqs <- mk(1)
		}()
		if b, took := gather(3, time.Millisecond, mk(1)); len(b) != 3 || took != 100*time.Microsecond {
			t.Errorf("returning callers: %d requests after %v, want 3 after 100µs", len(b), took)
		}
		go func() { s.reqs <- mk(1) }()
		synctest.Wait()
		if b, took := gather(3, time.Millisecond, mk(1)); len(b) != 2 || took != time.Millisecond {
			t.Errorf("missing caller: %d requests after %v, want 2 after the linger", len(b), took)
		}
		if b, took := gather(3, -time.Millisecond, mk(1)); len(b) != 1 || took != 0 {
			t.Errorf("linger over: %d requests after %v, want 1 at once", len(b), took)
		}
		if b, took := gather(3, time.Millisecond, mk(5)); len(b) != 1 || took != 0 {
			t.Errorf("full batch: %d requests after %v, want 1 at once", len(b), took)
		}
		// Callers that keep coming are waited for; one that comes after a
		// longer silence than the gap is left to the next batch.
		gap = 200 * time.Microsecond
		go func() {
			time.Sleep(150 * time.Microsecond)
			s.reqs <- mk(1)
			time.Sleep(150 * time.Microsecond)
			s.reqs <- mk(1)
			time.Sleep(400 * time.Microsecond)
			s.reqs <- mk(1)
		}()
		if b, took := gather(4, time.Millisecond, mk(1)); len(b) != 3 || took != 500*time.Microsecond {
			t.Errorf("gap: %d requests after %v, want 3 after 500µs", len(b), took)
		}
		if b, _ := gather(1, 0, <-s.reqs); len(b) != 1 {
			t.Errorf("late caller: %d requests", len(b))
		}
		gap = time.Hour

		abandoned := mk(1)
		abandoned.state.Store(reqAbandoned)
		s.reqs <- abandoned
		if b, _ := gather(1, 0, mk(1)); len(b) != 1 || abandoned.state.Load() != reqAbandoned {
			t.Errorf("abandoned request taken: %d", len(b))
		}
	})
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	src, _ := openTest(t, Options{})
	for i := range 50 {
		if _, err := src.Append(ctx, cmd("a"), Event{Type: TypeCallSignal, Data: CallSignal{Type: SignalRinging, CallID: string(rune('a' + i%26))}}); err != nil {
			t.Fatal(err)
		}
	}
	var all []Envelope
	if err := src.Scan(ctx, 0, func(e Envelope) error { all = append(all, e); return nil }); err != nil {
		t.Fatal(err)
	}

	// The copy's clock is behind the source's: new appends still follow.
	dst, _ := openTest(t, Options{Now: func() time.Time { return time.Unix(0, 0) }})
	var hooked int
	dst.Subscribe(func(envs []Envelope) { hooked += len(envs) })
	if err := dst.Import(ctx, all[:30]); err != nil {
		t.Fatal(err)
	}
	gap := append([]Envelope{}, all[31:40]...)
	if err := dst.Import(ctx, gap); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("gap: %v", err)
	}
	if seq, _ := dst.Head(); seq != 30 {
		t.Fatalf("failed import moved the head to %d", seq)
	}
	forged := all[30]
	forged.Raw = bytes.Replace(forged.Raw, []byte(`"transport":"http"`), []byte(`"transport":"nats"`), 1)
	if bytes.Equal(forged.Raw, all[30].Raw) {
		t.Fatal("forgery changed nothing")
	}
	if err := dst.Import(ctx, []Envelope{forged}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("forged envelope: %v", err)
	}
	// An event of a newer build's version: refused, not imported to make
	// a ledger this build cannot fold.
	newer := all[30]
	newer.Raw, newer.Version = nil, CurrentVersion+1
	if _, err := newer.Seal(all[29].Hash); err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(ctx, []Envelope{newer}); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("an event of version %d: %v", newer.Version, err)
	}
	// An event whose id is the last one's, on the chain: refused (ids
	// strictly increase; mutation testing took "not after" for "before").
	same := all[30]
	same.Raw, same.ID = nil, all[29].ID
	if _, err := same.Seal(all[29].Hash); err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(ctx, []Envelope{same}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an event with the last one's id: %v", err)
	}
	noRaw := all[30]
	noRaw.Raw = nil
	if err := dst.Import(ctx, []Envelope{noRaw}); err != nil {
		t.Fatalf("envelope without Raw: %v", err)
	}
	if err := dst.Import(ctx, all[31:]); err != nil {
		t.Fatal(err)
	}
	if hooked != len(all) {
		t.Fatalf("hooks saw %d imported envelopes, want %d", hooked, len(all))
	}
	i := 0
	err := dst.ScanRaw(ctx, 0, func(seq uint64, raw []byte) error {
		if seq != all[i].Seq || !bytes.Equal(raw, all[i].Raw) {
			t.Fatalf("seq %d differs from the source", seq)
		}
		i++
		return nil
	})
	if err != nil || i != len(all) {
		t.Fatalf("scan copy: %d events, %v", i, err)
	}
	srcRep, dstRep := mustVerify(t, src, 100), mustVerify(t, dst, 100)
	if srcRep.Head != dstRep.Head {
		t.Fatalf("heads differ: %s %s", srcRep.Head, dstRep.Head)
	}
	envs, err := dst.Append(ctx, cmd("after"))
	if err != nil || envs[0].Seq != 101 || envs[0].ID.Compare(all[99].ID) <= 0 {
		t.Fatalf("append after import: %+v %v", envs, err)
	}
}
