package ingest_test

import (
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// TestReadyzFailsWhenTheProjectionsStopped: projections that could not
// fold an event (one written by a newer version) stop there; /readyz
// answers 503 with their error, as every answer from them would be stale.
func TestReadyzFailsWhenTheProjectionsStopped(t *testing.T) {
	s := newStack(t, nil)
	s.must(200, "GET", "/readyz", "", "")
	s.live.OnCommit([]ledger.Envelope{{Seq: 1, Type: ledger.TypeCommand, Version: ledger.CurrentVersion + 1}})
	if r := s.must(503, "GET", "/readyz", "", ""); r.JSON["ready"] != false || !strings.Contains(r.str("problem"), "version") {
		t.Fatalf("readyz with stopped projections: %s", r.Raw)
	}
}

// TestReadyzFailsWhenTheProjectionsAreOneAhead: projections that hold an
// event the ledger does not (a checkpoint from a newer copy of the data)
// make the server unready, even when they are ahead by one event only.
func TestReadyzFailsWhenTheProjectionsAreOneAhead(t *testing.T) {
	newer := newStack(t, nil)
	newer.configure()
	env, err := newer.store.Get(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, nil)
	s.live.OnCommit([]ledger.Envelope{env})
	if r := s.must(503, "GET", "/readyz", "", ""); r.JSON["projection_seq"] != 1.0 || r.JSON["head_seq"] != 0.0 || r.str("problem") != "projections are ahead of the ledger" {
		t.Fatalf("readyz with projections one event ahead: %s", r.Raw)
	}
}

// TestACommandWhileTheProjectionsAreStoppedIsAnswered503: a command that
// comes after the projections stopped is recorded, but has no result to
// answer with: it is answered 503 unavailable (a server fault another
// server may not have), with the seq and event ID it was recorded at.
func TestACommandWhileTheProjectionsAreStoppedIsAnswered503(t *testing.T) {
	s := newStack(t, nil)
	s.live.OnCommit([]ledger.Envelope{{Seq: 1, Type: ledger.TypeCommand, Version: ledger.CurrentVersion + 1}})
	r := s.form("tag", "sender_id=jdoe")
	if r.Status != 503 || r.str("reason") != "unavailable" || r.JSON["seq"] != 1.0 || r.str("event_id") == "" {
		t.Fatalf("a command while the projections are stopped: %d %s", r.Status, r.Raw)
	}
	s.verified(1)
}
