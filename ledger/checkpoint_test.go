package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	if _, _, err := s.LoadCheckpoint(ctx, "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := s.Append(ctx, cmd("a"), cmd("b"), cmd("c")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "v1", 1, []byte("old"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "v1", 3, []byte("new"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "v1", 4, []byte("ahead"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("checkpoint after the head: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seq, state, err := s.LoadCheckpoint(ctx, "v1")
	if err != nil || seq != 3 || string(state) != "new" {
		t.Fatalf("load v1: %d %q %v", seq, state, err)
	}
	if _, _, err := s.LoadCheckpoint(ctx, "v2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other version: %v", err)
	}
}

// TestLoadedCheckpointIsACopy: the state LoadCheckpoint returns is the
// caller's, not bbolt's mapping of the file, which a remap or Close takes
// away. (A state in a bucket small enough to be stored inline is copied
// by bbolt itself: the state here is larger than a page.)
func TestLoadedCheckpointIsACopy(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a")); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("state of the projections "), 4<<10) // 100 KiB, one value
	if err := s.SaveCheckpoint(ctx, "v1", 1, want, nil); err != nil {
		t.Fatal(err)
	}
	_, state, err := s.LoadCheckpoint(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state, want) { // a fault here, were it still the mapping
		t.Fatal("the loaded state changed after Close")
	}
}

func TestCheckpointSections(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a"), cmd("b")); err != nil {
		t.Fatal(err)
	}
	// an older version's checkpoint and section
	if err := s.SaveCheckpoint(ctx, "2", 1, []byte("old"), []Section{{Key: "2/m/2026-11-22", Data: []byte("old manifest")}}); err != nil {
		t.Fatal(err)
	}
	secs := []Section{{Key: "3/m/2026-11-23", Data: []byte("manifest")}, {Key: "3/p/2", Data: []byte("rows")}}
	if err := s.SaveCheckpoint(ctx, "3", 2, []byte("head"), secs); err != nil {
		t.Fatal(err)
	}
	// The first checkpoint of a version drops the other versions' at once.
	if _, _, err := s.LoadCheckpoint(ctx, "2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the older version's checkpoint was kept: %v", err)
	}
	if _, err := s.Section(ctx, "2/m/2026-11-22"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the older version's section was kept: %v", err)
	}
	for _, bad := range []string{"", "3/", "2/m/2026-11-24", "3m"} {
		if err := s.SaveCheckpoint(ctx, "3", 2, []byte("head"), []Section{{Key: bad, Data: []byte("x")}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("section key %q: %v", bad, err)
		}
	}
	if err := s.SaveCheckpoint(ctx, "3", 2, []byte("head"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Section(ctx, "3/m/2026-11-23")
	if err != nil || string(got) != "manifest" {
		t.Fatalf("section: %q %v", got, err)
	}
	if _, err := ro.Section(ctx, "3/m/2026-11-24"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing section: %v", err)
	}
	sizes, err := ro.SectionSizes(ctx, []string{"3/p/2", "nope", "3/m/2026-11-23", "2/m/2026-11-22"})
	if err != nil || len(sizes) != 4 || sizes[0] != 4 || sizes[1] != -1 || sizes[2] != 8 || sizes[3] != -1 {
		t.Fatalf("sizes (the older version's section dropped): %v %v", sizes, err)
	}
	if _, _, err := ro.LoadCheckpoint(ctx, "2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the older version's checkpoint was kept: %v", err)
	}
}

// TestCheckpointSectionsInParts saves more section bytes than one
// transaction takes (parts of at most 100 bytes, so about a dozen
// commits): every section and the checkpoint are stored.
func TestCheckpointSectionsInParts(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a")); err != nil {
		t.Fatal(err)
	}
	s.sectionTxBytes = 100
	var secs []Section
	for i := range 25 {
		secs = append(secs, Section{Key: fmt.Sprintf("3/c/%d/2026-11-23", i), Data: bytes.Repeat([]byte{byte('a' + i)}, 30+i)})
	}
	if err := s.SaveCheckpoint(ctx, "3", 1, []byte("head"), secs); err != nil {
		t.Fatal(err)
	}
	for _, sec := range secs {
		if got, err := s.Section(ctx, sec.Key); err != nil || !bytes.Equal(got, sec.Data) {
			t.Fatalf("%s: %q %v", sec.Key, got, err)
		}
	}
	if seq, head, err := s.LoadCheckpoint(ctx, "3"); err != nil || seq != 1 || string(head) != "head" {
		t.Fatalf("checkpoint: %d %q %v", seq, head, err)
	}
}

