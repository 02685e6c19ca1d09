package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// fakeLedger stands in for the ledger and the live projections: it records
// what the scheduler appends, with the (fake) time it was appended at, and
// folds seals and timers into the little state SealView shows.
type fakeLedger struct {
	began  time.Time // when the ledger's first event was appended; zero: unknown
	mu     sync.Mutex
	site   ledger.Site
	sealed []string
	lastAt ledger.Time
	timers []ledger.TimerFired
	got    []appended
	fail   int // fail this many appends first
	tries  int // appends asked for, failed ones too
}

type appended struct {
	at time.Time
	ev ledger.Event
}

func (f *fakeLedger) Append(ctx context.Context, evs ...ledger.Event) ([]ledger.Envelope, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.fail > 0 {
		f.fail--
		return nil, ledger.ErrUnavailable
	}
	var out []ledger.Envelope
	for _, e := range evs {
		f.got = append(f.got, appended{time.Now(), e})
		switch d := e.Data.(type) {
		case ledger.DayClosed:
			if !slices.Contains(f.sealed, d.Day) {
				f.sealed = append(f.sealed, d.Day)
				f.lastAt = ledger.T(time.Now())
			}
		case ledger.TimerFired:
			f.timers = slices.DeleteFunc(f.timers, func(t ledger.TimerFired) bool { return t.PauseOpenID == d.PauseOpenID })
		}
		out = append(out, ledger.Envelope{Seq: uint64(len(f.got)), Type: e.Type})
	}
	return out, nil
}

func (f *fakeLedger) Site() ledger.Site {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.site
	s.Normalize()
	return s
}

// Location loads the site's zone as the projections do.
func (f *fakeLedger) Location() *time.Location {
	f.mu.Lock()
	defer f.mu.Unlock()
	loc, err := ledger.LoadZone(f.site.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func (f *fakeLedger) LastSeal() (string, ledger.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sealed) == 0 {
		return "", ledger.Time{}
	}
	return slices.Max(f.sealed), f.lastAt
}

func (f *fakeLedger) SealedDays() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sealed)
}

func (f *fakeLedger) Seq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A ledger that sealed days holds their events, appended here or not.
	return uint64(max(len(f.got), len(f.sealed)))
}

func (f *fakeLedger) NextTimer() (ledger.TimerFired, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return ledger.TimerFired{}, false
	}
	return slices.MinFunc(f.timers, func(a, b ledger.TimerFired) int { return a.Due.Compare(b.Due.Time) }), true
}

func (f *fakeLedger) addTimer(t ledger.TimerFired) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timers = append(f.timers, t)
}

