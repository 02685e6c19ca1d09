package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// cancelAfter is a context whose Err reports nil for its first n calls
// and context.Canceled from then on: a shutdown that comes at a given
// step of a long save, without any timing.
type cancelAfter struct {
	context.Context
	n     int64
	calls atomic.Int64
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) > c.n {
		return context.Canceled
	}
	return nil
}

// commits is the number of bbolt write transactions committed so far.
func commits(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestACancelledCheckpointSaveKeepsTheOneBefore stops a save at each of
// its steps in turn (the server shutting down while it writes a large
// state in parts). A save checks its context before each of its
// transactions, so a cancelled one fails with the context's error, and
// the checkpoint it was to replace still loads whole, with the sections
// it names, the one the new save retires included. It guards the promise
// that a checkpoint is never stored without what it names: a save that
// went on after a cancel, or stored the checkpoint without its parts,
// would leave a restart a state that does not load.
func TestACancelledCheckpointSaveKeepsTheOneBefore(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	jsAppend(t, s, 12)
	s.sectionTxBytes = 100
	if err := s.SaveCheckpoint(ctx, "3", 1, []byte("head 1"), []Section{{Key: "3/a", Data: []byte("the old section")}}); err != nil {
		t.Fatal(err)
	}
	// A section retired by the new save, three new sections (two
	// transactions of their own, the last goes with the checkpoint) and
	// a head of three parts: six transactions, each after a check.
	secs := []Section{{Key: "3/a", Drop: true}}
	for i := range 3 {
		secs = append(secs, Section{Key: fmt.Sprintf("3/b/%d", i), Data: bytes.Repeat([]byte{'b'}, 60)})
	}
	// A save of one transaction checks too.
	if err := s.SaveCheckpoint(&cancelAfter{Context: ctx}, "3", 12, []byte("small"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("a small save, cancelled: %v", err)
	}
	head := bytes.Repeat([]byte("h"), 250)
	const steps = 6
	for n := range int64(steps) {
		err := s.SaveCheckpoint(&cancelAfter{Context: ctx, n: n}, "3", 12, head, secs)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a save cancelled after %d of its %d steps: %v", n, steps, err)
		}
		seq, state, err := s.LoadCheckpoint(ctx, "3")
		if err != nil || seq != 1 || string(state) != "head 1" {
			t.Fatalf("cancelled after %d steps, the checkpoint before: seq %d %q %v", n, seq, state, err)
		}
		if got, err := s.Section(ctx, "3/a"); err != nil || string(got) != "the old section" {
			t.Fatalf("cancelled after %d steps, the section the checkpoint before names: %q %v", n, got, err)
		}
	}
	// Parts a cancelled save left, of a later seq than the next save's,
	// go with that save (any seq up to the head may be saved).
	if err := s.SaveCheckpoint(ctx, "3", 1, []byte("head 1"), nil); err != nil {
		t.Fatal(err)
	}
	var left []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketHeadParts); b != nil {
			_ = b.ForEach(func(k, _ []byte) error { left = append(left, string(k)); return nil })
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("parts no checkpoint names were kept: %q", left)
	}
	if err := s.SaveCheckpoint(&cancelAfter{Context: ctx, n: steps}, "3", 12, head, secs); err != nil {
		t.Fatalf("a save not cancelled: %v", err)
	}
	if seq, state, err := s.LoadCheckpoint(ctx, "3"); err != nil || seq != 12 || !bytes.Equal(state, head) {
		t.Fatalf("the new checkpoint: seq %d, %d bytes, %v", seq, len(state), err)
	}
	if _, err := s.Section(ctx, "3/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the retired section: %v", err)
	}
}

// TestCheckpointSectionsFillEachTransactionToItsShare counts the write
// transactions of saves: sections are packed up to the share of one
// transaction (inclusive), the last pack goes with the checkpoint, and a
// head of exactly one share is one value while a longer one takes one
// part a share. It guards what the parts are for: a save that wrote
// every section in the checkpoint's transaction would hold bbolt's write
// lock, and so every append, for a GiB after a rebuild; one that wrote a
// transaction too many, or an empty part, only costs fsyncs.
func TestCheckpointSectionsFillEachTransactionToItsShare(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	jsAppend(t, s, 5)
	s.sectionTxBytes = 100
	five := func(v string) []Section {
		var secs []Section
		for i := range 5 {
			secs = append(secs, Section{Key: fmt.Sprintf("%s/s/%d", v, i), Data: bytes.Repeat([]byte{'s'}, 50)})
		}
		return secs
	}
	for _, c := range []struct {
		name    string
		version string
		head    int
		secs    []Section
		commits int
	}{
		{"five sections of half a share", "3", 10, five("3"), 3},         // [50 50] [50 50], then [50] with the checkpoint
		{"a head of exactly one share", "3", 100, nil, 1},                // one value
		{"a head of exactly two shares", "3", 200, nil, 3},               // two parts, then the checkpoint
		{"a head a byte over two shares", "3", 201, nil, 4},              // three parts
		{"sections and a head in parts", "4", 150, five("4"), 2 + 2 + 1}, // two packs, two parts, the checkpoint
	} {
		before := commits(t, s)
		head := bytes.Repeat([]byte{'h'}, c.head)
		if err := s.SaveCheckpoint(ctx, c.version, 5, head, c.secs); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := commits(t, s) - before; got != c.commits {
			t.Errorf("%s: %d transactions, want %d", c.name, got, c.commits)
		}
		if _, state, err := s.LoadCheckpoint(ctx, c.version); err != nil || !bytes.Equal(state, head) {
			t.Fatalf("%s: loaded %d bytes, %v", c.name, len(state), err)
		}
	}
}

