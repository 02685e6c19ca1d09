package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// cooledBeforeSeal is a day of calls of every disposition (u0's tagged,
// u1's deleted, u2's discarded, u3's archived), sealed, then a few calls
// of the next day and its seal; it returns the generator and the index of
// the first seal. Folded with coolN 2, most of the first day's contacts
// are cooled before its seal.
func cooledBeforeSeal(t *testing.T) (*envGen, int) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	day := func(name string, calls int) {
		for k := range calls {
			for u := range 4 {
				id := fmt.Sprintf("%s-%d-%d", name, u, k)
				g.answered(u, id, time.Minute)
				switch u {
				case 0:
					g.command(u, "tag")
				case 1:
					g.command(u, "delete")
				}
				g.hungUp(u, id)
			}
		}
	}
	day("a", 3)
	seal := len(g.out)
	g.add(ledger.TypeDayClosed, 16*time.Hour, ledger.DayClosed{Day: "2026-11-23", By: ledger.SealSchedule})
	day("b", 1)
	g.add(ledger.TypeDayClosed, 24*time.Hour, ledger.DayClosed{Day: "2026-11-24", By: ledger.SealSchedule})
	return g, seal
}

// The contacts cooled out of memory before their day is sealed are in
// its manifest, listed and counted as if they had stayed (the bytes are
// those of a fold that cools nothing), once: not again in the next day's.
// The seal files no day for them in memory, where they no longer are.
func TestContactsCooledBeforeTheirSealAreInItsManifestOnce(t *testing.T) {
	g, seal := cooledBeforeSeal(t)
	cold, warm := New(), New()
	cold.coolN, warm.noCold = 2, true
	foldInto(t, &envGen{tb: t, out: g.out[:seal]}, 0, cold, warm)
	byDisp := map[string]int{}
	for i := range cold.book.Cooled {
		if err := eachCooled(&cold.book.Cooled[i], func(_ string, p pendingContact) { byDisp[p.Disposition]++ }); err != nil {
			t.Fatal(err)
		}
	}
	foldInto(t, g, seal, cold, warm)
	checkNothingOfCooled(t, cold, g.out[len(g.out)-1].Seq)
	for _, day := range []string{"2026-11-23", "2026-11-24"} {
		c, err := cold.Manifest(context.Background(), day)
		if err != nil {
			t.Fatal(err)
		}
		w, err := warm.Manifest(context.Background(), day)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, w) {
			t.Errorf("manifest %s, its contacts cooled before the seal:\n%s\nkept in memory:\n%s", day, c, w)
		}
	}
	m, err := cold.Manifest(context.Background(), "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(m, []byte(`"counts":{"upload":6,"basic_only":3,"discard":3,"metadata_updates":0,"total":12}`)) {
		t.Errorf("manifest 2026-11-23 does not count the day's 12 contacts: %s", m)
	}
	if byDisp[ledger.DispositionUpload] == 0 || byDisp[ledger.DispositionBasicOnly] == 0 || byDisp[ledger.DispositionDiscard] == 0 {
		t.Fatalf("cooled before the seal: %v; the test wants contacts of every disposition", byDisp)
	}
}

// A section of cooled manifest entries whose records are damaged (cut so
// by a faulty writer, before it was hashed: only the records' own
// lengths can tell) fails the seal that reads it with ErrCorrupt, and
// never panics: the day is not sealed to a manifest that misses or
// misreads a contact.
func TestDamagedCooledEntriesFailTheSeal(t *testing.T) {
	record := func(id, disp string, entry []byte, after ...byte) []byte {
		w := coldWriter{}
		w.str(id)
		w.str(disp)
		w.time(mt("2026-11-23T12:00:00Z"))
		if entry == nil {
			w.uint(0)
		} else {
			w.uint(uint64(len(entry)) + 1)
			w.b = append(w.b, entry...)
		}
		return append(w.b, after...)
	}
	entry := []byte(`{"contact_id":"x"}`)
	for _, tc := range []struct {
		name   string
		damage func(recs [][]byte) []byte
		sound  bool
	}{
		{name: "undamaged", sound: true, damage: func(recs [][]byte) []byte { return coldSectionOf(recs...) }},
		{name: "a record of no contact id", damage: func(recs [][]byte) []byte {
			return coldSectionOf(append(recs, record("", ledger.DispositionUpload, entry))...)
		}},
		{name: "a discarded contact's record with bytes after it", damage: func(recs [][]byte) []byte {
			return coldSectionOf(append(recs, record("x", ledger.DispositionDiscard, nil, 0))...)
		}},
		{name: "an entry shorter than its length says", damage: func(recs [][]byte) []byte {
			r := record("x", ledger.DispositionUpload, entry)
			return coldSectionOf(append(recs, r[:len(r)-1])...)
		}},
		{name: "an entry with bytes after it", damage: func(recs [][]byte) []byte {
			return coldSectionOf(append(recs, record("x", ledger.DispositionUpload, entry, '}'))...)
		}},
		{name: "a record length that overflows", damage: func(recs [][]byte) []byte {
			return append(coldSectionOf(recs...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02)
		}},
		{name: "cut short in its last record", damage: func(recs [][]byte) []byte {
			b := coldSectionOf(recs...)
			return b[:len(b)-1]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, seal := cooledBeforeSeal(t)
			s := New()
			s.coolN = 2
			foldInto(t, &envGen{tb: t, out: g.out[:seal]}, 0, s)
			if len(s.book.Cooled) == 0 {
				t.Fatal("no entry cooled before the seal: the test checks nothing")
			}
			c := &s.book.Cooled[0]
			var recs [][]byte
			for b := c.data; len(b) > 0; {
				n, k := binary.Uvarint(b)
				recs, b = append(recs, b[k:k+int(n)]), b[k+int(n):]
			}
			*c = newSection(strings.TrimPrefix(c.Key, Version+"/"), tc.damage(recs))
			c.keep = true
			_, err := s.Apply(&g.out[seal])
			switch {
			case tc.sound && err != nil:
				t.Fatalf("seal: %v", err)
			case !tc.sound && !errors.Is(err, ledger.ErrCorrupt):
				t.Fatalf("seal: %v, want ErrCorrupt", err)
			}
		})
	}
}
