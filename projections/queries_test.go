package projections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// TestEachPauseRefusesAnUnorderedLog: a ledger whose event times go back
// (not one the ledger writes) leaves the pause log out of start order.
// Pauses still answers sorted; EachPause stops with ledger.ErrUnordered before
// its callback sees the row that breaks the order.
func TestEachPauseRefusesAnUnorderedLog(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	pause := func(u int, step time.Duration) {
		id, ext := fmt.Sprintf("c-%d", u), fmt.Sprintf("%d", 3000+u)
		g.add(ledger.TypeCallSignal, step, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001"})
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered})
		g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "pause", SenderID: fmt.Sprintf("u%d", u), Transport: "finesse"})
	}
	pause(0, time.Minute)
	pause(1, -time.Hour) // an hour back
	s := New()
	for i := range g.out {
		if _, err := s.Apply(&g.out[i]); err != nil {
			t.Fatal(err)
		}
	}
	rows := pausesOfSorted(t, s)
	if len(rows) != 2 || rows[0].UserID != "u1" || rows[1].UserID != "u0" {
		t.Fatalf("Pauses: %+v, want u1's row (the earlier start) first", rows)
	}
	var seen []string
	err := s.EachPause(context.Background(), ledger.PauseQuery{}, func(p *ledger.PauseRow) error {
		seen = append(seen, p.UserID)
		return nil
	})
	if !errors.Is(err, ledger.ErrUnordered) || len(seen) != 1 || seen[0] != "u0" {
		t.Errorf("EachPause: %v after %v, want ErrUnordered after u0's row alone", err, seen)
	}
}

// pausesOfSorted is Pauses of everything.
func pausesOfSorted(t *testing.T, s *State) []ledger.PauseRow {
	t.Helper()
	rows, err := s.Pauses(context.Background(), ledger.PauseQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestEachContactAcrossDays: a call that outlasts a seal is filed under
// the next day, yet starts before the first day's calls. EachContact,
// which hands contacts over as it reads the days, still gives them in
// Contacts' order, that call first.
func TestEachContactAcrossDays(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	call := func(u int, id string) {
		ext := fmt.Sprintf("%d", 3000+u)
		g.add(ledger.TypeCallSignal, time.Minute, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001"})
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered})
	}
	end := func(u int, id string) {
		g.add(ledger.TypeCallSignal, time.Minute, ledger.CallSignal{CallID: id, Extension: fmt.Sprintf("%d", 3000+u), Type: ledger.SignalEnded})
	}
	seal := func(day string) { g.add(ledger.TypeDayClosed, 0, ledger.DayClosed{Day: day, By: ledger.SealSchedule}) }
	call(0, "long") // outlasts the first seal
	for i := range 3 {
		call(1, fmt.Sprintf("short-%d", i))
		end(1, fmt.Sprintf("short-%d", i))
	}
	seal("2027-01-01")
	end(0, "long")
	for i := 3; i < 6; i++ {
		call(1, fmt.Sprintf("short-%d", i))
		end(1, fmt.Sprintf("short-%d", i))
	}
	seal("2027-01-02")
	for u := range 2 { // newer last calls, so that the others can go cold
		call(u, fmt.Sprintf("last-%d", u))
		end(u, fmt.Sprintf("last-%d", u))
	}
	seal("2027-01-03")
	call(2, "open") // in memory
	s := New()
	for i := range g.out {
		if _, err := s.Apply(&g.out[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.cold) < 2 {
		t.Fatalf("%d cold sections, want the days in several", len(s.cold))
	}
	all := contactsOf(t, s, ledger.ContactQuery{}) // checks EachContact against Contacts
	if len(all) != 10 || all[0].CallID != "long" || all[0].Day != "2027-01-02" || all[1].Day != "2027-01-01" {
		t.Fatalf("contacts: %d, first %s of %s then one of %s; want 10, the long call (filed under the 2nd) first",
			len(all), all[0].CallID, all[0].Day, all[1].Day)
	}
	// A callback's error stops it.
	stop := errors.New("enough")
	n := 0
	err := s.EachContact(context.Background(), ledger.ContactQuery{}, func(*ledger.Contact) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Errorf("EachContact: %v after %d, want the callback's error after 3", err, n)
	}
}

// CallCounts counts the active calls, those with no agent apart, and
// the earliest start among them.
func TestCallCounts(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0)) // u0 on 3000 (default extension), u1 on 3001
	s := fold(t, g.out, false)
	if c := s.CallCounts(); c != (CallCounts{}) {
		t.Fatalf("no calls: %+v", c)
	}
	first := ledger.T(g.now.Add(-time.Hour))
	for i, ext := range []string{"3000", "9999", "9998"} {
		at := first
		if i > 0 {
			at = ledger.T(g.now)
		}
		if _, err := s.Apply(g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: ext, Extension: ext, Type: ledger.SignalRinging, Transport: "http", At: at})); err != nil {
			t.Fatal(err)
		}
	}
	if c := s.CallCounts(); c.Active != 3 || c.WithoutAgent != 2 || !c.OldestStart.Equal(first.Time) {
		t.Errorf("three calls, one at u0's extension: %+v", c)
	}
}

