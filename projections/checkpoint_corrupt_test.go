package projections

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// damagedCheckpointState folds a history with every part a checkpoint
// names: pause chunks of two sealed days, a row patched after its seal (a
// pause open across it), rows pinned for a contact still in memory, cold
// contacts of sealed days and of the day not sealed yet, and cooled
// manifest entries.
func damagedCheckpointState(t *testing.T) *State {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	calls := func(day string) {
		for u := 2; u < 4; u++ {
			for k := 0; k < 3; k++ {
				id := fmt.Sprintf("%s-%d-%d", day, u, k)
				g.call(u, id)
			}
		}
	}
	calls("a")
	g.answered(1, "kept", time.Minute) // u1's last call: in memory after the seal, its row pinned
	g.command(1, "pause")
	g.command(1, "resume")
	g.hungUp(1, "kept")
	g.answered(0, "across", time.Minute)
	g.command(0, "pause")
	g.add(ledger.TypeDayClosed, 16*time.Hour, ledger.DayClosed{Day: "2026-11-23", By: ledger.SealSchedule})
	g.command(0, "resume") // patches the row the seal encoded
	g.hungUp(0, "across")
	for u := 2; u < 4; u++ { // a second day's chunk, of two rows
		g.answered(u, fmt.Sprintf("b-paused-%d", u), time.Minute)
		g.command(u, "pause")
		g.command(u, "resume")
		g.hungUp(u, fmt.Sprintf("b-paused-%d", u))
	}
	calls("b")
	g.add(ledger.TypeDayClosed, 24*time.Hour, ledger.DayClosed{Day: "2026-11-24", By: ledger.SealSchedule})
	calls("c") // cooled, the day not sealed yet
	s := New()
	s.coolN = 2
	foldInto(t, g, 0, s)
	return s
}

