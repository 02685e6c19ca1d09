package ingest_test

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
)

// A ledger changed in its file: GET /v1/verify answers 200 with ok false,
// the first changed event and the problem (a report, not a failed
// request), and /readyz names the broken chain from then on (the server
// stays ready: docs/replay.md, "Verify and restore"). A verify
// or a page of events that cannot read the ledger at all is a 503.
func TestVerifyNamesTheFirstChangedEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := newStackAt(t, path, nil, keepOptions)
	s.configure()
	for range 3 {
		s.form("tag", "sender_id=jdoe") // seqs 2 to 4
	}
	s = reopenChanged(s, path, 3)
	r := s.must(200, "GET", "/v1/verify", "", "")
	if r.JSON["ok"] != false || r.JSON["first_bad"] != 3.0 || r.JSON["events"] != 2.0 || r.str("problem") == "" {
		t.Fatalf("verify of a changed ledger: %s", r.Raw)
	}
	if r := s.must(200, "GET", "/readyz", "", ""); !strings.Contains(r.str("chain_problem"), "hash chain broken at seq 3") {
		t.Errorf("readyz after a broken chain was found: %s", r.Raw)
	}
	s.store.Close()
	for _, path := range []string{"/v1/verify", "/v1/events"} {
		if r := s.must(503, "GET", path, "", ""); r.str("reason") != "unavailable" {
			t.Errorf("%s of a closed ledger: %s", path, r.Raw)
		}
	}
}

// keepOptions leaves a stack's options as they are.
func keepOptions(*ingest.Options, *ledger.Store) {}

// reopenChanged stops s, changes the event at seq in its ledger file at
// path (a "jdoe" written as "jdoX") and serves the file again.
func reopenChanged(s *stack, path string, seq uint64) *stack {
	t := s.t
	t.Helper()
	s.srv.Close()
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		k := binary.BigEndian.AppendUint64(nil, seq)
		v := []byte(strings.Replace(string(b.Get(k)), `"jdoe"`, `"jdoX"`, 1))
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	return newStackAt(t, path, nil, keepOptions)
}

// TestTheCheckAtStartNamesABrokenChain: the check of the hash chain that
// a start runs in the background (the start folds only the events after
// its checkpoint) finds an event changed in the file, and /readyz names
// it before anyone asks GET /v1/verify; the server stays ready.
func TestTheCheckAtStartNamesABrokenChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := newStackAt(t, path, nil, keepOptions)
	s.configure()
	s.form("tag", "sender_id=jdoe")
	s = reopenChanged(s, path, 2)
	if r := s.must(200, "GET", "/readyz", "", ""); r.str("chain_problem") != "" {
		t.Fatalf("readyz before the check: %s", r.Raw)
	}
	if err := s.api.CheckChain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := s.must(200, "GET", "/readyz", "", ""); !strings.Contains(r.str("chain_problem"), "hash chain broken at seq 2") {
		t.Errorf("readyz after the check at start: %s", r.Raw)
	}
}
