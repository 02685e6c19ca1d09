package ledger

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestGatherKeepsToMaxBatch: a batch takes no request that would carry it
// past MaxBatch events, whether the request was waiting already or came
// while the writer lingered; it is left to the next batch. (The first
// request is taken whole, however large.)
func TestGatherKeepsToMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Store{reqs: make(chan *request, 16), stop: make(chan struct{}), max: 5}
		w := &writer{s: s, timer: time.NewTimer(time.Hour)}
		w.timer.Stop()
		mk := func(n int) *request { return &request{evs: make([]prepared, n), res: make(chan result, 1)} }
		events := func(b []*request) (n int) {
			for _, r := range b {
				n += r.size()
			}
			return n
		}

		// Waiting already, no linger.
		s.reqs <- mk(2)
		s.reqs <- mk(1)
		w.expect, w.lingerUntil, w.lingerGap = 1, time.Time{}, time.Hour
		if b := w.gather(nil, mk(3), true); len(b) != 2 || events(b) != 5 {
			t.Errorf("waiting requests: %d requests of %d events, want 2 of 5 (MaxBatch)", len(b), events(b))
		}
		if len(s.reqs) != 1 {
			t.Fatalf("%d requests left for the next batch, want 1", len(s.reqs))
		}
		<-s.reqs

		// Arriving while the writer lingers for more callers.
		go func() {
			time.Sleep(100 * time.Microsecond)
			s.reqs <- mk(2)
			s.reqs <- mk(1)
		}()
		w.expect, w.lingerUntil, w.lingerGap = 10, time.Now().Add(time.Millisecond), time.Hour
		if b := w.gather(nil, mk(3), true); len(b) != 2 || events(b) != 5 {
			t.Errorf("lingering: %d requests of %d events, want 2 of 5 (MaxBatch)", len(b), events(b))
		}
		synctest.Wait()
		if len(s.reqs) != 1 {
			t.Fatalf("%d requests left for the next batch, want 1", len(s.reqs))
		}
	})
}

// TestEachCallerGetsItsOwnEnvelopes: callers grouped into one batch are
// each answered with the envelopes of their own events, in their order,
// and none of another caller's.
func TestEachCallerGetsItsOwnEnvelopes(t *testing.T) {
	const goroutines, rounds = 32, 30
	s, _ := openTest(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				n := 1 + (g+i)%3
				evs := make([]Event, n)
				for j := range evs {
					evs[j] = cmd(fmt.Sprintf("g%d-%d-%d", g, i, j))
				}
				envs, err := s.Append(context.Background(), evs...)
				if err != nil {
					errs <- err
					return
				}
				if len(envs) != n {
					errs <- fmt.Errorf("caller %d: %d events appended, %d envelopes returned", g, n, len(envs))
					return
				}
				for j, e := range envs {
					var c Command
					if err := e.Unmarshal(&c); err != nil || c.Command != fmt.Sprintf("g%d-%d-%d", g, i, j) {
						errs <- fmt.Errorf("caller %d, event %d: envelope seq %d holds %q (%v)", g, j, e.Seq, c.Command, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestHeadAndStatsFollowEachCommit: after a batch, the head (seq, hash and
// LastID) is its last event's, and WriterStats counts the transaction and
// its events.
func TestHeadAndStatsFollowEachCommit(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	envs, err := s.Append(ctx, cmd("a"), cmd("b"), cmd("c"))
	if err != nil {
		t.Fatal(err)
	}
	last := envs[2]
	if seq, h := s.Head(); seq != 3 || h != last.Hash || s.LastID() != last.ID {
		t.Fatalf("head %d %s, last id %s; want the batch's last event, 3 %s %s", seq, h, s.LastID(), last.Hash, last.ID)
	}
	if got := s.WriterStats(); got != (WriterStats{Commits: 1, Events: 3}) {
		t.Fatalf("after one batch of 3: %+v", got)
	}
	if _, err := s.Append(ctx, cmd("d")); err != nil {
		t.Fatal(err)
	}
	if got := s.WriterStats(); got != (WriterStats{Commits: 2, Events: 4}) {
		t.Fatalf("after a second batch of 1: %+v", got)
	}
}