func (f *fakeLedger) appended() []appended {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

var _ Appender = (*fakeLedger)(nil)
var _ SealView = (*fakeLedger)(nil)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// runFor runs a scheduler on f inside the synctest bubble, with the fake
// clock starting at start, for d; it returns what was appended.
func runFor(t *testing.T, f *fakeLedger, start time.Time, d time.Duration, poll time.Duration, during func(s *Scheduler, now func() time.Time)) []appended {
	t.Helper()
	base := time.Now()
	now := func() time.Time { return start.Add(time.Since(base)) }
	f.mu.Lock()
	for i := range f.got { // rebase times recorded by Append
		f.got[i].at = now()
	}
	f.mu.Unlock()
	s := &Scheduler{Appender: f, View: f, Now: now, Poll: poll,
		Began: func(context.Context) (time.Time, bool) { return f.began, !f.began.IsZero() }}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if during != nil {
		during(s, now)
	}
	time.Sleep(start.Add(d).Sub(now()))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	got := f.appended()
	for i := range got { // Append saw bubble time; report it on the test's clock
		got[i].at = start.Add(got[i].at.Sub(base))
	}
	return got
}

// appendOrder names what was appended, in order: a pause expiry by its
// pause, a seal by its day and who sealed it.
func appendOrder(got []appended) []string {
	var order []string
	for _, a := range got {
		switch d := a.ev.Data.(type) {
		case ledger.TimerFired:
			order = append(order, d.PauseOpenID)
		case ledger.DayClosed:
			order = append(order, d.Day+" "+d.By)
		}
	}
	return order
}

type seal struct {
	at  string
	day string
	by  string
}

func seals(t *testing.T, got []appended) []seal {
	t.Helper()
	var out []seal
	for _, a := range got {
		if d, ok := a.ev.Data.(ledger.DayClosed); ok {
			if a.ev.Type != ledger.TypeDayClosed {
				t.Errorf("seal appended with type %s", a.ev.Type)
			}
			out = append(out, seal{a.at.UTC().Format(time.RFC3339Nano), d.Day, d.By})
		}
	}
	return out
}

func TestUploadTimes(t *testing.T) {
	ny, err := ledger.LoadZone("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	london, err := ledger.LoadZone("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now, hhmm string
		loc       *time.Location
		prev      string
		prevDay   string
		next      string
	}{
		// the day before spring forward: EST
		{"2026-03-07T12:00:00Z", "23:00", ny, "2026-03-07T04:00:00Z", "2026-03-06", "2026-03-08T04:00:00Z"},
		// spring-forward day: 23:00 is EDT
		{"2026-03-08T12:00:00Z", "23:00", ny, "2026-03-08T04:00:00Z", "2026-03-07", "2026-03-09T03:00:00Z"},
		// 02:30 does not exist on 2026-03-08: at the jump, 03:00 EDT
		{"2026-03-08T06:59:59Z", "02:30", ny, "2026-03-07T07:30:00Z", "2026-03-07", "2026-03-08T07:00:00Z"},
		{"2026-03-08T07:00:00Z", "02:30", ny, "2026-03-08T07:00:00Z", "2026-03-08", "2026-03-09T06:30:00Z"},
		// fall back: 01:30 happens twice on 2026-11-01; the first (EDT) counts
		{"2026-11-01T05:00:00Z", "01:30", ny, "2026-10-31T05:30:00Z", "2026-10-31", "2026-11-01T05:30:00Z"},
		{"2026-11-01T06:45:00Z", "01:30", ny, "2026-11-01T05:30:00Z", "2026-11-01", "2026-11-02T06:30:00Z"},
		// 23:00 on the fall-back day is EST
		{"2026-11-01T12:00:00Z", "23:00", ny, "2026-11-01T03:00:00Z", "2026-10-31", "2026-11-02T04:00:00Z"},
		// Europe/London: 01:30 does not exist on 2026-03-29 (01:00 GMT → 02:00 BST)
		{"2026-03-29T00:00:00Z", "01:30", london, "2026-03-28T01:30:00Z", "2026-03-28", "2026-03-29T01:00:00Z"},
		// exactly at the upload time: it is the previous one
		{"2026-11-23T23:00:00Z", "23:00", time.UTC, "2026-11-23T23:00:00Z", "2026-11-23", "2026-11-24T23:00:00Z"},
		// a broken upload time means the default 23:00
		{"2026-11-23T12:00:00Z", "25:99", time.UTC, "2026-11-22T23:00:00Z", "2026-11-22", "2026-11-23T23:00:00Z"},
		{"2026-11-23T12:00:00Z", "24:00", time.UTC, "2026-11-22T23:00:00Z", "2026-11-22", "2026-11-23T23:00:00Z"},
		{"2026-11-23T12:00:00Z", "23:60", time.UTC, "2026-11-22T23:00:00Z", "2026-11-22", "2026-11-23T23:00:00Z"},
		{"2026-11-23T12:00:00Z", "-1:30", time.UTC, "2026-11-22T23:00:00Z", "2026-11-22", "2026-11-23T23:00:00Z"},
	} {
		now := utc(tc.now)
		prev, day := PrevUpload(now, tc.hhmm, tc.loc)
		next := NextUpload(now, tc.hhmm, tc.loc)
		if !prev.Equal(utc(tc.prev)) || day != tc.prevDay || !next.Equal(utc(tc.next)) {
			t.Errorf("%s %s %s: prev %s %s, next %s; want %s %s, %s", tc.now, tc.hhmm, tc.loc,
				prev.UTC().Format(time.RFC3339), day, next.UTC().Format(time.RFC3339), tc.prev, tc.prevDay, tc.next)
		}
	}
}

func TestSealsAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hhmm   string
		start  string
		last   string // last sealed day before start
		length time.Duration
		want   []seal
	}{
		{"spring forward 23:00", "23:00", "2026-03-07T12:00:00Z", "2026-03-06", 72 * time.Hour, []seal{
			{"2026-03-08T04:00:00Z", "2026-03-07", ledger.SealSchedule},
			{"2026-03-09T03:00:00Z", "2026-03-08", ledger.SealSchedule},
			{"2026-03-10T03:00:00Z", "2026-03-09", ledger.SealSchedule},
		}},
		{"spring forward 02:30", "02:30", "2026-03-07T12:00:00Z", "2026-03-07", 48 * time.Hour, []seal{
			{"2026-03-08T07:00:00Z", "2026-03-08", ledger.SealSchedule},
			{"2026-03-09T06:30:00Z", "2026-03-09", ledger.SealSchedule},
		}},
		{"fall back 23:00", "23:00", "2026-10-31T12:00:00Z", "2026-10-30", 72 * time.Hour, []seal{
			{"2026-11-01T03:00:00Z", "2026-10-31", ledger.SealSchedule},
			{"2026-11-02T04:00:00Z", "2026-11-01", ledger.SealSchedule},
			{"2026-11-03T04:00:00Z", "2026-11-02", ledger.SealSchedule},
		}},
		{"fall back 01:30 once", "01:30", "2026-10-31T12:00:00Z", "2026-10-31", 48 * time.Hour, []seal{
			{"2026-11-01T05:30:00Z", "2026-11-01", ledger.SealSchedule},
			{"2026-11-02T06:30:00Z", "2026-11-02", ledger.SealSchedule},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeLedger{site: ledger.Site{UploadTime: tc.hhmm, Timezone: "America/New_York"}, sealed: []string{tc.last}}
				got := seals(t, runFor(t, f, utc(tc.start), tc.length, time.Minute, nil))
				if !slices.Equal(got, tc.want) {
					t.Errorf("seals\n got %v\nwant %v", got, tc.want)
				}
			})
		})
	}
}

