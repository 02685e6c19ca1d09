package replay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// runCheckpointer runs c in the current synctest bubble, waits until it
// has read its start (the live seq and seal), and returns a function
// that stops it and gives Run's error (the final save's).
func runCheckpointer(t *testing.T, c *replay.Checkpointer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	synctest.Wait()
	return func() error {
		cancel()
		return <-done
	}
}

// sleepUntil sleeps until start+at on the bubble's clock, and lets every
// goroutine settle.
func sleepUntil(start time.Time, at time.Duration) {
	time.Sleep(time.Until(start.Add(at)))
	synctest.Wait()
}

// Exactly EveryEvents new events are enough for a save.
func TestCheckpointerSavesAtEveryEvents(t *testing.T) {
	d := writeDay(t, nil)
	synctest.Test(t, func(t *testing.T) {
		live := projections.NewLive(projections.New())
		rec := &recorder{}
		stop := runCheckpointer(t, &replay.Checkpointer{Store: rec, Source: d.store, Live: live, EveryEvents: 10, Every: time.Hour})
		defer func() {
			if err := stop(); err != nil {
				t.Error(err)
			}
		}()
		feeder(live, d.envs)(10)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := rec.seqs(); !equal(got, []uint64{10}) {
			t.Fatalf("saves at %v, want [10]", got)
		}
	})
}

// Every counts from the last save, and is reached at the poll where it
// has passed exactly; polls with nothing new do not count as saves.
func TestCheckpointerEveryCountsFromTheLastSave(t *testing.T) {
	d := writeDay(t, nil)
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		live := projections.NewLive(projections.New())
		rec := &recorder{}
		stop := runCheckpointer(t, &replay.Checkpointer{Store: rec, Source: d.store, Live: live, EveryEvents: 1000, Every: time.Minute})
		defer func() {
			if err := stop(); err != nil {
				t.Error(err)
			}
		}()
		feed := feeder(live, d.envs)
		feed(5)
		expect := func(step string, at time.Duration, want ...uint64) {
			t.Helper()
			sleepUntil(start, at)
			if got := rec.seqs(); !equal(got, want) {
				t.Fatalf("%s (at %s): saves at %v, want %v", step, at, got, want)
			}
		}
		expect("a minute after the start", 60*time.Second+500*time.Millisecond, 5)
		feed(6)
		expect("less than a minute after that save", 119*time.Second+500*time.Millisecond, 5)
		expect("a minute after that save", 120*time.Second+500*time.Millisecond, 5, 6)
		// Idle polls save nothing and so do not restart the minute: an
		// event after a long quiet is saved at the next poll.
		sleepUntil(start, 250*time.Second+500*time.Millisecond)
		feed(7)
		expect("an event after two quiet minutes", 251*time.Second+500*time.Millisecond, 5, 6, 7)
	})
}

// problemTries is how many tries Problem counts ("" when none).
func problemTries(c *replay.Checkpointer) string {
	p := c.Problem()
	if p == nil {
		return ""
	}
	s := p.Error()
	i := strings.Index(s, "(")
	return s[i+1 : i+1+strings.Index(s[i+1:], " ")]
}

// After a failed save a pending seal does not hurry the retry: it waits
// Every like any other (a full disk wrote megabytes at every poll).
func TestCheckpointerSealDoesNotHurryAFailedSave(t *testing.T) {
	d := writeDay(t, nil)
	var seal uint64
	for _, e := range d.envs {
		if e.Type == ledger.TypeDayClosed {
			seal = e.Seq
			break
		}
	}
	if seal < 10 {
		t.Fatalf("the day's seal is at seq %d", seal)
	}
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		live := projections.NewLive(projections.New())
		rec := &recorder{fail: errors.New("disk full")}
		c := &replay.Checkpointer{Store: rec, Source: d.store, Live: live, EveryEvents: 10, Every: time.Minute}
		stop := runCheckpointer(t, c)
		defer func() { _ = stop() }() // the final save fails too
		feeder(live, d.envs)(seal)
		sleepUntil(start, 30*time.Second)
		if got := problemTries(c); got != "1" {
			t.Fatalf("half a minute after the first failure: %v tries (%v), want 1", got, c.Problem())
		}
		sleepUntil(start, 62*time.Second)
		if got := problemTries(c); got != "2" {
			t.Fatalf("a minute after it: %v tries (%v), want 2", got, c.Problem())
		}
	})
}

// A failed save that took long waits nine times as long before the
// retry, even when that is longer than Every.
func TestCheckpointerSpacesLongFailedSaves(t *testing.T) {
	d := writeDay(t, nil)
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		live := projections.NewLive(projections.New())
		rec := &recorder{fail: errors.New("disk full"), took: 30 * time.Second}
		c := &replay.Checkpointer{Store: rec, Source: d.store, Live: live, EveryEvents: 10, Every: time.Minute}
		stop := runCheckpointer(t, c)
		defer func() { _ = stop() }() // the final save fails too
		feeder(live, d.envs)(12)
		// Tried at 1 s, failed at 31 s: the next try at 301 s.
		sleepUntil(start, 300*time.Second)
		if got := problemTries(c); got != "1" {
			t.Fatalf("before nine times the save's 30 s: %v tries (%v), want 1", got, c.Problem())
		}
		sleepUntil(start, 335*time.Second)
		if got := problemTries(c); got != "2" {
			t.Fatalf("after it: %v tries (%v), want 2", got, c.Problem())
		}
	})
}
