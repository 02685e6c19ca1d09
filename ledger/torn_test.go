package ledger

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A copy of a ledger taken while a server wrote it (cp reads the meta
// pages first, the pages they name later, after the server reused them)
// is refused read-only too, with ErrCorrupt and the way out: it used to
// pass for an empty, valid ledger, and verify said "ok: 0 events". So is a
// bbolt file that holds no events bucket.
func TestReadOnlyOpenRefusesATornCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 3000)
	early, err := os.ReadFile(path) // the meta pages, as cp reads them first
	if err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 6000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	late, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	torn := append(append([]byte(nil), early[:2*pageSize]...), late[2*pageSize:]...)
	tornPath := filepath.Join(dir, "torn.db")
	if err := os.WriteFile(tornPath, torn, 0o600); err != nil {
		t.Fatal(err)
	}

	other := filepath.Join(dir, "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("notes")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, p := range []string{tornPath, other} {
		ro, err := Open(p, Options{ReadOnly: true})
		if err == nil {
			rep, verr := ro.Verify(t.Context())
			ro.Close()
			if verr == nil && rep.OK {
				t.Errorf("%s: opened read-only, verify ok with %d events", filepath.Base(p), rep.Events)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", filepath.Base(p), err)
		}
	}
}

// A file whose free-page list names a page beyond its end (as a copy
// taken while a server wrote it can have, with every event readable) is
// refused as corrupt, read-only and for writing: bbolt handed that page
// out to the first commit and panicked ("pgid above high water mark"),
// crashing serve and restore on their first write.
func TestOpenRefusesAFreelistBeyondTheFile(t *testing.T) {
	path := closedLedger(t, 3000)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m0, ok0 := readBoltMeta(f, 0)
	m1, ok1 := readBoltMeta(f, pageSize)
	if !ok0 || !ok1 {
		t.Fatal("no valid meta pages")
	}
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	if err := checkFreelist(f, m); err != nil {
		t.Fatalf("a sound file: %v", err)
	}
	// One more free page, the one at the high water mark.
	var h [boltPageHeader]byte
	off := int64(m.freelist) * pageSize
	if _, err := f.ReadAt(h[:], off); err != nil {
		t.Fatal(err)
	}
	count := binary.LittleEndian.Uint16(h[10:])
	if count == 0xFFFF {
		t.Skip("a free-page list of 65,535 pages or more")
	}
	binary.LittleEndian.PutUint16(h[10:], count+1)
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], m.pgid)
	if _, err := f.WriteAt(h[:], off); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(id[:], off+boltPageHeader+int64(count)*8); err != nil {
		t.Fatal(err)
	}
	f.Close()
	refusedAtOpen(t, path)
}

// refusedAtOpen checks that the file at path is refused as it is opened,
// read-only and for writing, with ErrCorrupt and the way out.
func refusedAtOpen(t *testing.T, path string) {
	t.Helper()
	for _, ro := range []bool{true, false} {
		s, err := Open(path, Options{ReadOnly: ro})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "recledger restore") {
			t.Errorf("read-only %v: %v, want ErrCorrupt and the way out", ro, err)
		}
	}
}