// TestCheckpointDropsSections saves a checkpoint that retires a section
// stored with the one before: it is deleted with the new checkpoint,
// while the other sections stay.
func TestCheckpointDropsSections(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a"), cmd("b")); err != nil {
		t.Fatal(err)
	}
	s.sectionTxBytes = 10 // the new section goes in a part of its own, before the checkpoint
	old := []Section{{Key: "3/e/1", Data: []byte("entries")}, {Key: "3/c/1/pending", Data: []byte("contacts")}}
	if err := s.SaveCheckpoint(ctx, "3", 1, []byte("head 1"), old); err != nil {
		t.Fatal(err)
	}
	next := []Section{{Key: "3/m/2026-11-23", Data: []byte("the manifest")}, {Key: "3/p/2", Data: []byte("rows")}, {Key: "3/e/1", Drop: true}}
	if err := s.SaveCheckpoint(ctx, "3", 2, []byte("head 2"), next); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Section(ctx, "3/e/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retired section kept: %v", err)
	}
	for _, k := range []string{"3/c/1/pending", "3/m/2026-11-23", "3/p/2"} {
		if _, err := s.Section(ctx, k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if seq, head, err := s.LoadCheckpoint(ctx, "3"); err != nil || seq != 2 || string(head) != "head 2" {
		t.Fatalf("checkpoint: %d %q %v", seq, head, err)
	}
}

// A state larger than a transaction's share is stored in parts, each in
// a transaction of its own, and read back whole; a later checkpoint
// removes the parts of the one it replaces, and of other versions.
func TestCheckpointHeadInParts(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a"), cmd("b"), cmd("c")); err != nil {
		t.Fatal(err)
	}
	s.sectionTxBytes = 100
	parts := func() (keys []string) {
		_ = s.db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketHeadParts); b != nil {
				_ = b.ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
			}
			return nil
		})
		return keys
	}
	big := func(n int, c byte) []byte {
		return append([]byte("recledger.checkpoint\n"), bytes.Repeat([]byte{c}, n)...)
	}
	for _, c := range []struct {
		version string
		seq     uint64
		state   []byte
		parts   int
	}{
		{"3", 1, big(950, 'x'), 10}, // 971 bytes: 10 parts
		{"3", 2, big(350, 'y'), 4},  // replaces seq 1's parts
		{"3", 3, []byte("small"), 0},
		{"3", 3, big(150, 'z'), 2},
		{"4", 3, big(250, 'w'), 3}, // another version: the old one's parts go
	} {
		if err := s.SaveCheckpoint(ctx, c.version, c.seq, c.state, nil); err != nil {
			t.Fatal(err)
		}
		seq, state, err := s.LoadCheckpoint(ctx, c.version)
		if err != nil || seq != c.seq || !bytes.Equal(state, c.state) {
			t.Fatalf("version %s seq %d: got seq %d, %d bytes, %v", c.version, c.seq, seq, len(state), err)
		}
		if got := parts(); len(got) != c.parts {
			t.Errorf("version %s seq %d: parts stored %q, want %d", c.version, c.seq, got, c.parts)
		}
	}
	// A part gone is a corrupt checkpoint, not a short state.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHeadParts).Delete(headPartKey("4", 3, 1)) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadCheckpoint(ctx, "4"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a checkpoint missing a part: %v", err)
	}
}

// A checkpoint's state damaged in the file, still decodable (a walk
// changed a pause's seconds inside a head), was served as the state. Its
// SHA-256 is stored with it now: a damaged state, inline or in parts, is
// ErrCorrupt (the caller folds the events instead), and a checkpoint
// saved before the sum, without it, still loads.
func TestCheckpointStateIsSummed(t *testing.T) {
	ctx := context.Background()
	for _, parts := range []bool{false, true} {
		s, path := openTest(t, Options{})
		if _, err := s.Append(ctx, cmd("a")); err != nil {
			t.Fatal(err)
		}
		if parts {
			s.sectionTxBytes = 10
		}
		state := []byte(`{"pauses":[{"seconds":45}],"padding":"0123456789"}`)
		if err := s.SaveCheckpoint(ctx, "3", 1, state, nil); err != nil {
			t.Fatal(err)
		}
		if _, got, err := s.LoadCheckpoint(ctx, "3"); err != nil || !bytes.Equal(got, state) {
			t.Fatalf("parts %v: %q %v", parts, got, err)
		}
		s.Close()
		editFile(t, path, func(tx *bolt.Tx) error {
			b, key := tx.Bucket(bucketCheckpoints), []byte("3")
			if parts {
				b, key = tx.Bucket(bucketHeadParts), headPartKey("3", 1, 1)
			}
			v := bytes.Clone(b.Get(key))
			i := bytes.Index(v, []byte("45"))
			if i < 0 {
				i = len(v) - 2
			}
			v[i] = '9' // 45 seconds became 95: same length, still JSON
			return b.Put(key, v)
		})
		ro := openFile(t, path, Options{ReadOnly: true})
		if _, _, err := ro.LoadCheckpoint(ctx, "3"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "does not hash to its stored sum") {
			t.Fatalf("parts %v, a damaged state: %v", parts, err)
		}
		ro.Close()
	}

	// Saved before the sum: the seq, then the state.
	s, path := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	editFile(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCheckpoints).Put([]byte("3"), append(binary.BigEndian.AppendUint64(nil, 1), "old head"...))
	})
	ro := openFile(t, path, Options{ReadOnly: true})
	if seq, got, err := ro.LoadCheckpoint(ctx, "3"); err != nil || seq != 1 || string(got) != "old head" {
		t.Fatalf("a checkpoint without a sum: %d %q %v", seq, got, err)
	}
}

// A checkpoint saved after the ledger's head (events lost, or hidden by a
// damaged page: a walk cut a branch page's count) marks the store damaged
// as it is opened: its readers must refuse it, appends are refused.
func TestCheckpointAfterTheHeadIsDamage(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	jsAppend(t, s, 30)
	if err := s.SaveCheckpoint(ctx, "3", 30, []byte("head"), nil); err != nil {
		t.Fatal(err)
	}
	if s.Damaged() != nil {
		t.Fatalf("a whole store: %v", s.Damaged())
	}
	s.Close()
	editFile(t, path, func(tx *bolt.Tx) error {
		for seq := uint64(21); seq <= 30; seq++ {
			if err := tx.Bucket(bucketEvents).Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, ro := range []bool{true, false} {
		st, err := Open(path, Options{ReadOnly: ro})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Damaged(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "the ledger ends at seq 20, but a checkpoint of it was saved at seq 30") {
			t.Fatalf("read-only %v: %v", ro, err)
		}
		if !ro {
			if _, err := st.Append(ctx, cmd("x")); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("an append to a ledger that lost its tail: %v", err)
			}
		}
		if rep, err := st.Verify(ctx); err != nil || rep.OK || rep.FirstBad != 21 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
		st.Close()
	}
}
