package projections

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// TestColdAnswersLikeMemory folds random ledgers with seals twice, once
// moving closed contacts to the cold store (every coolN closes, and at
// each seal) and once keeping them all in memory, and checks after every
// seal, and between seals, that every contact query answers the same; one
// fold goes through a checkpoint on the way, and stores its sections.
func TestColdAnswersLikeMemory(t *testing.T) {
	const coolN = 40
	cooled, encoded, patched, pending, kept, coolings := 0, 0, 0, 0, 0, 0
	for seed := int64(1); seed <= 4; seed++ {
		g := newEnvGen(t)
		g.config(genConfig(15, 30)) // u14, a dialer agent that realistic leaves alone
		rng := rand.New(rand.NewSource(seed))
		g.random(rng, 12, 1500)
		// then calls handled one after another, a day sealed every 1000 events
		for d := 1; d <= 4; d++ {
			if d == 1 {
				// pauses open while the day is cooled, closed after
				pausedCalls(g, "long", func() { g.realistic(rng, 12, len(g.out)+500) })
			}
			g.realistic(rng, 12, len(g.out)+1000)
			if d == 2 {
				// metadata typed between the segments of a dialer's call,
				// after contacts were cooled meanwhile
				dialerBetweenSegments(g, fmt.Sprint("dialer-", seed), func() { g.realistic(rng, 12, len(g.out)+500) })
			}
			if d == 3 {
				// pauses still open across the seal, closed after it
				pausedCalls(g, "open", func() {
					g.add(ledger.TypeDayClosed, 0, ledger.DayClosed{Day: "2027-01-03", By: ledger.SealSchedule})
				})
			}
			g.add(ledger.TypeDayClosed, 0, ledger.DayClosed{Day: fmt.Sprintf("2027-01-%02d", d), By: ledger.SealSchedule})
		}
		g.random(rng, 12, 500)
		cold, warm := New(), New()
		warm.noCold = true
		cold.coolN = coolN
		stored := memSections{}
		tripped := false
		for i := range g.out {
			e := &g.out[i]
			encodedBefore := cold.pauses.encoded
			if _, err := cold.Apply(e); err != nil {
				t.Fatal(err)
			}
			if _, err := warm.Apply(e); err != nil {
				t.Fatal(err)
			}
			for _, d := range cold.cold {
				if d.Day == "" {
					pending++
				}
			}
			if i%50 == 0 {
				checkNothingOfCooled(t, cold, e.Seq)
				// A close request's check: cooled contacts count from
				// their start, never later than their ends in memory.
				ca, cok := cold.EarliestPending()
				wa, wok := warm.EarliestPending()
				if cok != wok || ca.After(wa.Time) {
					t.Fatalf("seed %d seq %d: earliest pending %v (%v) cooled, %v (%v) in memory", seed, e.Seq, ca, cok, wa, wok)
				}
			}
			if e.Type != ledger.TypeDayClosed && cold.pauses.encoded > encodedBefore {
				coolings++
				for _, r := range cold.open {
					if r >= encodedBefore && r < cold.pauses.encoded {
						t.Fatalf("seed %d seq %d: a cooling encoded pause row %d, still open: it would stay patched for good", seed, e.Seq, r)
					}
				}
			}
			switch {
			case !tripped && i >= len(g.out)/2 && (len(cold.book.Cooled) > 0 || i > len(g.out)*2/3):
				// through a checkpoint, with entries cooled on the day
				// not sealed yet when there are
				tripped = true
				kept += len(cold.book.Cooled)
				cold = roundTrip(t, cold, stored)
				cold.coolN = coolN
			case i == len(g.out)*3/4:
				stored.store(cold) // sections stored, bytes dropped, the fold goes on
			}
			if e.Type != ledger.TypeDayClosed && i != len(g.out)-1 && i%1000 != 999 {
				continue
			}
			sameContacts(t, seed, e.Seq, cold, warm)
		}
		stored.store(cold)
		for k := range stored {
			if n := strings.Index(k, "/e/"); n >= 0 && !slices.ContainsFunc(cold.book.Cooled, func(c section) bool { return c.Key == k }) {
				t.Fatalf("seed %d: section %s of entries a seal took is still stored", seed, k)
			}
		}
		straight := New()
		straight.coolN = coolN
		for i := range g.out {
			if _, err := straight.Apply(&g.out[i]); err != nil {
				t.Fatal(err)
			}
		}
		if straight.Digest() != cold.Digest() {
			t.Fatalf("seed %d: the fold through a checkpoint and the straight fold differ", seed)
		}
		encoded += cold.pauses.encoded
		if len(cold.pauses.chunks) < 2 {
			t.Fatalf("seed %d: %d chunks of pause rows after several seals", seed, len(cold.pauses.chunks))
		}
		patched += len(cold.pauses.patched)
		for _, d := range cold.cold {
			if d.Sec.Len > 0 {
				cooled++
			}
		}
		if len(cold.contacts) >= len(warm.contacts) {
			t.Fatalf("seed %d: %d contacts in memory, as many as without the cold store", seed, len(cold.contacts))
		}
	}
	t.Logf("%d sections of contacts cooled, %d pause rows encoded, %d patched; %d sections (counted at each event) of a day not sealed yet; %d sections of cooled entries through a checkpoint; %d coolings encoded pause rows",
		cooled, encoded, patched, pending, kept, coolings)
	if pending == 0 || kept == 0 || coolings == 0 {
		t.Fatal("no contact was cooled before its day was sealed, or none through a checkpoint: the test checks nothing of it")
	}
	if encoded == 0 || patched == 0 {
		t.Fatal("no pause row was ever encoded, or closed after it was: the test checks nothing")
	}
	if cooled == 0 {
		t.Fatal("no contact ever went to the cold store: the test checks nothing")
	}
}