func TestSealOnStartAfterDowntime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// down at 23:00 on the 22nd and the 23rd: only the 23rd is sealed on
		// start; the next seal is on schedule.
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-21"}}
		got := seals(t, runFor(t, f, utc("2026-11-24T08:15:00Z"), 24*time.Hour, 0, nil))
		want := []seal{
			{"2026-11-24T08:15:00Z", "2026-11-23", ledger.SealStartup},
			{"2026-11-24T23:00:00Z", "2026-11-24", ledger.SealSchedule},
		}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// After a downtime, the pauses that expired before the upload time expire
// before the seal in the ledger too (a time walk found the seal first: a
// replay up to a time between them showed the day sealed with the pause
// open); one due after it, after.
func TestPauseExpiriesBeforeTheStartupSeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k1", PauseOpenID: "before", Due: ledger.T(utc("2026-11-23T22:59:59Z"))})
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k2", PauseOpenID: "after", Due: ledger.T(utc("2026-11-23T23:00:01Z"))})
		order := appendOrder(runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Minute, 0, nil))
		if want := []string{"before", "2026-11-23 startup", "after"}; !slices.Equal(order, want) {
			t.Errorf("appended %v, want %v", order, want)
		}
	})
}

func TestNoSealOnStartOfFreshSite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}}
		got := seals(t, runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Hour, 0, nil))
		if len(got) != 0 {
			t.Errorf("sealed %v on the first start of an empty ledger; want nothing", got)
		}
	})
}

