package projections

import (
	"fmt"
	"testing"
)

// TestSealedDaysIsTheCallersCopy: the manifest outbox sorts the list
// SealedDays returns, from its own goroutine; what a caller does to the
// list leaves the state's seal order, and its last seal, as they were.
func TestSealedDaysIsTheCallersCopy(t *testing.T) {
	g, _ := cooledBeforeSeal(t)
	s := fold(t, g.out, false)
	days := s.SealedDays()
	if fmt.Sprint(days) != "[2026-11-23 2026-11-24]" {
		t.Fatalf("sealed days %v", days)
	}
	days[0], days[1] = "x", "y"
	if again := s.SealedDays(); fmt.Sprint(again) != "[2026-11-23 2026-11-24]" {
		t.Errorf("after the caller changed its list, sealed days %v", again)
	}
	if last, _ := s.LastSeal(); last != "2026-11-24" {
		t.Errorf("after the caller changed its list, last seal %s", last)
	}
}

// TestEarliestPendingCountsCooledContactsFromTheirStart: the seal
// schedule asks for the earliest contact closed since the last seal.
// Contacts cooled out of memory before the seal count from their start
// (earlier than their end, which the cold store does not index), even when
// contacts closed later are still in memory; once the day is sealed, none
// is pending, whatever the cold store holds.
func TestEarliestPendingCountsCooledContactsFromTheirStart(t *testing.T) {
	g, seal := cooledBeforeSeal(t)
	s := New()
	s.coolN = 2
	foldInto(t, &envGen{tb: t, out: g.out[:seal]}, 0, s)
	if len(s.cold) == 0 || len(s.book.Pending) == 0 {
		t.Fatalf("%d cold sections, %d contacts pending in memory: want both", len(s.cold), len(s.book.Pending))
	}
	first := g.out[1].Time // the ringing of the day's first call, cooled
	if at, ok := s.EarliestPending(); !ok || !at.Equal(first.Time) {
		t.Errorf("before the seal: %v (%v), want the first call's start %v", at, ok, first)
	}
	foldInto(t, &envGen{tb: t, out: g.out[:seal+1]}, seal, s)
	if at, ok := s.EarliestPending(); ok {
		t.Errorf("after the seal: %v pending, want none", at)
	}
}