// pausedCalls answers a call on each of users u0..u3's extensions and
// pauses it, adds the events of between, then ends the calls.
func pausedCalls(g *envGen, prefix string, between func()) {
	for u := range 4 {
		id, ext := fmt.Sprintf("%s-%d", prefix, u), fmt.Sprintf("%d", 3000+u)
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001"})
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered})
		g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "pause", SenderID: fmt.Sprintf("u%d", u), Transport: "finesse"})
	}
	between()
	for u := range 4 {
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: fmt.Sprintf("%s-%d", prefix, u), Extension: fmt.Sprintf("%d", 3000+u), Type: ledger.SignalEnded})
	}
}

// dialerBetweenSegments has user u14 (an outbound dialer's agent, team c)
// record a segment of its nailed-up call, adds the events of between,
// types metadata for the segment just recorded, and hangs up.
func dialerBetweenSegments(g *envGen, id string, between func()) {
	user, ext := "u14", "3014"
	g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalDialing, Direction: ledger.DirectionOutbound, DNIS: "9999"})
	g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "startsegment", SenderID: user, Transport: "finesse"})
	g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "stopsegment", SenderID: user, Transport: "finesse"})
	between()
	g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "metadata", SenderID: user, Transport: "finesse",
		Params: []ledger.Param{{Key: "account", Value: "777"}}})
	g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalEnded})
}

func sameContacts(t *testing.T, seed int64, seq uint64, cold, warm *State) {
	t.Helper()
	eq := func(what string, a, b any) {
		t.Helper()
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("seed %d seq %d: %s:\ncold %s\nwarm %s", seed, seq, what, ja, jb)
		}
	}
	all := contactsOf(t, warm, ledger.ContactQuery{})
	eq("all contacts", contactsOf(t, cold, ledger.ContactQuery{}), all)
	days := map[string]bool{}
	for _, c := range all {
		days[c.Day] = true
		got, err := cold.Contact(context.Background(), c.ContactID)
		if err != nil {
			t.Fatalf("seed %d seq %d: contact %s: %v", seed, seq, c.ContactID, err)
		}
		if !reflect.DeepEqual(got, c) {
			eq("contact "+c.ContactID, got, c)
		}
	}
	for d := range days {
		q := ledger.ContactQuery{Day: d}
		eq("contacts of "+d, contactsOf(t, cold, q), contactsOf(t, warm, q))
		q = ledger.ContactQuery{Day: d, Disposition: ledger.DispositionUpload, UserID: "u1"}
		eq("upload contacts of u1 on "+d, contactsOf(t, cold, q), contactsOf(t, warm, q))
	}
	for _, u := range []string{"u1", "u3"} {
		q := ledger.ContactQuery{UserID: u}
		eq("contacts of "+u, contactsOf(t, cold, q), contactsOf(t, warm, q))
	}
	eq("pauses", pausesOf(t, cold, ledger.PauseQuery{}), pausesOf(t, warm, ledger.PauseQuery{}))
	q := ledger.PauseQuery{UserID: "u2", From: ledger.T(scriptDay.Add(9 * time.Hour)), To: ledger.T(scriptDay.Add(30 * time.Hour))}
	eq("pauses of u2", pausesOf(t, cold, q), pausesOf(t, warm, q))
	// time ranges over the whole history (08:00 to about 15:00): the chunks
	// outside them are skipped
	for m := 7 * 60; m < 16*60; m += 19 {
		from, to := ledger.T(scriptDay.Add(time.Duration(m)*time.Minute)), ledger.T(scriptDay.Add(time.Duration(m+2)*time.Minute))
		for _, q := range []ledger.PauseQuery{{From: from, To: to}, {From: from}, {To: to}, {From: from, To: from}} {
			eq("pauses from "+q.From.String()+" to "+q.To.String(), pausesOf(t, cold, q), pausesOf(t, warm, q))
		}
	}
	ta, oka := cold.NextTimer()
	tb, okb := warm.NextTimer()
	eq("next timer", []any{ta, oka}, []any{tb, okb})
	for _, d := range warm.SealedDays() {
		a, _ := cold.Manifest(context.Background(), d)
		b, _ := warm.Manifest(context.Background(), d)
		eq("manifest "+d, string(a), string(b))
	}
}

