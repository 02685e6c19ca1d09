package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// More pause expiries due before the upload time than one round appends
// (maxTimersPerRound) all go in before the seal: the round keeps firing
// them until none is due by the upload time, and only then seals.
func TestManyPauseExpiriesBeforeTheStartupSeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}}
		var want []string
		for i := range maxTimersPerRound + 6 {
			id := fmt.Sprintf("p%02d", i)
			f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k" + id, PauseOpenID: id,
				Due: ledger.T(utc("2026-11-23T22:00:00Z").Add(time.Duration(i) * time.Second))})
			want = append(want, id)
		}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k-after", PauseOpenID: "after", Due: ledger.T(utc("2026-11-23T23:00:01Z"))})
		want = append(want, "2026-11-23 startup", "after")
		order := appendOrder(runFor(t, f, utc("2026-11-24T08:15:00Z"), time.Minute, 0, nil))
		if !slices.Equal(order, want) {
			t.Errorf("appended\n got %v\nwant %v", order, want)
		}
	})
}

// A pause expiry that keeps failing is logged once every expiryLogEvery,
// not once a try (it is tried every second).
func TestFailedExpiryLogIsPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := utc("2026-11-23T14:00:00Z")
		f := &fakeLedger{site: ledger.Site{UploadTime: "23:00", Timezone: "UTC"}, sealed: []string{"2026-11-22"}, fail: 1 << 30}
		f.addTimer(ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: "k1", PauseOpenID: "p1", Due: ledger.T(start.Add(time.Second))})
		logs := new(ledgertest.Buffer)
		base := time.Now()
		s := &Scheduler{Appender: f, View: f, Now: func() time.Time { return start.Add(time.Since(base)) },
			Logger: slog.New(slog.NewTextHandler(logs, nil))}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(25 * time.Second) // tries from +1 s to +25 s
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		f.mu.Lock()
		tries := f.tries
		f.mu.Unlock()
		// logged at the first try, then 10 and 20 s later
		if n := strings.Count(logs.String(), "pause expiry failed"); tries < 20 || n != 3 {
			t.Errorf("%d log lines for %d failed tries in 25 s, want 3 (one every %s)", n, tries, expiryLogEvery)
		}
	})
}