// Days sealed by hand on a ledger begun today (a backfill of past days)
// do not make a restart, or an upload time moved later today, seal
// yesterday: the site did not exist at yesterday's upload time, and
// today's contacts would be filed under it.
func TestNoSealOfYesterdayAfterPastDaysSealedByHand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, began: utc("2026-11-24T07:00:00Z"),
			sealed: []string{"2026-11-10", "2026-11-11"}}
		got := seals(t, runFor(t, f, utc("2026-11-24T08:15:00Z"), 16*time.Hour, time.Minute, func(s *Scheduler, now func() time.Time) {
			f.mu.Lock()
			f.site.UploadTime = "21:42" // later today
			f.mu.Unlock()
			s.Wake()
		}))
		want := []seal{{"2026-11-24T21:42:00Z", "2026-11-24", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// A ledger begun after the last upload time was not down at it: it
// existed only since. Its contacts wait for the next upload time, and a
// ledger begun before it is sealed on start as before.
func TestNoSealOnStartOfLedgerBegunAfterUploadTime(t *testing.T) {
	for _, tc := range []struct {
		began string
		want  []seal
	}{
		{"2026-11-24T03:52:00Z", []seal{{"2026-11-24T23:00:00Z", "2026-11-24", ledger.SealSchedule}}},
		{"2026-11-23T22:59:00Z", []seal{
			{"2026-11-24T08:15:00Z", "2026-11-23", ledger.SealStartup},
			{"2026-11-24T23:00:00Z", "2026-11-24", ledger.SealSchedule},
		}},
		// begun at the upload time: it held events by then
		{"2026-11-23T23:00:00Z", []seal{
			{"2026-11-24T08:15:00Z", "2026-11-23", ledger.SealStartup},
			{"2026-11-24T23:00:00Z", "2026-11-24", ledger.SealSchedule},
		}},
	} {
		t.Run(tc.began, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, began: utc(tc.began)}
				if _, err := f.Append(t.Context(), ledger.Event{Type: ledger.TypeConfig}); err != nil {
					t.Fatal(err)
				}
				got := seals(t, runFor(t, f, utc("2026-11-24T08:15:00Z"), 16*time.Hour, time.Minute, nil))
				if !slices.Equal(got, tc.want) {
					t.Errorf("seals\n got %v\nwant %v", got, tc.want)
				}
			})
		})
	}
}

func TestNoSealOnStartWhenSealed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-23"}}
		got := seals(t, runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Hour, 0, nil))
		if len(got) != 0 {
			t.Errorf("sealed %v; want nothing", got)
		}
	})
}

func TestAlreadySealedDayNotSealedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// an administrator sealed the 23rd at 20:00; at 23:00 nothing happens
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}}
		got := seals(t, runFor(t, f, utc("2026-11-23T19:00:00Z"), 6*time.Hour, time.Minute, func(s *Scheduler, now func() time.Time) {
			time.Sleep(time.Hour)
			if _, err := f.Append(t.Context(), ledger.Event{Type: ledger.TypeDayClosed, Data: ledger.DayClosed{Day: "2026-11-23", By: ledger.SealRequest}}); err != nil {
				t.Fatal(err)
			}
		}))
		want := []seal{{"2026-11-23T20:00:00Z", "2026-11-23", ledger.SealRequest}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

func TestSealRetriedAfterAppendFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}, fail: 2}
		got := seals(t, runFor(t, f, utc("2026-11-23T22:59:00Z"), 10*time.Minute, 0, nil))
		// failed at 23:00:00 and 23:00:01, appended at the third look
		want := []seal{{"2026-11-23T23:00:02Z", "2026-11-23", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// A pause expiry that cannot be appended (a full disk) is tried again
// every second, not at once: a walk's scheduler tried, and logged, 3,000
// times a second.
func TestFailedExpiryRetriedEverySecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := utc("2026-11-23T14:00:00Z")
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}, fail: 1 << 30}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k1", PauseOpenID: "p1", Due: ledger.T(start.Add(time.Second))})
		runFor(t, f, start, 10*time.Second, 0, nil)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.tries < 5 || f.tries > 11 {
			t.Errorf("%d tries in 10 s, want about one a second", f.tries)
		}
	})
}