// A checkpoint whose head names its sections or rows inconsistently is
// damaged: UnmarshalCheckpoint says ErrCorrupt, and the caller replays
// from seq 1 rather than serve a state that misreads its history.
func TestDamagedCheckpointIsCorrupt(t *testing.T) {
	s := damagedCheckpointState(t)
	b, err := s.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	mem := memSections{}
	mem.store(s)
	if _, err := UnmarshalCheckpoint(context.Background(), b, mem); err != nil {
		t.Fatalf("the whole checkpoint: %v", err)
	}
	var cooledKey string
	if len(s.book.Cooled) > 0 {
		cooledKey = s.book.Cooled[0].Key
	}
	head := b[len(checkpointMagic):]
	n, k := binary.Uvarint(head)
	head = head[k : k+int(n)]

	// Each case changes the decoded head; it fails the test when the
	// history lacks the part it changes.
	type obj = map[string]any
	part := func(t *testing.T, m obj, path ...any) any {
		var v any = m
		for _, p := range path {
			switch p := p.(type) {
			case string:
				o, ok := v.(obj)
				if !ok || o[p] == nil {
					t.Fatalf("the history has no %v", path)
				}
				v = o[p]
			case int:
				a, ok := v.([]any)
				if !ok || len(a) <= p {
					t.Fatalf("the history has no %v", path)
				}
				v = a[p]
			}
		}
		return v
	}
	set := func(path ...any) func(*testing.T, obj) {
		val := path[len(path)-1]
		path = path[:len(path)-1]
		return func(t *testing.T, m obj) {
			switch p := path[len(path)-1].(type) {
			case string:
				part(t, m, path[:len(path)-1]...).(obj)[p] = val
			case int:
				part(t, m, path[:len(path)-1]...).([]any)[p] = val
			}
		}
	}
	rekey := func(field, to string) func(*testing.T, obj) {
		return func(t *testing.T, m obj) {
			o := part(t, m, field).(obj)
			for key, v := range o {
				delete(o, key)
				o[to] = v
				return
			}
			t.Fatalf("the history has no %s", field)
		}
	}
	// emptied stores the section of path (a section's JSON) empty, as
	// its damaged head says: only the head's own check can tell.
	emptied := func(path ...any) func(*testing.T, obj, memSections) {
		return func(t *testing.T, m obj, store memSections) {
			store[part(t, m, append(path, "key")...).(string)] = []byte{}
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*testing.T, obj)
		store  func(*testing.T, obj, memSections) // the store as damaged (after change)
		query  bool                               // found when the pause rows are read, not at load
	}{
		{name: "a chunk not after the one before", change: set("pause_chunks", 1, "first", 0)},
		{name: "a chunk of no rows", change: set("pause_chunks", 1, "rows", 0)},
		{name: "a chunk's empty section", change: set("pause_chunks", 1, "sec", "len", 0), store: emptied("pause_chunks", 1, "sec")},
		{name: "a chunk of more rows than its section holds", change: set("pause_chunks", 1, "rows", 3), query: true},
		{name: "a chunk of fewer rows than its section holds", change: set("pause_chunks", 1, "rows", 1), query: true},
		{name: "a patched row after the chunks", change: rekey("pauses_patched", "9999")},
		{name: "a patched row before the first", change: rekey("pauses_patched", "-1")},
		{name: "a patched row of nothing", change: func(t *testing.T, m obj) {
			o := part(t, m, "pauses_patched").(obj)
			for key := range o {
				o[key] = nil
			}
		}},
		{name: "a pinned row after the chunks", change: rekey("pauses_pinned", "9999")},
		{name: "a sealed day without its manifest", change: func(t *testing.T, m obj) {
			ms := part(t, m, "book", "manifests").([]any)
			part(t, m, "book").(obj)["manifests"] = ms[:len(ms)-1]
		}},
		{name: "a manifest filed under another day", change: func(t *testing.T, m obj) {
			ms := part(t, m, "book", "manifests").([]any)
			ms[0], ms[1] = ms[1], ms[0]
		}},
		{name: "an empty manifest", change: set("book", "manifests", 0, "len", 0), store: emptied("book", "manifests", 0)},
		{name: "cooled entries under a foreign key", change: set("book", "cooled", 0, "key", "x"), store: func(t *testing.T, m obj, store memSections) {
			store["x"] = mem[cooledKey]
		}},
		{name: "empty cooled entries", change: set("book", "cooled", 0, "len", 0), store: emptied("book", "cooled", 0)},
		// The seal reads cooled entries from memory: loaded with a damage
		// unnoticed, they would be missing from the day's manifest.
		{name: "cooled entries damaged in the store", change: func(*testing.T, obj) {}, store: func(t *testing.T, m obj, store memSections) {
			b := bytes.Clone(store[cooledKey])
			b[len(b)/2] ^= 0xff
			store[cooledKey] = b
		}},
		{name: "cold contacts of no id", change: set("cold", 0, "min", "")},
		{name: "cold contacts from after their last", change: set("cold", 0, "min", "~")},
		{name: "cold contacts' empty section", change: set("cold", 0, "sec", "len", 0), store: emptied("cold", 0, "sec")},
		{name: "cold contacts of no day cooled before the last seal", change: func(t *testing.T, m obj) {
			for _, d := range part(t, m, "cold").([]any) {
				if d.(obj)["day"] == "" {
					d.(obj)["seal"] = part(t, m, "book", "last_seq")
					return
				}
			}
			t.Fatal("the history has no cold contacts of the day not sealed yet")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := json.NewDecoder(bytes.NewReader(head))
			d.UseNumber()
			var m obj
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			tc.change(t, m)
			h, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			store := maps.Clone(mem)
			if tc.store != nil {
				tc.store(t, m, store)
			}
			cp := binary.AppendUvarint([]byte(checkpointMagic), uint64(len(h)))
			st, err := UnmarshalCheckpoint(context.Background(), append(cp, h...), store)
			if tc.query {
				if err != nil {
					t.Fatalf("load: %v; the damage shows when the rows are read", err)
				}
				_, err = st.Pauses(context.Background(), ledger.PauseQuery{})
			}
			if !errors.Is(err, ledger.ErrCorrupt) {
				t.Fatalf("%v, want ErrCorrupt", err)
			}
		})
	}
	for name, cp := range map[string][]byte{
		"bytes after the head": append(bytes.Clone(b), '}'),
		"cut short":            b[:len(b)-1],
	} {
		if _, err := UnmarshalCheckpoint(context.Background(), cp, mem); !errors.Is(err, ledger.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
