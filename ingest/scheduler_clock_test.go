package ingest

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/recledger/recledger/ledger"
)

// A clock stepped back (a VM restored, NTP) does not stop the
// configuration from being read: a change made after the step takes
// effect within DefaultConfigEvery, not once the clock is back where it
// was.
func TestConfigReReadAfterTheClockStepsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"},
			began: utc("2026-11-20T08:00:00Z")}
		start := utc("2026-11-23T21:00:00Z")
		base := time.Now()
		var back atomic.Int64 // how far the clock was stepped back
		s := &Scheduler{Appender: f, View: f, Poll: time.Second,
			Now:   func() time.Time { return start.Add(time.Since(base) - time.Duration(back.Load())) },
			Began: func(context.Context) (time.Time, bool) { return f.began, true }}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(10 * time.Minute) // 21:10
		back.Store(int64(2 * time.Hour))
		time.Sleep(5 * time.Minute) // 19:15
		f.mu.Lock()
		f.site = ledger.Site{UploadTime: "19:30", Timezone: "UTC"}
		f.mu.Unlock()
		time.Sleep(30 * time.Minute) // 19:45
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		// on the stepped-back clock
		got := seals(t, onClock(f.appended(), func(at time.Time) time.Time { return start.Add(at.Sub(base) - 2*time.Hour) }))
		want := []seal{{"2026-11-23T19:30:00Z", "2026-11-23", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// wakeOnExpiry is a ledger on which a pause expiry's append is followed
// by a configuration change and a Wake, as a change committed while the
// scheduler is busy appending (not waiting for a wake) is.
type wakeOnExpiry struct {
	fakeLedger
	s  *Scheduler
	to ledger.Site
}

func (w *wakeOnExpiry) Append(ctx context.Context, evs ...ledger.Event) ([]ledger.Envelope, error) {
	out, err := w.fakeLedger.Append(ctx, evs...)
	w.mu.Lock()
	s := w.s
	if err == nil && evs[0].Type == ledger.TypeTimer {
		w.site = w.to
	}
	w.mu.Unlock()
	if err == nil && evs[0].Type == ledger.TypeTimer {
		s.Wake()
	}
	return out, err
}

// A Wake that comes while the scheduler is not waiting is kept for its
// next wait: the upload time moved into the past then seals the day at
// once, not at the next poll.
func TestWakeWhileBusyIsNotLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := utc("2026-11-23T14:00:00Z")
		f := &wakeOnExpiry{fakeLedger: fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"},
			began: utc("2026-11-20T08:00:00Z")}, to: ledger.Site{UploadTime: "13:00", Timezone: "UTC"}}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k1", PauseOpenID: "p1", Due: ledger.T(start.Add(time.Second))})
		base := time.Now()
		// an hour's poll: without the wake, the change is seen an hour later
		s := &Scheduler{View: f, Poll: time.Hour, Now: func() time.Time { return start.Add(time.Since(base)) },
			Began: func(context.Context) (time.Time, bool) { return f.began, true }}
		s.Appender, f.s = f, s
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(2 * time.Hour)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		got := seals(t, onClock(f.appended(), func(at time.Time) time.Time { return start.Add(at.Sub(base)) }))
		want := []seal{{"2026-11-23T14:00:01Z", "2026-11-23", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// onClock is got with each append's time read on the test's clock.
func onClock(got []appended, clock func(time.Time) time.Time) []appended {
	for i := range got {
		got[i].at = clock(got[i].at)
	}
	return got
}
