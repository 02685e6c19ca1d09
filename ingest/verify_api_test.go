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
	keep := func(*ingest.Options, *ledger.Store) {}
	s := newStackAt(t, path, nil, keep)
	s.configure()
	for range 3 {
		s.form("tag", "sender_id=jdoe") // seqs 2 to 4
	}
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
		k := binary.BigEndian.AppendUint64(nil, 3)
		v := []byte(strings.Replace(string(b.Get(k)), `"jdoe"`, `"jdoX"`, 1))
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = newStackAt(t, path, nil, keep)
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
