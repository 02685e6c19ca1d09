package ledger

import (
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// An id after one whose 80 random bits are all ones, in the same
// millisecond, moves to the next millisecond: it is still after it
// (mutation testing: without the move it was random, mostly before). And
// an id is after the last one when the clock stepped back.
func TestIDsIncreaseWhenTheEntropyIsFull(t *testing.T) {
	now := time.UnixMilli(1_764_000_000_000)
	var full ulid.ULID
	if err := full.SetTime(ulid.Timestamp(now)); err != nil {
		t.Fatal(err)
	}
	for i := 6; i < len(full); i++ {
		full[i] = 0xff
	}
	for range 20 {
		g := idGen{last: full}
		id, err := g.next(now)
		if err != nil {
			t.Fatal(err)
		}
		if id.Compare(full) <= 0 || id.Time() != full.Time()+1 {
			t.Fatalf("after %s: %s (time %d, want %d)", full, id, id.Time(), full.Time()+1)
		}
	}
	g := idGen{last: full}
	id, err := g.next(now.Add(-time.Hour))
	if err != nil || id.Compare(full) <= 0 {
		t.Fatalf("with the clock an hour back: %s after %s (%v)", id, full, err)
	}
}