// An expiry due before the upload time that could not be appended holds
// the seal back until it is in (a walk's disk, freed between the two
// appends of a round, let the seal in first).
func TestSealWaitsForAFailedExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}, fail: 1}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k1", PauseOpenID: "before", Due: ledger.T(utc("2026-11-23T22:59:59Z"))})
		// started after a downtime: the seal and the expiry are both due
		order := appendOrder(runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Minute, 0, nil))
		if want := []string{"before", "2026-11-23 startup"}; !slices.Equal(order, want) {
			t.Errorf("appended %v, want %v", order, want)
		}
	})
}

func TestConfigChangeTakesEffect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}}
		got := seals(t, runFor(t, f, utc("2026-11-23T12:00:00Z"), 12*time.Hour, time.Hour, func(s *Scheduler, now func() time.Time) {
			time.Sleep(time.Hour)
			f.mu.Lock()
			f.site = ledger.Site{UploadTime: "17:00", Timezone: "America/New_York"}
			f.mu.Unlock()
		}))
		// 17:00 EST = 22:00 UTC; the change is read within a minute
		want := []seal{{"2026-11-23T22:00:00Z", "2026-11-23", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// An upload time moved to one already past today seals the day at once,
// as a restart would; moved to a later one, it waits for it.
func TestUploadTimeMovedIntoThePast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"},
			began: utc("2026-11-20T08:00:00Z")}
		got := seals(t, runFor(t, f, utc("2026-11-23T21:00:00Z"), 2*time.Hour+30*time.Minute, time.Minute, func(s *Scheduler, now func() time.Time) {
			time.Sleep(90 * time.Minute) // 22:30
			f.mu.Lock()
			f.site = ledger.Site{UploadTime: "22:00", Timezone: "UTC"}
			f.mu.Unlock()
			s.Wake()
		}))
		want := []seal{{"2026-11-23T22:30:00Z", "2026-11-23", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// A zone moved so that the upload time, unchanged, is past today in the
// new zone seals that day now, as a moved upload time does; a ledger
// begun after the moved-to time has nothing of the day to seal.
func TestUploadZoneMovedIntoThePast(t *testing.T) {
	for _, c := range []struct {
		name  string
		began time.Time
		site  ledger.Site
		want  []seal
	}{
		// 22:30 UTC is 07:30 the next morning in Tokyo: 23:00 there has
		// passed for 2026-11-23.
		{"the zone", utc("2026-11-20T08:00:00Z"), ledger.Site{UploadTime: "23:00", Timezone: "Asia/Tokyo"},
			[]seal{{"2026-11-23T22:30:00Z", "2026-11-23", ledger.SealSchedule}}},
		{"the time, the ledger begun after it", utc("2026-11-23T22:15:00Z"), ledger.Site{UploadTime: "22:00", Timezone: "UTC"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}, began: c.began}
				got := seals(t, runFor(t, f, utc("2026-11-23T21:00:00Z"), 2*time.Hour+30*time.Minute, time.Minute, func(s *Scheduler, now func() time.Time) {
					time.Sleep(90 * time.Minute) // 22:30
					f.mu.Lock()
					f.site = c.site
					f.mu.Unlock()
					s.Wake()
				}))
				if !slices.Equal(got, c.want) {
					t.Errorf("seals\n got %v\nwant %v", got, c.want)
				}
			})
		})
	}
}

