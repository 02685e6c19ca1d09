package projections

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// memSections is a section store in a map, for the fold's own tests;
// replay's tests store sections in a real ledger.Store.
type memSections map[string][]byte

func (m memSections) Section(_ context.Context, key string) ([]byte, error) {
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
		m[sec.Key] = append([]byte(nil), sec.Data...)
		keys = append(keys, sec.Key)
	}
	s.SectionsStored(m, keys)
}

// roundTrip saves s as a checkpoint with its sections in m and decodes it
// back; the decoded state holds no section's bytes.
func roundTrip(t testing.TB, s *State, m memSections) *State {
	t.Helper()
	b, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	m.store(s)
	s2, err := UnmarshalCheckpoint(context.Background(), b, m)
	if err != nil {
		t.Fatal(err)
	}
	return s2
}

// contactsOf is State.Contacts; an error fails the test.
func contactsOf(t testing.TB, s *State, q ledger.ContactQuery) []ledger.Contact {
	t.Helper()
	out, err := s.Contacts(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	// EachContact hands over the same contacts in the same order.
	streamed := []ledger.Contact{}
	if err := s.EachContact(context.Background(), q, func(c *ledger.Contact) error {
		streamed = append(streamed, *c)
		return nil
	}); err != nil {
		t.Fatalf("EachContact %+v: %v", q, err)
	}
	if !reflect.DeepEqual(streamed, out) {
		t.Fatalf("EachContact %+v: %d contacts, differing from Contacts' %d", q, len(streamed), len(out))
	}
	return out
}

// pausesOf is State.Pauses; an error fails the test.
func pausesOf(t testing.TB, s *State, q ledger.PauseQuery) []ledger.PauseRow {
	t.Helper()
	out, err := s.Pauses(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	// EachPause streams the same rows in the same order.
	streamed := []ledger.PauseRow{}
	if err := s.EachPause(context.Background(), q, func(p *ledger.PauseRow) error {
		streamed = append(streamed, *p)
		return nil
	}); err != nil {
		t.Fatalf("EachPause %+v: %v", q, err)
	}
	if !reflect.DeepEqual(streamed, out) {
		t.Fatalf("EachPause %+v: %d rows, differing from Pauses' %d", q, len(streamed), len(out))
	}
	return out
}
