package projections

import (
	"bytes"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// A manifest's times are written digit by digit from the Unix
// milliseconds (appendTime), not by time.Format: every day of a leap
// cycle (February's days and the 29th among them), at its first and last
// millisecond, and the milliseconds either side of 1970, come out as
// ledger.Time writes them.
func TestManifestTimesAreTheLedgersOnEveryDayOfALeapCycle(t *testing.T) {
	check := func(tm time.Time) {
		t.Helper()
		lt := ledger.T(tm)
		want, err := lt.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTime(nil, lt); !bytes.Equal(got, want) {
			t.Fatalf("%s written %s, want %s", tm.Format(time.RFC3339Nano), got, want)
		}
	}
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := 0; d < 4*366; d++ {
		check(day.AddDate(0, 0, d))
		check(day.AddDate(0, 0, d+1).Add(-time.Millisecond))
	}
	for _, ms := range []int64{-86_400_001, -1, 1, 86_400_000} {
		check(time.UnixMilli(ms))
	}
}
