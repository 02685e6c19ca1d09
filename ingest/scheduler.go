package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/recledger/recledger/ledger"
)

// SealView is what the Scheduler reads from the live projections.
type SealView interface {
	// Site is the site's settings (upload time, time zone), normalized.
	Site() ledger.Site
	// Location is the site's time zone as the projections date days with
	// it, so that a day is sealed where the fold ends it.
	Location() *time.Location
	// LastSeal is the last sealed day and when it was sealed ("" when none).
	LastSeal() (day string, at ledger.Time)
	SealedDays() []string
	// NextTimer is the earliest pending pause expiry.
	NextTimer() (ledger.TimerFired, bool)
	// Seq is the seq of the last event folded (0 for an empty ledger).
	Seq() uint64
}

// Scheduler defaults.
const (
	// DefaultSchedulerPoll is how often the scheduler looks for due pause
	// expiries and upload times when not woken.
	DefaultSchedulerPoll = time.Second
	// DefaultConfigEvery is how often it re-reads the configuration.
	DefaultConfigEvery = time.Minute
	// maxTimersPerRound bounds the expiries appended in one round, so that a
	// projection that keeps reporting a due timer cannot make it spin.
	maxTimersPerRound = 64
	// retryEvery is the least wait after an append that failed: the
	// expiry stays due, and without it the scheduler tried again at once
	// (a full-disk walk: 3,000 failed appends and log lines a second).
	retryEvery = time.Second
	// expiryLogEvery paces the log of failed pause expiries.
	expiryLogEvery = 10 * time.Second
)

// Log attribute keys.
const (
	schedKeyDay   = "day"
	schedKeyBy    = "by"
	schedKeyPause = "pause_open_id"
	schedKeyErr   = "err"
)

// Scheduler is the server's own event source: it seals each day at the
// site's upload time (RULES.md "End of day and manifests") and fires pause
// expiries (max_pause_seconds), by appending day_closed and timer events.
// Both are ordinary ledger events, so replay reproduces their effects.
//
// Appender, View and Now are required; Logger, Poll and ConfigEvery have
// defaults. Run is the owner goroutine; Wake may be called from anywhere.
type Scheduler struct {
	Appender Appender
	View     SealView
	Now      func() time.Time
	Logger   *slog.Logger
	// Began tells when the ledger's first event was appended (ok false
	// when it cannot tell). A start after an upload time the ledger did
	// not yet exist at seals nothing. nil: the ledger is taken to be older.
	Began       func(context.Context) (time.Time, bool)
	Poll        time.Duration // at most this long between looks; DefaultSchedulerPoll when 0
	ConfigEvery time.Duration // configuration re-read interval; DefaultConfigEvery when 0

	once      sync.Once
	wake      chan struct{}
	expiryLog rate.Sometimes // paces "pause expiry failed"
}

func (s *Scheduler) init() {
	s.once.Do(func() {
		s.wake = make(chan struct{}, 1)
		s.expiryLog.Interval = expiryLogEvery
	})
}

