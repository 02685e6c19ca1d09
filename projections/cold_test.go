package projections

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// TestColdAnswersLikeMemory folds random ledgers with seals twice, once
// moving sealed contacts to the cold store and once keeping them all in
// memory, and checks after every seal that every contact query answers the
// same; one fold goes through a checkpoint on the way.
func TestColdAnswersLikeMemory(t *testing.T) {
	cooled := 0
	for seed := int64(1); seed <= 4; seed++ {
		g := newEnvGen(t)
		g.config(genConfig(12, 30))
		rng := rand.New(rand.NewSource(seed))
		g.random(rng, 12, 1500)
		// then calls handled one after another, a day sealed every 1000 events
		for d := 1; d <= 4; d++ {
			g.realistic(rng, 12, len(g.out)+1000)
			g.add(ledger.TypeDayClosed, 0, ledger.DayClosed{Day: fmt.Sprintf("2027-01-%02d", d), By: ledger.SealSchedule})
		}
		g.random(rng, 12, 500)
		cold, warm := New(), New()
		warm.noCold = true
		for i := range g.out {
			e := &g.out[i]
			if _, err := cold.Apply(e); err != nil {
				t.Fatal(err)
			}
			if _, err := warm.Apply(e); err != nil {
				t.Fatal(err)
			}
			if i == len(g.out)/2 {
				cp, err := cold.MarshalCheckpoint()
				if err != nil {
					t.Fatal(err)
				}
				if cold, err = UnmarshalCheckpoint(cp); err != nil {
					t.Fatal(err)
				}
			}
			if e.Type != ledger.TypeDayClosed && i != len(g.out)-1 {
				continue
			}
			sameContacts(t, seed, e.Seq, cold, warm)
		}
		for _, d := range cold.cold {
			if len(d.Data) > 0 {
				cooled++
			}
		}
		if len(cold.contacts) >= len(warm.contacts) {
			t.Fatalf("seed %d: %d contacts in memory, as many as without the cold store", seed, len(cold.contacts))
		}
	}
	if cooled == 0 {
		t.Fatal("no contact ever went to the cold store: the test checks nothing")
	}
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
	all := warm.Contacts(ledger.ContactQuery{})
	eq("all contacts", cold.Contacts(ledger.ContactQuery{}), all)
	days := map[string]bool{}
	for _, c := range all {
		days[c.Day] = true
		got, err := cold.Contact(c.ContactID)
		if err != nil {
			t.Fatalf("seed %d seq %d: contact %s: %v", seed, seq, c.ContactID, err)
		}
		if !reflect.DeepEqual(got, c) {
			eq("contact "+c.ContactID, got, c)
		}
	}
	for d := range days {
		q := ledger.ContactQuery{Day: d}
		eq("contacts of "+d, cold.Contacts(q), warm.Contacts(q))
		q = ledger.ContactQuery{Day: d, Disposition: ledger.DispositionUpload, UserID: "u1"}
		eq("upload contacts of u1 on "+d, cold.Contacts(q), warm.Contacts(q))
	}
	for _, d := range warm.SealedDays() {
		a, _ := cold.Manifest(d)
		b, _ := warm.Manifest(d)
		eq("manifest "+d, string(a), string(b))
	}
}
