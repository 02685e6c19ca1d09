package projections

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/recledger/recledger/ledger"
)

// lastCallsPending has each of four users make one call, all of them
// still pending and their agents' last calls (a tag may still change
// them: none cools), then u0 a second one: only u0's first is free to
// cool.
func lastCallsPending(t *testing.T) *envGen {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	for u := range 4 {
		g.call(u, fmt.Sprint("first-", u))
	}
	g.call(0, "second-0")
	return g
}

// A cooling of the day not sealed yet that leaves contacts pending (last
// calls, here) waits for coolN more closes, not for coolN pending: else
// the fold would cool at every close, a contact per section.
func TestACoolingThatLeavesContactsWaitsForCoolNMoreCloses(t *testing.T) {
	g := lastCallsPending(t)
	s := New()
	s.coolN = 2 // tried at the second close and the fourth, cooling nothing
	n := foldInto(t, g, 0, s)
	if len(s.book.Pending) != 5 {
		t.Fatalf("%d contacts pending, want the 5 closed", len(s.book.Pending))
	}
	if len(s.cold) != 0 {
		t.Fatalf("%d sections cooled at the fifth close, one after the last cooling: want none", len(s.cold))
	}
	g.call(1, "second-1")
	foldInto(t, g, n, s)
	if len(s.cold) != 1 || len(coldRecordsOf(t, s.cold[0].Sec.data)) != 2 {
		t.Fatalf("%d sections cooled at the sixth close, want one of u0's and u1's first calls", len(s.cold))
	}
}

// A cooling copies the manifest entries still pending out of the blocks
// they were cut from: the blocks, which held the entries it cooled too,
// go.
func TestACoolingLetsGoOfTheBlocksOfItsEntries(t *testing.T) {
	g := lastCallsPending(t)
	s := New()
	s.coolN = 2
	n := foldInto(t, g, 0, s)
	var blocks []weak.Pointer[byte]
	for _, p := range s.book.Pending {
		if len(p.Entry) > 0 {
			blocks = append(blocks, weak.Make(&p.Entry[0]))
		}
	}
	if len(blocks) < 2 {
		t.Fatalf("%d pending entries: the test checks nothing", len(blocks))
	}
	g.call(1, "second-1") // cools u0's and u1's first calls, the others stay
	foldInto(t, g, n, s)
	if len(s.cold) != 1 || len(s.book.Pending) != 4 {
		t.Fatalf("%d sections cooled, %d contacts pending: want one, and four", len(s.cold), len(s.book.Pending))
	}
	runtime.GC()
	for i, b := range blocks {
		if b.Value() != nil {
			t.Errorf("the block of pending entry %d is still reachable after the cooling", i)
		}
	}
	runtime.KeepAlive(s) // all the state holds is reachable
}

// A closed contact with a pause row after one still open (another call's)
// waits for a later cooling: encoded up to the open row only, its last
// row would be in no chunk, and queries of it would fail. The fold
// answers like one that keeps every contact in memory throughout.
func TestAContactPausedAfterAnOpenPauseWaitsToCool(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	g.answered(1, "x", time.Minute)
	g.command(1, "pause") // row 0
	g.command(1, "resume")
	g.answered(0, "y", time.Minute)
	g.command(0, "pause") // row 1, open
	g.command(1, "pause") // row 2
	g.command(1, "resume")
	g.hungUp(1, "x")
	g.call(1, "x2")        // x is no longer u1's last call: the cooling at this second close leaves it
	g.command(0, "resume") // row 1 closes
	g.hungUp(0, "y")
	g.call(1, "x3") // the cooling at this fourth close takes x
	cold, warm := New(), New()
	cold.coolN, warm.noCold = 2, true
	for i := range g.out {
		for _, s := range []*State{cold, warm} {
			if _, err := s.Apply(&g.out[i]); err != nil {
				t.Fatal(err)
			}
		}
		sameContacts(t, 0, g.out[i].Seq, cold, warm)
	}
	var x string
	for _, c := range contactsOf(t, warm, ledger.ContactQuery{}) {
		if c.CallID == "x" {
			x = c.ContactID
		}
	}
	if len(cold.contacts) != len(warm.contacts)-2 || cold.contacts[x] != nil {
		t.Fatalf("%d of %d contacts in memory: want x and x2 cooled", len(cold.contacts), len(warm.contacts))
	}
	if c, err := cold.Contact(context.Background(), x); err != nil || len(c.Pauses) != 2 {
		t.Fatalf("cooled x: %+v, %v; want its two pauses", c, err)
	}
}

// sizedOnce makes room, before a section's record coldSample, for the
// records left at the average size of those written; once only, and only
// for a section of many records.
func TestSizedOnceMakesRoomForTheRecordsLeft(t *testing.T) {
	b := make([]byte, coldSample*10) // coldSample records of 10 bytes
	if got := sizedOnce(b, coldSample, 1000); cap(got)-len(got) < 10*(1000-coldSample) {
		t.Errorf("room for %d bytes, want the %d records left", cap(got)-len(got), 1000-coldSample)
	}
	for _, c := range []struct{ i, n int }{{coldSample - 1, 1000}, {coldSample + 1, 1000}, {coldSample, 2 * coldSample}} {
		if got := sizedOnce(b, c.i, c.n); cap(got) != cap(b) {
			t.Errorf("record %d of %d: grown", c.i, c.n)
		}
	}
}

// A seal cools, besides its day's contacts, those of earlier days no rule
// needs any more (a last call replaced since): one section per day, even
// when the ids of the two days interleave (a call open across the earlier
// seal). Two sections of a day would share a key, and the store would
// keep one.
func TestASealCoolsEachDayIntoOneSection(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	g.answered(0, "across", time.Minute) // open across the first seal, closed on the second day
	g.call(1, "kept")                    // u1's last call at the first seal: kept in memory
	g.add(ledger.TypeDayClosed, 16*time.Hour, ledger.DayClosed{Day: "2026-11-23", By: ledger.SealSchedule})
	g.hungUp(0, "across")
	g.call(0, "after-across") // across is no longer u0's last call
	g.call(1, "after-kept")   // nor kept u1's
	g.call(2, "z")
	g.call(2, "after-z")
	g.add(ledger.TypeDayClosed, 24*time.Hour, ledger.DayClosed{Day: "2026-11-24", By: ledger.SealSchedule})
	cold, warm := New(), New()
	warm.noCold = true
	foldInto(t, g, 0, cold, warm)
	sections, contacts := map[string]int{}, map[string]int{} // by day
	for _, d := range cold.cold {
		sections[d.Day]++
		contacts[d.Day] += len(coldRecordsOf(t, d.Sec.data))
	}
	if want := map[string]int{"2026-11-23": 1, "2026-11-24": 1}; !maps.Equal(sections, want) {
		t.Errorf("cold sections by day: %v, want %v", sections, want)
	}
	if want := map[string]int{"2026-11-23": 1, "2026-11-24": 2}; !maps.Equal(contacts, want) {
		t.Fatalf("cold contacts by day: %v, want kept of the first day, across and z of the second", contacts)
	}
	sameContacts(t, 0, cold.Seq(), roundTrip(t, cold, memSections{}), warm)
}