// countedSections is a section store that counts the reads of each key.
type countedSections struct {
	memSections
	reads map[string]int
}

func (c *countedSections) Section(ctx context.Context, key string) ([]byte, error) {
	c.reads[key]++
	return c.memSections.Section(ctx, key)
}

// countedRoundTrip is roundTrip through a store that counts the reads of
// each section, which it returns.
func countedRoundTrip(t testing.TB, s *State) (*State, *countedSections) {
	t.Helper()
	store := &countedSections{memSections: memSections{}, reads: map[string]int{}}
	return roundTripVia(t, s, store.memSections, store), store
}

// TestPausesSkipChunksOutsideTheRange: a pause query for a time range
// reads only the sealed days' chunks whose rows can lie in it; the other
// days' history stays unread on disk. A chunk whose last row ends exactly
// at the range's start is read.
func TestPausesSkipChunksOutsideTheRange(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	var starts, ends []time.Time
	pausedCall := func(u int, step time.Duration) {
		id, ext := fmt.Sprintf("c-%d", u), fmt.Sprintf("%d", 3000+u)
		g.add(ledger.TypeCallSignal, step, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001"})
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered})
		starts = append(starts, g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "pause", SenderID: fmt.Sprintf("u%d", u)}).Time.Time)
		ends = append(ends, g.add(ledger.TypeCommand, 30*time.Second, ledger.Command{Command: "resume", SenderID: fmt.Sprintf("u%d", u)}).Time.Time)
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalEnded})
	}
	pausedCall(0, time.Minute)
	g.add(ledger.TypeDayClosed, 17*time.Hour, ledger.DayClosed{Day: "2026-11-23", By: ledger.SealSchedule})
	pausedCall(1, 9*time.Hour)
	g.add(ledger.TypeDayClosed, 17*time.Hour, ledger.DayClosed{Day: "2026-11-24", By: ledger.SealSchedule})
	s := New()
	for i := range g.out {
		if _, err := s.Apply(&g.out[i]); err != nil {
			t.Fatal(err)
		}
	}
	s, store := countedRoundTrip(t, s)
	if len(s.pauses.chunks) != 2 {
		t.Fatalf("%d chunks, want one per sealed day", len(s.pauses.chunks))
	}
	for _, tc := range []struct {
		name  string
		q     ledger.PauseQuery
		rows  int
		reads int
	}{
		{"all", ledger.PauseQuery{}, 2, 2},
		{"the second day", ledger.PauseQuery{From: ledger.T(ends[0].Add(time.Millisecond))}, 1, 1},
		{"the first day", ledger.PauseQuery{To: ledger.T(starts[1])}, 1, 1},
		{"from the first day's last end", ledger.PauseQuery{From: ledger.T(ends[0])}, 1, 2},
	} {
		clear(store.reads)
		rows, err := s.Pauses(context.Background(), tc.q)
		reads := 0
		for _, n := range store.reads {
			reads += n
		}
		if err != nil || len(rows) != tc.rows || reads != tc.reads {
			t.Errorf("%s: %d rows, %d sections read (%v), %v; want %d rows, %d read", tc.name, len(rows), reads, store.reads, err, tc.rows, tc.reads)
		}
	}
}
