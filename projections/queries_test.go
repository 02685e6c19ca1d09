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
	wantU1FirstAndUnordered(t, s, "the earlier start")
}

// wantU1FirstAndUnordered checks a state whose pause log holds u0's
// pause before u1's, which goes first in the pauses' order (why): Pauses
// answers u1's first, and EachPause stops with ledger.ErrUnordered after
// u0's row alone.
func wantU1FirstAndUnordered(t *testing.T, s *State, why string) {
	t.Helper()
	rows := pausesOfSorted(t, s)
	if len(rows) != 2 || rows[0].UserID != "u1" || rows[1].UserID != "u0" {
		t.Fatalf("Pauses: %+v, want u1's row (%s) first", rows, why)
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
// at the range's start is read. EachPause stops at its callback's error
// among those rows, and a query cancelled as it reads them ends cancelled.
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
	// A callback's error stops EachPause among the sealed days' rows.
	stop := errors.New("enough")
	n := 0
	err := s.EachPause(context.Background(), ledger.PauseQuery{}, func(*ledger.PauseRow) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("EachPause: %v after %d rows, want the callback's error after 1", err, n)
	}
	// A query whose client went away ends cancelled, not with the sealed
	// history called corrupt.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Pauses(ctx, ledger.PauseQuery{}); !errors.Is(err, context.Canceled) || errors.Is(err, ledger.ErrCorrupt) {
		t.Errorf("Pauses, cancelled: %v, want context.Canceled", err)
	}
}

// TestLocationIsTheSitesZone: the read API dates a day's contacts in the
// zone Location answers; it is UTC until a zone is configured, the
// configured zone once it is, and UTC again for a zone that cannot be
// loaded.
func TestLocationIsTheSitesZone(t *testing.T) {
	s := New()
	if loc := s.Location(); loc != time.UTC {
		t.Fatalf("a new state: %v, want UTC", loc)
	}
	g := newEnvGen(t)
	for _, tc := range []struct{ zone, want string }{
		{"America/Chicago", "America/Chicago"},
		{"Asia/Kolkata", "Asia/Kolkata"},
		{"Nowhere/Atlantis", "UTC"},
	} {
		g.config(cfgTZ(tc.zone))
		if _, err := s.Apply(&g.out[len(g.out)-1]); err != nil {
			t.Fatal(err)
		}
		if got := s.Location().String(); got != tc.want {
			t.Errorf("site zone %s: Location %s, want %s", tc.zone, got, tc.want)
		}
	}
}

// TestUnknownIDsAreNotFound: a query for a user, a contact or a day the
// ledger does not know answers an error wrapping ledger.ErrNotFound, which
// the read API turns into a 404 rather than a server error.
func TestUnknownIDsAreNotFound(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0))
	s := fold(t, g.out, false)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"agent", func() error { _, err := s.Agent("nobody"); return err }},
		{"user config", func() error { _, err := s.UserConfig("nobody"); return err }},
		{"contact", func() error { _, err := s.Contact(ctx, "01JDB3A1C4E6G8J0K2M4N6P8Q0"); return err }},
		{"manifest", func() error { _, err := s.Manifest(ctx, "2026-11-23"); return err }},
	} {
		if err := tc.err(); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
		}
	}
}

// TestOpenContactsOfTeamAreSorted: deleting a team is refused while it has
// open contacts (its workflow decides them when they close), the answer
// naming the first few. OpenContactsOfTeam lists them sorted by id however
// many calls are active, and only the team's: the other teams' open
// contacts and the team's closed ones are left out.
func TestOpenContactsOfTeamAreSorted(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(40, 0)) // u0, u4, … u36 in team a
	var want []string
	for u := range 40 {
		id := fmt.Sprintf("c-%d", u)
		g.answered(u, id, time.Second)
		if u%4 == 0 {
			want = append(want, g.out[len(g.out)-2].ID.String()) // the ringing opens the contact
		}
	}
	g.call(4, "closed") // u4's, in team a, closed
	s := fold(t, g.out, false)
	got := s.OpenContactsOfTeam("a")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("open contacts of team a:\n%v\nwant\n%v", got, want)
	}
}

// TestPausesOfOneInstantAreInTheOrderOfTheirIDs: pauses opened at the same
// instant are ordered by the id of the event that opened them. A ledger
// whose ids go back within an instant (not one the ledger writes) leaves
// the pause log out of that order: Pauses still answers sorted, and
// EachPause stops with ledger.ErrUnordered.
func TestPausesOfOneInstantAreInTheOrderOfTheirIDs(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	g.answered(0, "c-0", time.Minute)
	g.answered(1, "c-1", time.Minute)
	g.command(0, "pause")
	g.add(ledger.TypeCommand, 0, ledger.Command{Command: "pause", SenderID: "u1"}) // the same instant
	n := len(g.out)
	g.out[n-2].ID, g.out[n-1].ID = g.out[n-1].ID, g.out[n-2].ID // u1's pause has the smaller id
	wantU1FirstAndUnordered(t, fold(t, g.out, false), "the smaller id")
}