// FuzzColdRecords feeds arbitrary bytes to the decoders of the compact
// forms (cold contacts, pause rows, cooled manifest entries): they must
// not panic, and what they accept must survive an encode and decode
// unchanged.
func FuzzColdRecords(f *testing.F) {
	d := ledger.DispositionUpload
	ct := &contact{V: ledger.Contact{ContactID: "01KAQ", CallID: "c-1", StartedAt: ledger.T(scriptDay), Disposition: &d,
		Segments:    []ledger.Segment{{Start: ledger.T(scriptDay), End: ledger.T(scriptDay.Add(time.Minute))}},
		ReasonCodes: []string{ledger.CodeTagged}, Metadata: map[string]string{"a": "b"}}, Rows: []int{0, 3}}
	rec := appendCold(nil, ct)
	_, k := binary.Uvarint(rec)
	f.Add(rec[k:])
	f.Add(appendPauseRow(nil, &ledger.PauseRow{ContactID: "01KAQ", Start: ledger.T(scriptDay), Seconds: 1.5}))
	f.Add([]byte{0x80})
	cooled := appendCooled(nil, "01KAQ", pendingContact{EndedAt: ledger.T(scriptDay), Disposition: d, Entry: []byte(`{"contact_id":"01KAQ"}`)})
	f.Add(appendCooled(cooled, "01KAR", pendingContact{Disposition: ledger.DispositionDiscard}))
	f.Fuzz(func(t *testing.T, b []byte) {
		type rec struct {
			id string
			p  pendingContact
		}
		var recs []rec
		if eachCooled(&section{data: b}, func(id string, p pendingContact) { recs = append(recs, rec{id, p}) }) == nil {
			var again []byte
			for _, r := range recs {
				again = appendCooled(again, r.id, r.p)
			}
			var back []rec
			if err := eachCooled(&section{data: again}, func(id string, p pendingContact) { back = append(back, rec{id, p}) }); err != nil || !reflect.DeepEqual(back, recs) {
				t.Fatalf("cooled entries change through an encode (%v):\n%+v\n%+v", err, recs, back)
			}
		}
		if ct, ok := readCold(b); ok {
			again := appendCold(nil, ct)
			_, k := binary.Uvarint(again)
			back, ok := readCold(again[k:])
			if !ok || !reflect.DeepEqual(back, ct) {
				t.Fatalf("cold record changes through an encode:\n%+v\n%+v", ct, back)
			}
		}
		if r, n := readPauseRow(b); n > 0 {
			back, m := readPauseRow(appendPauseRow(nil, &r))
			if m <= 0 || (back != r && !math.IsNaN(r.Seconds)) {
				t.Fatalf("pause row changes through an encode:\n%+v\n%+v", r, back)
			}
		}
	})
}

// checkNothingOfCooled fails when the state keeps something of a contact
// it moved to the cold store (its sealed day, a pinned pause row):
// memory grows with open contacts, not with history.
func checkNothingOfCooled(t *testing.T, s *State, seq uint64) {
	t.Helper()
	for id := range s.book.DayOf {
		if s.contacts[id] == nil {
			t.Fatalf("seq %d: the sealed day of contact %s is kept, the contact cooled", seq, id)
		}
	}
	for i, p := range s.pauses.pinned {
		if s.contacts[p.ContactID] == nil {
			t.Fatalf("seq %d: pause row %d is pinned, its contact %s cooled", seq, i, p.ContactID)
		}
	}
}