// Wake makes Run look again now (after a commit that may have opened a
// pause, or a configuration change). It never blocks.
func (s *Scheduler) Wake() {
	s.init()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sealReq is a seal decided but not yet appended.
// sealReq is a seal to append: day, by whom, and the upload time that
// closed it.
type sealReq struct {
	day, by string
	at      time.Time
}

// Run seals days and fires pause expiries until ctx is done; it returns
// ctx's error. Append failures are logged and retried on the next round.
//
// On start, if the most recent upload time at or before now belongs to a
// day that is not sealed and is later than the last sealed day, that day is
// sealed at once (by "startup"). Only that day: the contacts of any earlier
// missed day are pending too and go into its manifest. A fresh site (an
// empty ledger, or one begun after that upload time and never sealed) is
// not sealed on start: it was not down at that upload time, it did not
// exist, and its contacts wait for the next one.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Appender == nil || s.View == nil || s.Now == nil {
		return errors.New("scheduler: Appender, View and Now are required")
	}
	s.init()
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poll, cfgEvery := s.Poll, s.ConfigEvery
	if poll <= 0 {
		poll = DefaultSchedulerPoll
	}
	if cfgEvery <= 0 {
		cfgEvery = DefaultConfigEvery
	}
	var (
		site      ledger.Site
		loc       *time.Location
		cfgAt     time.Time
		last      time.Time // when the previous round looked
		first     = true
		pending   *sealReq
		lastFired ledger.TimerFired
		woken     bool
	)
	for {
		now := s.Now()
		moved := false // the upload time or zone changed since the last look
		if loc == nil || woken || now.Sub(cfgAt) >= cfgEvery || now.Before(cfgAt) {
			old := site
			site, loc = s.site()
			cfgAt = now
			moved = !first && (site.UploadTime != old.UploadTime || site.Timezone != old.Timezone)
		}
		prevAt, prevDay := PrevUpload(now, site.UploadTime, loc)
		switch {
		case first:
			// A fresh site (nothing in the ledger, never sealed) was not
			// "down at upload time": it has nothing to seal.
			if s.missed(ctx, prevAt) && s.sealable(prevDay) {
				pending = &sealReq{prevDay, ledger.SealStartup, prevAt}
			}
		case prevAt.After(last):
			if s.sealable(prevDay) {
				pending = &sealReq{prevDay, ledger.SealSchedule, prevAt}
			}
		case moved:
			// Moved to a time already past today: that day's upload time
			// has come, and it is sealed now, as a restart would seal it;
			// waiting for tomorrow's would put its contacts in the next
			// day's manifest.
			if s.missed(ctx, prevAt) && s.sealable(prevDay) {
				pending = &sealReq{prevDay, ledger.SealSchedule, prevAt}
			}
		}
		first, last = false, now
		failed := false // an append failed this round: wait retryEvery at least
		if pending != nil {
			// The pauses that expired before the upload time expire before
			// the seal, in the ledger too: after a downtime they are due
			// together, and a replay up to a time between the two would
			// show the day sealed with such a pause open. An expiry that
			// could not be appended holds the seal back (a walk's disk,
			// freed between the two, let the seal in first).
			for {
				n, err := s.fireTimers(ctx, log, pending.at, &lastFired)
				if err != nil {
					failed = true
				}
				if err != nil || n < maxTimersPerRound {
					break
				}
			}
			// With an expiry not appended, the seal waits for the next
			// round: it is sealed once the expiries before it are in.
			if !failed {
				if err := s.sealPending(ctx, log, pending); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					failed = true
				} else {
					pending = nil
				}
			}
		}
		if !failed {
			if _, err := s.fireTimers(ctx, log, now, &lastFired); err != nil {
				failed = true
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}

		wait := poll
		if d := NextUpload(now, site.UploadTime, loc).Sub(now); d < wait {
			wait = d
		}
		if tf, ok := s.View.NextTimer(); ok && !sameTimer(tf, lastFired) {
			if d := tf.Due.Sub(now); d < wait {
				wait = d
			}
		}
		if wait < 0 {
			wait = 0
		}
		if failed {
			wait = max(wait, retryEvery)
		}
		t := time.NewTimer(wait)
		woken = false
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.wake:
			t.Stop()
			woken = true
		case <-t.C:
		}
	}
}

// sealPending seals the day of p unless it can no longer be sealed (done
// by hand meanwhile); an error leaves it pending, logged unless ctx ended.
func (s *Scheduler) sealPending(ctx context.Context, log *slog.Logger, p *sealReq) error {
	if !s.sealable(p.day) {
		return nil
	}
	if err := s.seal(ctx, *p); err != nil {
		if ctx.Err() == nil {
			log.Error("seal failed; retrying", schedKeyDay, p.day, schedKeyBy, p.by, schedKeyErr, err)
		}
		return err
	}
	log.Info("day sealed", schedKeyDay, p.day, schedKeyBy, p.by)
	return nil
}

// missed reports whether the site was down at the upload time at: its
// ledger held events by then. A day sealed before is no proof of that:
// an administrator may seal past days by hand on a ledger begun today,
// and sealing yesterday at a restart would then file today's contacts
// under it.
func (s *Scheduler) missed(ctx context.Context, at time.Time) bool {
	if s.View.Seq() == 0 {
		return false
	}
	if s.Began == nil {
		return true
	}
	began, ok := s.Began(ctx)
	return !ok || !began.After(at)
}

