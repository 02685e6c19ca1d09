package projections

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// memSections is a section store in a map, for the fold's own tests;
// replay's tests store sections in a real ledger.Store.
type memSections map[string][]byte

func (m memSections) Section(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil { // as ledger.Store does
		return nil, err
	}
	b, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("section %s: %w", key, ledger.ErrNotFound)
	}
	return append([]byte(nil), b...), nil
}

func (m memSections) SectionSizes(_ context.Context, keys []string) ([]int, error) {
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = -1
		if b, ok := m[k]; ok {
			out[i] = len(b)
		}
	}
	return out, nil
}

// store stores the state's pending sections in m, as a checkpoint save
// does, and tells the state so.
func (m memSections) store(s *State) {
	var keys []string
	for _, sec := range s.PendingSections() {
		if sec.Drop {
			delete(m, sec.Key)
		} else {
			m[sec.Key] = append([]byte(nil), sec.Data...)
		}
		keys = append(keys, sec.Key)
	}
	s.SectionsStored(m, keys)
}

// roundTrip saves s as a checkpoint with its sections in m and decodes it
// back; the decoded state holds no section's bytes.
func roundTrip(t testing.TB, s *State, m memSections) *State {
	t.Helper()
	return roundTripVia(t, s, m, m)
}

// roundTripVia is roundTrip storing the sections in m and reading them
// back through r.
func roundTripVia(t testing.TB, s *State, m memSections, r SectionReader) *State {
	t.Helper()
	b, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	m.store(s)
	s2, err := UnmarshalCheckpoint(context.Background(), b, r)
	if err != nil {
		t.Fatal(err)
	}
	return s2
}

// contactsOf is State.Contacts; an error fails the test, and so does an
// EachContact that hands over anything else.
func contactsOf(t testing.TB, s *State, q ledger.ContactQuery) []ledger.Contact {
	t.Helper()
	out, err := s.Contacts(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	sameStreamed(t, fmt.Sprintf("EachContact %+v", q), out, func(fn func(*ledger.Contact) error) error {
		return s.EachContact(context.Background(), q, fn)
	})
	return out
}

// sameStreamed fails the test unless each hands over exactly want, in
// order.
func sameStreamed[T any](t testing.TB, what string, want []T, each func(fn func(*T) error) error) {
	t.Helper()
	got := []T{}
	if err := each(func(v *T) error { got = append(got, *v); return nil }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %d handed over, differing from the %d collected", what, len(got), len(want))
	}
}

// pausesOf is State.Pauses; an error fails the test, and so does an
// EachPause that hands over anything else.
func pausesOf(t testing.TB, s *State, q ledger.PauseQuery) []ledger.PauseRow {
	t.Helper()
	out, err := s.Pauses(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	sameStreamed(t, fmt.Sprintf("EachPause %+v", q), out, func(fn func(*ledger.PauseRow) error) error {
		return s.EachPause(context.Background(), q, fn)
	})
	return out
}

// Two folds of the same busy day (the server's and the Checkpointer's
// own) share the bytes of the manifest entries they keep for the seal,
// and still seal the same day.
func TestShareKept(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(12, 30))
	g.realistic(rand.New(rand.NewSource(3)), 12, 3000)
	a, b := New(), New()
	a.coolN, b.coolN = 40, 40
	for i := range g.out {
		for _, s := range []*State{a, b} {
			if _, err := s.Apply(&g.out[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(a.book.Cooled) < 2 {
		t.Fatalf("%d sections of cooled entries: the test checks nothing", len(a.book.Cooled))
	}
	if n := a.ShareKept(b); n != len(a.book.Cooled) {
		t.Fatalf("shared %d of %d", n, len(a.book.Cooled))
	}
	for i := range a.book.Cooled {
		if &a.book.Cooled[i].data[0] != &b.book.Cooled[i].data[0] {
			t.Fatalf("section %s not shared", a.book.Cooled[i].Key)
		}
	}
	if n := a.ShareKept(b); n != 0 {
		t.Fatalf("shared %d again", n)
	}
	g.add(ledger.TypeDayClosed, time.Minute, ledger.DayClosed{Day: g.now.Format(time.DateOnly), By: ledger.SealRequest})
	for _, s := range []*State{a, b} {
		if _, err := s.Apply(&g.out[len(g.out)-1]); err != nil {
			t.Fatal(err)
		}
	}
	if a.Digest() != b.Digest() || len(a.book.Order) != 1 {
		t.Fatal("the two folds differ after the seal")
	}
}
