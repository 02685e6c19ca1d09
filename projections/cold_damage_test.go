package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// A section of cold contacts whose records are damaged is corrupt: every
// query that reads the damaged record says ErrCorrupt, never answers
// without it or with what it misreads, and never panics. The sections are
// damaged before they are hashed (as a faulty writer would cut them), so
// that only the records' own lengths and counts can tell.
func TestDamagedColdRecordsAreCorrupt(t *testing.T) {
	type lookup struct{ id, user string } // a contact and a user whose queries read the damaged record
	idOf := func(t *testing.T, rec []byte) lookup {
		ct, ok := readCold(rec)
		if !ok {
			t.Fatal("an undamaged record does not decode")
		}
		return lookup{ct.V.ContactID, ct.V.UserID}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, recs [][]byte) ([]byte, lookup)
		sound  bool
	}{
		{name: "undamaged", sound: true, damage: func(t *testing.T, recs [][]byte) ([]byte, lookup) {
			return coldSectionOf(recs...), idOf(t, recs[len(recs)-1])
		}},
		{name: "cut short in its last record", damage: func(t *testing.T, recs [][]byte) ([]byte, lookup) {
			b := coldSectionOf(recs...)
			return b[:len(b)-1], idOf(t, recs[len(recs)-1])
		}},
		{name: "a record with bytes after its fields", damage: func(t *testing.T, recs [][]byte) ([]byte, lookup) {
			l := idOf(t, recs[0])
			recs[0] = append(bytes.Clone(recs[0]), 0)
			return coldSectionOf(recs...), l
		}},
		{name: "a record counting more segments than any record holds", damage: func(t *testing.T, recs [][]byte) ([]byte, lookup) {
			l := idOf(t, recs[0])
			w := coldWriter{}
			for _, s := range [...]string{l.id, "call", l.user, "", "", "", "", "", "", ""} {
				w.str(s)
			}
			w.time(ledger.Time{})
			w.time(ledger.Time{})
			w.b = append(w.b, 0) // flags
			w.uint(1 << 62)      // segments, and nothing after
			recs[0] = w.b
			return coldSectionOf(recs...), l
		}},
		{name: "a record whose contact id runs past its end", damage: func(t *testing.T, recs [][]byte) ([]byte, lookup) {
			recs[0] = []byte{0x7f, '0'}
			return coldSectionOf(recs...), idOf(t, recs[1]) // read after the damaged one
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := damagedCheckpointState(t)
			i := slices.IndexFunc(s.cold, func(d coldDay) bool { return len(coldRecordsOf(t, d.Sec.data)) >= 2 })
			if i < 0 {
				t.Fatal("the history has no cold section of two contacts")
			}
			d := &s.cold[i]
			b, l := tc.damage(t, coldRecordsOf(t, d.Sec.data))
			d.Sec = newSection(strings.TrimPrefix(d.Sec.Key, Version+"/"), b)
			s = roundTrip(t, s, memSections{})
			ctx := context.Background()
			check := func(what string, err error) {
				t.Helper()
				if tc.sound && err != nil {
					t.Errorf("%s: %v", what, err)
				}
				if !tc.sound && !errors.Is(err, ledger.ErrCorrupt) {
					t.Errorf("%s: %v, want ErrCorrupt", what, err)
				}
			}
			_, err := s.Contacts(ctx, ledger.ContactQuery{})
			check("all contacts", err)
			_, err = s.Contacts(ctx, ledger.ContactQuery{UserID: l.user})
			check("contacts of "+l.user, err)
			check("each contact of "+l.user, s.EachContact(ctx, ledger.ContactQuery{UserID: l.user}, func(*ledger.Contact) error { return nil }))
			c, err := s.Contact(ctx, l.id)
			check("contact "+l.id, err)
			if tc.sound && c.ContactID != l.id {
				t.Errorf("contact %s: found %q", l.id, c.ContactID)
			}
		})
	}
}

// coldRecordsOf splits the bytes of a section of cold contacts into its
// records, each without its length.
func coldRecordsOf(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var recs [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			t.Fatalf("a cold section cut short: %d bytes left, a record of %d", len(b)-k, n)
		}
		recs, b = append(recs, b[k:k+int(n)]), b[k+int(n):]
	}
	return recs
}

// coldSectionOf joins records into the bytes of a section of cold
// contacts, each after its length.
func coldSectionOf(recs ...[]byte) []byte {
	var b []byte
	for _, r := range recs {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return b
}
