package ingest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
)

// failingCheckpoints stands for the checkpointer whose saves fail.
type failingCheckpoints struct{ err error }

func (f failingCheckpoints) Problem() error { return f.err }

// /readyz names failing checkpoint saves (a full disk showed only in a
// log line a minute), and stays ready: the ledger takes writes.
func TestReadyzNamesFailingCheckpoints(t *testing.T) {
	s := newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) {
		o.Checkpoints = failingCheckpoints{errors.New("checkpoint saves fail since 2026-12-01T04:00:00Z: no space left on device")}
	})
	r := s.must(200, "GET", "/readyz", "", "")
	if r.JSON["ready"] != true || !strings.Contains(r.str("checkpoint_problem"), "no space left") {
		t.Errorf("/readyz with failing checkpoints: %s", r.Raw)
	}
	s = newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) { o.Checkpoints = failingCheckpoints{} })
	if r := s.must(200, "GET", "/readyz", "", ""); strings.Contains(r.Raw, "checkpoint_problem") {
		t.Errorf("/readyz with checkpoints saved: %s", r.Raw)
	}
}

// outboxBehind stands for an outbox whose stream stopped continuing the
// ledger.
type outboxBehind struct {
	lag uint64
	err error
}

func (o outboxBehind) Lag() uint64     { return o.lag }
func (o outboxBehind) Mismatch() error { return o.err }

// /readyz shows the outbox's lag and its problem: an administrator sees
// the mirror fall behind, and why, while the server stays ready (the
// ledger is the durable copy).
func TestReadyzNamesTheOutboxProblem(t *testing.T) {
	s := newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) {
		o.Health = outboxBehind{lag: 7, err: errors.New("the events stream was deleted")}
	})
	r := s.must(200, "GET", "/readyz", "", "")
	if r.JSON["ready"] != true || r.JSON["outbox_lag"] != 7.0 || !strings.Contains(r.str("outbox_problem"), "stream was deleted") {
		t.Errorf("/readyz with the outbox behind: %s", r.Raw)
	}
}
