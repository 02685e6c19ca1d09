package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// coldLookups folds a history whose cold sections hold overlapping id
// ranges, cooled on the day not sealed yet (every second close): c/1 is a
// and c of u0 (b was u1's last call then), c/2 is b alone, c/3 is h; a
// seal then gives them their day, and c/4 is j of the next day, not
// sealed yet. It returns the state read back from a checkpoint through a
// store that counts its reads, and each call's contact id.
func coldLookups(t *testing.T) (*State, *countedSections, map[string]string) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	g.call(0, "a")
	g.call(1, "b")
	g.call(0, "c")
	g.call(0, "e") // c/1: a, c
	g.call(1, "f")
	g.call(2, "g") // c/2: b
	g.call(3, "h")
	g.call(3, "i") // c/3: h
	g.add(ledger.TypeDayClosed, 16*time.Hour, ledger.DayClosed{Day: "2026-11-23", By: ledger.SealSchedule})
	g.call(0, "j")
	g.call(0, "k") // c/4: j
	s := New()
	s.coolN = 2
	foldInto(t, g, 0, s)
	ids := map[string]string{}
	for _, c := range contactsOf(t, s, ledger.ContactQuery{}) {
		ids[c.CallID] = c.ContactID
	}
	var got []string
	for _, d := range s.cold {
		var cs []string
		for _, r := range coldRecordsOf(t, d.Sec.data) {
			ct, _ := readCold(r)
			cs = append(cs, ct.V.CallID)
		}
		got = append(got, fmt.Sprint(d.Day, cs))
	}
	if want := []string{"2026-11-23[a c]", "2026-11-23[b]", "2026-11-23[h]", "[j]"}; !slices.Equal(got, want) {
		t.Fatalf("cold sections %q, want %q", got, want)
	}
	s, store := countedRoundTrip(t, s)
	return s, store, ids
}

// A contact no longer in memory is looked up newest section first, and
// only in the sections whose id range holds its id: one read each, here.
func TestAContactLookupReadsOnlyTheSectionThatHoldsIt(t *testing.T) {
	s, store, ids := coldLookups(t)
	for call, sec := range map[string]int{"a": 0, "b": 1, "c": 0, "h": 2, "j": 3} {
		clear(store.reads)
		c, err := s.Contact(context.Background(), ids[call])
		if err != nil || c.CallID != call {
			t.Errorf("contact of call %s: %+v, %v", call, c, err)
		}
		if want := map[string]int{s.cold[sec].Sec.Key: 1}; !maps.Equal(store.reads, want) {
			t.Errorf("contact of call %s: read %v, want %v", call, store.reads, want)
		}
	}
}

// A query of one day reads the sections of that day and those of the day
// not sealed yet (whose contacts have no sealed day), never another
// sealed day's.
func TestADayQueryReadsNoOtherSealedDay(t *testing.T) {
	s, store, ids := coldLookups(t)
	j, err := s.Contact(context.Background(), ids["j"])
	if err != nil {
		t.Fatal(err)
	}
	clear(store.reads)
	if _, err := s.Contacts(context.Background(), ledger.ContactQuery{Day: j.Day}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{s.cold[3].Sec.Key: 1}; !maps.Equal(store.reads, want) {
		t.Errorf("contacts of %s: read %v, want %v", j.Day, store.reads, want)
	}
}

// eachCold stops at the first contact for which fn returns false.
func TestEachColdStopsWhenFnReturnsFalse(t *testing.T) {
	s, _, _ := coldLookups(t)
	calls := 0
	err := s.history(false).eachCold(context.Background(), &s.cold[0], func(*contact) bool { calls++; return false }, coldKey{})
	if err != nil || calls != 1 {
		t.Fatalf("%d calls (%v), want the first only", calls, err)
	}
}