// TestASectionBboltRefusesFailsTheSave: a section bbolt cannot store (a
// key over its limit), in a transaction of its own or in the
// checkpoint's, fails the save, and the checkpoint before stays. A save
// that ignored the refusal would store a checkpoint naming a section the
// file does not have: every restart would then throw the checkpoint away
// and fold the whole ledger.
func TestASectionBboltRefusesFailsTheSave(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	jsAppend(t, s, 2)
	s.sectionTxBytes = 100
	if err := s.SaveCheckpoint(ctx, "3", 1, []byte("head 1"), nil); err != nil {
		t.Fatal(err)
	}
	huge := Section{Key: "3/" + strings.Repeat("k", bolt.MaxKeySize), Data: []byte("x")}
	ok := Section{Key: "3/ok", Data: bytes.Repeat([]byte{'o'}, 100)}
	for name, secs := range map[string][]Section{
		"with the checkpoint":     {huge},
		"in a transaction before": {huge, ok},
	} {
		if err := s.SaveCheckpoint(ctx, "3", 2, []byte("head 2"), secs); err == nil {
			t.Fatalf("%s: a section bbolt refuses was saved", name)
		}
		if seq, state, err := s.LoadCheckpoint(ctx, "3"); err != nil || seq != 1 || string(state) != "head 1" {
			t.Fatalf("%s: the checkpoint before: %d %q %v", name, seq, state, err)
		}
	}
}