// A configuration change nobody woke the scheduler for (another
// server's, read from the ledger) is read within DefaultConfigEvery.
func TestConfigReReadWithoutWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"},
			began: utc("2026-11-20T08:00:00Z")}
		got := seals(t, runFor(t, f, utc("2026-11-23T21:00:00Z"), 40*time.Minute, time.Second, func(s *Scheduler, now func() time.Time) {
			time.Sleep(10 * time.Minute) // 21:10
			f.mu.Lock()
			f.site = ledger.Site{UploadTime: "21:30", Timezone: "UTC"}
			f.mu.Unlock()
		}))
		want := []seal{{"2026-11-23T21:30:00Z", "2026-11-23", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

func TestPauseExpiryFiresAtDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := utc("2026-11-23T14:00:00Z")
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k1", PauseOpenID: "p1", Due: ledger.T(start.Add(90*time.Second + 250*time.Millisecond))})
		// a long poll: the second pause is only seen thanks to Wake
		got := runFor(t, f, start, 10*time.Minute, time.Hour, func(s *Scheduler, now func() time.Time) {
			time.Sleep(10 * time.Second)
			f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k2", PauseOpenID: "p2", Due: ledger.T(now().Add(30 * time.Second))})
			s.Wake()
			s.Wake() // never blocks
		})
		var fired []string
		for _, a := range got {
			tf, ok := a.ev.Data.(ledger.TimerFired)
			if !ok || a.ev.Type != ledger.TypeTimer {
				t.Fatalf("appended %v", a.ev)
			}
			if !a.at.Equal(tf.Due.Time) {
				t.Errorf("timer %s fired at %s, due %s", tf.PauseOpenID, a.at.Format(time.RFC3339Nano), tf.Due)
			}
			fired = append(fired, tf.PauseOpenID)
		}
		if !slices.Equal(fired, []string{"p2", "p1"}) {
			t.Errorf("fired %v, want [p2 p1]", fired)
		}
	})
}

func TestPauseExpiryNotRepeatedWhenIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := utc("2026-11-23T14:00:00Z")
		f := &stickyTimer{fakeLedger: fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}}}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, PauseOpenID: "p1", Due: ledger.T(start.Add(time.Second))})
		base := time.Now()
		s := &Scheduler{Appender: f, View: f, Now: func() time.Time { return start.Add(time.Since(base)) }}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(time.Minute)
		cancel()
		<-done
		if n := len(f.appended()); n != 1 {
			t.Errorf("appended %d timers for one due pause, want 1", n)
		}
	})
}

// stickyTimer is a view whose projection never drops a fired timer.
type stickyTimer struct{ fakeLedger }

func (s *stickyTimer) Append(ctx context.Context, evs ...ledger.Event) ([]ledger.Envelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		s.got = append(s.got, appended{time.Now(), e})
	}
	return nil, nil
}

func TestSchedulerNeedsItsParts(t *testing.T) {
	if err := (&Scheduler{}).Run(t.Context()); err == nil {
		t.Fatal("Run without Appender/View/Now succeeded")
	}
	// Each is required: a context already done tells the refusal from a run.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f := &fakeLedger{}
	for name, s := range map[string]*Scheduler{
		"Appender": {View: f, Now: time.Now},
		"View":     {Appender: f, Now: time.Now},
		"Now":      {Appender: f, View: f},
	} {
		if err := s.Run(ctx); err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("Run without %s: %v, want a refusal", name, err)
		}
	}
}

