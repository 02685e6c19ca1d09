package ingest

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/recledger/recledger/ledger"
)

// A seal that could not be appended holds back the pause expiries due
// after its upload time too: appended first, they would close in the
// ledger before the day they follow was sealed.
func TestFailedSealHoldsBackLaterExpiries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}, fail: 1}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k2", PauseOpenID: "after", Due: ledger.T(utc("2026-11-23T23:00:01Z"))})
		// started after a downtime: the seal (which fails once) and the expiry are both due
		got := runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Minute, 0, nil)
		if order, want := appendOrder(got), []string{"2026-11-23 startup", "after"}; !slices.Equal(order, want) {
			t.Errorf("appended %v, want %v", order, want)
		}
		// tried again a second later, not at once
		if s := seals(t, got); len(s) != 1 || s[0].at != "2026-11-24T08:15:01Z" {
			t.Errorf("seals %v, want one at 08:15:01", s)
		}
	})
}

// The upload time between two polls is not waited past: a scheduler
// that looks every hour still seals at 23:00 sharp.
func TestSealAtUploadTimeBetweenPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-23"}}
		got := seals(t, runFor(t, f, utc("2026-11-24T08:15:00Z"), 16*time.Hour, time.Hour, nil))
		want := []seal{{"2026-11-24T23:00:00Z", "2026-11-24", ledger.SealSchedule}}
		if !slices.Equal(got, want) {
			t.Errorf("seals\n got %v\nwant %v", got, want)
		}
	})
}

// A day before the last sealed day is not sealed on start, even when it
// was missed: today was sealed by hand before the restart, and the fold
// refuses a seal of a day before the last sealed one.
func TestNoSealOfADayBeforeTheLastSealed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22", "2026-11-24"}}
		got := seals(t, runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Hour, 0, nil))
		if len(got) != 0 {
			t.Errorf("sealed %v; want nothing", got)
		}
	})
}

// A seal the scheduler could not append is not appended once it can be,
// when the day was sealed meanwhile (by hand, POST /v1/manifests/{day}/close):
// the ledger would hold two seals of one day.
func TestAPendingSealMadeByHandMeanwhileIsNotAppendedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// started after a downtime: the missed seal fails at 08:15:00 and 08:15:01
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}, fail: 2}
		got := runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Minute, 0, func(*Scheduler, func() time.Time) {
			time.Sleep(1500 * time.Millisecond)
			f.mu.Lock()
			f.sealed = append(f.sealed, "2026-11-23") // the administrator's seal
			f.mu.Unlock()
		})
		if f.tries < 2 {
			t.Fatalf("%d appends tried: the seal did not wait for the ledger", f.tries)
		}
		if s := seals(t, got); len(s) != 0 {
			t.Errorf("seals appended %v, want none: the day was sealed by hand", s)
		}
	})
}