// TestTheFirstCheckpointOfAVersionDropsAVersionItsNamePrefixes: an older
// build ("1") started on a data dir a newer one ("16") checkpointed
// drops the newer version's checkpoint and sections with its first save,
// though "16/..." starts with "1". Kept, they would be a second copy of
// the history's size that nothing reads again.
func TestTheFirstCheckpointOfAVersionDropsAVersionItsNamePrefixes(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	jsAppend(t, s, 2)
	if err := s.SaveCheckpoint(ctx, "16", 1, []byte("newer"), []Section{{Key: "16/m/2026-11-30", Data: []byte("manifest")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "1", 2, []byte("older"), []Section{{Key: "1/m/2026-11-30", Data: []byte("manifest")}}); err != nil {
		t.Fatal(err)
	}
	if sizes, err := s.SectionSizes(ctx, []string{"16/m/2026-11-30", "1/m/2026-11-30"}); err != nil || sizes[0] != -1 || sizes[1] != 8 {
		t.Fatalf("sections after the older build's save: %v %v", sizes, err)
	}
	if v, err := s.CheckpointVersions(ctx); err != nil || len(v) != 1 || v[0] != "1" {
		t.Fatalf("versions: %q %v", v, err)
	}
	if err := s.SaveCheckpoint(ctx, "", 2, []byte("x"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a checkpoint without a version: %v", err)
	}
}

// putCheckpointValue stores v as version's checkpoint, and parts under
// their keys, as a file written by an older build or damaged would hold
// them; noParts removes the parts' bucket.
func putCheckpointValue(t *testing.T, path, version string, v []byte, parts map[string][]byte, noParts bool) *Store {
	t.Helper()
	editFile(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketCheckpoints).Put([]byte(version), v); err != nil {
			return err
		}
		if noParts {
			if err := tx.DeleteBucket(bucketHeadParts); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(bucketHeadParts)
		if err != nil {
			return err
		}
		for k, p := range parts {
			if err := b.Put([]byte(k), p); err != nil {
				return err
			}
		}
		return nil
	})
	return openFile(t, path, Options{ReadOnly: true})
}

// TestACheckpointValueThatDoesNotHoldTogetherIsCorrupt reads checkpoint
// values a damaged file, or a build before the state's SHA-256 (parts
// came a day earlier), holds: cut short, or in parts that do not add up.
// Each is ErrCorrupt about the checkpoint, so the start folds the events,
// never a short or long state, and never "the file is damaged", which
// sends an administrator to rebuild the whole data dir from the mirror.
// A whole parted checkpoint without a sum still loads.
func TestACheckpointValueThatDoesNotHoldTogetherIsCorrupt(t *testing.T) {
	ctx := context.Background()
	seq := binary.BigEndian.AppendUint64(nil, 1)
	parted := func(n, total uint64) []byte {
		v := append(bytes.Clone(seq), headPartsMarker...)
		return binary.AppendUvarint(binary.AppendUvarint(v, n), total)
	}
	key := func(i int) string { return string(headPartKey("3", 1, i)) }
	for _, c := range []struct {
		name    string
		v       []byte
		parts   map[string][]byte
		noParts bool
		want    string // "" for a checkpoint that loads
	}{
		{"seven bytes", seq[:7], nil, false, "7 bytes"},
		{"a sum cut short", append(append(bytes.Clone(seq), headSumMarker...), "0123456789"...), nil, false, "cut short"},
		{"parts without a sum", parted(2, 10), map[string][]byte{key(0): []byte("01234"), key(1): []byte("56789")}, false, ""},
		{"a part shorter", parted(2, 10), map[string][]byte{key(0): []byte("01234"), key(1): []byte("5678")}, false, "has 9 bytes in its parts, not 10"},
		{"a part missing", parted(2, 10), map[string][]byte{key(0): []byte("01234")}, false, "part 1 of 2"},
		{"no parts at all", parted(2, 10), nil, true, "part 0 of 2"},
	} {
		s, path := openTest(t, Options{})
		jsAppend(t, s, 1)
		s.Close()
		ro := putCheckpointValue(t, path, "3", c.v, c.parts, c.noParts)
		_, state, err := ro.LoadCheckpoint(ctx, "3")
		if c.want == "" {
			if err != nil || string(state) != "0123456789" {
				t.Fatalf("%s: %q %v", c.name, state, err)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) || errors.Is(err, errDamaged) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want ErrCorrupt saying %q", c.name, err, c.want)
		}
	}
	// A summed checkpoint with a part missing says which part, not only
	// that the state does not hash to its sum.
	s, _ := openTest(t, Options{})
	jsAppend(t, s, 1)
	s.sectionTxBytes = 10
	if err := s.SaveCheckpoint(ctx, "3", 1, bytes.Repeat([]byte{'x'}, 25), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketHeadParts).Delete(headPartKey("3", 1, 1)) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadCheckpoint(ctx, "3"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "part 1 of 3") {
		t.Fatalf("a summed checkpoint missing a part: %v", err)
	}
}

// TestALoadedSectionIsACopy: the bytes Section returns are the caller's,
// not bbolt's mapping of the file, which Close (or a remap after a
// growing append) takes away while a query still reads them.
func TestALoadedSectionIsACopy(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	jsAppend(t, s, 1)
	want := bytes.Repeat([]byte("cold contacts of a sealed day "), 4<<10) // larger than a page
	if err := s.SaveCheckpoint(ctx, "3", 1, []byte("head"), []Section{{Key: "3/c/1/2026-11-30", Data: want}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Section(ctx, "3/c/1/2026-11-30")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the section read changed after Close")
	}
}

// TestCheckpointReadsOfAClosedOrCancelledCallSayWhy: LoadCheckpoint,
// CheckpointVersions, Section and SectionSizes on a closed store fail
// with ErrClosed, and with a cancelled context fail with its error. A
// closed store's "no checkpoint" or "no section" would make a caller
// fold the ledger from seq 1 or report a section missing, and empty
// sizes would pass for a file without the sections.
func TestCheckpointReadsOfAClosedOrCancelledCallSayWhy(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	jsAppend(t, s, 1)
	if err := s.SaveCheckpoint(ctx, "3", 1, []byte("head"), []Section{{Key: "3/m/x", Data: []byte("m")}}); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	check := func(what string, want error) {
		t.Helper()
		c := ctx
		if want == context.Canceled {
			c = cancelled
		}
		if _, _, err := s.LoadCheckpoint(c, "3"); !errors.Is(err, want) {
			t.Errorf("%s: load checkpoint: %v", what, err)
		}
		if _, err := s.CheckpointVersions(c); !errors.Is(err, want) {
			t.Errorf("%s: checkpoint versions: %v", what, err)
		}
		if _, err := s.Section(c, "3/m/x"); !errors.Is(err, want) {
			t.Errorf("%s: section: %v", what, err)
		}
		if _, err := s.SectionSizes(c, []string{"3/m/x"}); !errors.Is(err, want) {
			t.Errorf("%s: section sizes: %v", what, err)
		}
	}
	check("cancelled", context.Canceled)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed", ErrClosed)
}