// TestSchedulerWithRealLedger runs the scheduler against a bbolt store and
// the live projections: it seals the missed day on start, fires a pause
// expiry at its due time, and the projections close the pause with timeout.
func TestSchedulerWithRealLedger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // the bubble's clock: 2000-01-01T00:00:00Z
		store, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		live := projections.NewLive(projections.New())
		store.Subscribe(live.OnCommit)

		doc := `{"site":{"upload_time":"23:00","timezone":"UTC","max_pause_seconds":90},
			"teams":{"sales":{"archive":true,"retention_days":90,"tagged_retention_days":365}},
			"users":{"jdoe":{"name":"Jane Doe","team":"sales","recording":"desktop","extension":"3420"}}}`
		var cfg ledger.Config
		if err := json.Unmarshal([]byte(doc), &cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Normalize()
		val, _ := json.Marshal(cfg)
		ctx := t.Context()
		if _, err := store.Append(ctx,
			ledger.Event{Type: ledger.TypeConfig, Data: ledger.ConfigChange{Part: ledger.PartDocument, Op: ledger.OpPut, Value: val, Source: "file"}},
			ledger.Event{Type: ledger.TypeCallSignal, Data: ledger.CallSignal{CallID: "c-1", Extension: "3420", Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", At: ledger.T(start), Transport: ledger.TransportHTTP}},
			ledger.Event{Type: ledger.TypeCommand, Data: ledger.Command{Command: "pause", SenderID: "jdoe", Transport: ledger.TransportHTTP}},
		); err != nil {
			t.Fatal(err)
		}
		tf, ok := live.NextTimer()
		if !ok || !tf.Due.Equal(start.Add(90*time.Second)) {
			t.Fatalf("next timer %+v %v; want one due at +90s", tf, ok)
		}

		s := &Scheduler{Appender: store, View: live, Now: time.Now}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		time.Sleep(2 * time.Minute)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}

		var got []string
		if err := store.Scan(ctx, 3, func(e ledger.Envelope) error {
			got = append(got, fmt.Sprintf("%s %s +%s", e.Type, e.Data, e.Time.Sub(start)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := []string{
			`day_closed {"day":"1999-12-31","by":"startup"} +0s`,
			fmt.Sprintf(`timer {"timer":"pause_expiry","contact_id":%q,"pause_open_id":%q,"due":"2000-01-01T00:01:30.000Z"} +1m30s`, tf.ContactID, tf.PauseOpenID),
		}
		if !slices.Equal(got, want) {
			t.Fatalf("appended\n got %q\nwant %q", got, want)
		}
		if days := live.SealedDays(); !slices.Equal(days, []string{"1999-12-31"}) {
			t.Errorf("sealed days %v", days)
		}
		if _, ok := live.NextTimer(); ok {
			t.Errorf("the expired pause is still pending")
		}
		rows, err := live.Pauses(context.Background(), ledger.PauseQuery{UserID: "jdoe"})
		if err != nil || len(rows) != 1 || rows[0].EndedBy != ledger.EndedByTimeout {
			t.Errorf("pauses %+v; want one ended by timeout", rows)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzUploadTimes checks, for any upload time text, zone and instant, that
// the previous upload time is at or before now, the next one after it, and
// that they are at most a day (and a DST hour) apart.
func FuzzUploadTimes(f *testing.F) {
	zones := []string{"UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"}
	f.Add("23:00", uint8(1), int64(1772953200)) // 2026-03-08T07:00Z
	f.Add("02:30", uint8(1), int64(1772951400))
	f.Add("00:00", uint8(4), int64(1775354400))
	f.Add("x", uint8(0), int64(0))
	f.Fuzz(func(t *testing.T, hhmm string, zone uint8, unix int64) {
		loc, err := ledger.LoadZone(zones[int(zone)%len(zones)])
		if err != nil {
			t.Skip(err)
		}
		now := time.Unix(unix%(1<<34), 0) // years 1425..2514
		prev, day := PrevUpload(now, hhmm, loc)
		next := NextUpload(now, hhmm, loc)
		if prev.IsZero() || prev.After(now) || !next.After(now) {
			t.Fatalf("%s %s %s: prev %s next %s", hhmm, loc, now.UTC(), prev.UTC(), next.UTC())
		}
		if gap := next.Sub(prev); gap <= 0 || gap > 26*time.Hour {
			t.Fatalf("%s %s %s: uploads %s apart", hhmm, loc, now.UTC(), gap)
		}
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			t.Fatalf("day %q: %v", day, err)
		}
		if y, m, dd := now.In(loc).Date(); d.After(time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("day %s after the local date of now %s", day, now.In(loc))
		}
	})
}
