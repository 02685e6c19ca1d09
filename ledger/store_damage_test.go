package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A file whose last page of events bbolt cannot trust (it names itself
// another page: bbolt panics reading it) is refused as it is opened,
// read-only and for writing, with ErrCorrupt and the way out. It is not
// taken as a ledger whose tail merely does not decode: that store would
// open, and serve or replay a head it never read.
func TestAFileWhoseLastEventsPageIsDamagedIsRefusedAtOpen(t *testing.T) {
	path := damagedLedger(t, func(t *testing.T, data []byte, m boltMeta) []byte {
		br := eventsBranch(t, data, m)
		last := pageOf{data, br.child(br.count() - 1)}
		binary.LittleEndian.PutUint64(last.b(), 7777)
		return data
	})
	refusedAtOpen(t, path)
}

// A file cut short under a store that has it open (a disk full, a file
// replaced in place) makes a read past its new end fault: the read is an
// error wrapping ErrCorrupt and verify says the file is damaged, not the
// end of the process.
func TestAFileCutShortUnderAReaderIsAnErrorNotACrash(t *testing.T) {
	path := closedLedger(t, 3000)
	s := openFile(t, path, Options{ReadOnly: true})
	if err := os.Truncate(path, 3*pageSize); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || rep.OK || !strings.Contains(rep.Problem, "the file is damaged") {
		t.Fatalf("verify of a file cut short under it: %+v %v", rep, err)
	}
	if _, err := s.Get(t.Context(), 2000); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get of an event past the cut: %v", err)
	}
}

// A last key that is not the last event (one of another size, or seq 10
// holding seq 9's event) opens, with the damage named: Damaged says what
// it is, appends are refused rather than extend the chain from a hash
// read off another key, and verify fails.
func TestATailThatIsNotTheLastEventRefusesAppends(t *testing.T) {
	for _, c := range []struct {
		name, want string
		fn         func(b *bolt.Bucket) error
	}{
		{"a key of 4 bytes", "key of 4 bytes", func(b *bolt.Bucket) error { return b.Put([]byte("tail"), []byte("x")) }},
		{"seq 10 holding seq 9", "key 10 holds seq 9", func(b *bolt.Bucket) error {
			return b.Put(seqKey(10), bytes.Clone(b.Get(seqKey(9))))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, path := tenEvents(t)
			s = tamper(t, s, path, c.fn)
			if err := s.Damaged(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("damaged: %v, want %q", err, c.want)
			}
			if _, err := s.Append(t.Context(), cmd("more")); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("append: %v", err)
			}
			if rep, err := s.Verify(t.Context()); err != nil || rep.OK {
				t.Fatalf("verify: %+v %v", rep, err)
			}
		})
	}
}

// A directory where the ledger file goes is said to be one, read-only
// as for writing: not a damaged ledger to rebuild from the mirror.
func TestADirectoryIsNotALedgerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{true, false} {
		s, err := Open(path, Options{ReadOnly: ro})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("read-only %v: %v, want it named a directory", ro, err)
		}
	}
}