// site reads the site settings and the zone the projections date days
// in. A zone that cannot be loaded is UTC there (configuration validation
// refuses one), and so here.
func (s *Scheduler) site() (ledger.Site, *time.Location) {
	site := s.View.Site()
	site.Normalize()
	loc := s.View.Location()
	if loc == nil {
		loc = time.UTC
	}
	return site, loc
}

// sealable reports whether day is not sealed and later than the last sealed day.
func (s *Scheduler) sealable(day string) bool {
	if day == "" {
		return false
	}
	if last, _ := s.View.LastSeal(); last != "" && day <= last {
		return false
	}
	return !slices.Contains(s.View.SealedDays(), day)
}

func (s *Scheduler) seal(ctx context.Context, r sealReq) error {
	_, err := s.Appender.Append(ctx, ledger.Event{Type: ledger.TypeDayClosed, Data: ledger.DayClosed{Day: r.day, By: r.by}})
	if err != nil {
		return fmt.Errorf("seal %s: %w", r.day, err)
	}
	return nil
}

// fireTimers appends every pause expiry due at now. The fold ignores an
// expiry for a pause already closed, so racing a resume is harmless.
// lastFired guards against appending the same expiry twice in a row when
// the view still reports it. It returns how many it appended, at most
// maxTimersPerRound, and the error of an append that failed (logged at
// most every expiryLogEvery).
func (s *Scheduler) fireTimers(ctx context.Context, log *slog.Logger, now time.Time, lastFired *ledger.TimerFired) (int, error) {
	for n := range maxTimersPerRound {
		tf, ok := s.View.NextTimer()
		if !ok || tf.Due.After(now) || sameTimer(tf, *lastFired) {
			return n, nil
		}
		if _, err := s.Appender.Append(ctx, ledger.Event{Type: ledger.TypeTimer, Data: tf}); err != nil {
			if ctx.Err() == nil {
				s.expiryLog.Do(func() {
					log.Error("pause expiry failed; retrying every second (repeats are logged every 10 s)", schedKeyPause, tf.PauseOpenID, schedKeyErr, err)
				})
			}
			return n, err
		}
		*lastFired = tf
	}
	return maxTimersPerRound, nil
}

func sameTimer(a, b ledger.TimerFired) bool {
	return a.Timer == b.Timer && a.ContactID == b.ContactID && a.PauseOpenID == b.PauseOpenID && a.Due.Equal(b.Due.Time)
}

// parseHHMM reads "HH:MM"; anything else is the default 23:00.
func parseHHMM(s string) (hh, mm int) {
	if _, err := fmt.Sscanf(s, "%d:%d", &hh, &mm); err != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 23, 0
	}
	return hh, mm
}

// PrevUpload returns the most recent upload time at or before now, for the
// site's upload time "HH:MM" in loc, and the day it seals: the local date it
// was computed for (YYYY-MM-DD).
func PrevUpload(now time.Time, hhmm string, loc *time.Location) (time.Time, string) {
	hh, mm := parseHHMM(hhmm)
	y, m, d := now.In(loc).Date()
	for i := 0; i < 3; i++ {
		day := time.Date(y, m, d-i, 12, 0, 0, 0, time.UTC)
		if t := ledger.UploadAt(day.Year(), day.Month(), day.Day(), hh, mm, loc); !t.After(now) {
			return t, day.Format(time.DateOnly)
		}
	}
	return time.Time{}, ""
}

// NextUpload returns the first upload time after now.
func NextUpload(now time.Time, hhmm string, loc *time.Location) time.Time {
	hh, mm := parseHHMM(hhmm)
	y, m, d := now.In(loc).Date()
	for i := -1; i < 3; i++ {
		day := time.Date(y, m, d+i, 12, 0, 0, 0, time.UTC)
		if t := ledger.UploadAt(day.Year(), day.Month(), day.Day(), hh, mm, loc); t.After(now) {
			return t
		}
	}
	return now.Add(24 * time.Hour)
}
