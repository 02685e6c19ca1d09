package ledger

import (
	"errors"
	"os"
	"path/filepath"
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
