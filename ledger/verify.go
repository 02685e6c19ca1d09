package ledger

import (
	"context"
	"errors"
	"fmt"
)

// VerifyReport is the outcome of Verify. OK=false is a finding, not an
// error: FirstBad is the first seq at fault and Problem says what is wrong.
type VerifyReport struct {
	OK       bool   `json:"ok"`
	Events   uint64 `json:"events"`
	Head     string `json:"head"`
	FirstBad uint64 `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Newer is the seq of the first event of a version newer than this
	// build reads (CurrentVersion): a newer build appended it, and this
	// build's serve refuses the ledger. The chain is checked all the same.
	Newer        uint64 `json:"newer_from,omitempty"`
	NewerVersion int    `json:"newer_version,omitempty"`
	// Foreign counts the messages on the site's event subjects of the
	// JetStream copy that are not events (jsforeign.go); they do not make
	// the copy differ.
	Foreign uint64 `json:"foreign_messages,omitempty"`
	// Behind is set, with OK false, when the JetStream copy holds the
	// ledger's first Events events, each equal to the ledger's, and
	// nothing after them: it lags (its outbox has not published the
	// rest), and nothing it holds differs.
	Behind bool `json:"behind,omitempty"`
	// LedgerDamaged is set, with OK false, when the ledger's own event at
	// FirstBad could not be read (the chain check fails there too);
	// Restorable then says that the JetStream copy holds every event to
	// the ledger's head, whole and chained: the ledger can be rebuilt
	// from it (recledger restore --from-jetstream).
	LedgerDamaged bool `json:"ledger_damaged,omitempty"`
	Restorable    bool `json:"restorable,omitempty"`
	// Ahead is set, with OK false, when the JetStream copy holds the
	// ledger's Events events, each equal, and more after them: the ledger
	// lost its tail, or all of it (a replaced file, an interrupted
	// restore, a copy older than its mirror's). recledger restore
	// --from-jetstream continues such a ledger.
	Ahead bool `json:"ahead,omitempty"`
}

// Verify recomputes the hash chain from seq 1 to the head at the time of
// the call: every stored value must decode, be its canonical encoding,
// hold the seq of its key with no gap, name the previous event's hash as
// prev, hash to its own hash, and have an ID after the previous one.
// Events counts the events that passed and Head is the last good hash. The
// error return is for I/O and cancellation only.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var (
		rep  VerifyReport
		prev Envelope
		bad  = func(seq uint64, format string, args ...any) error {
			rep.FirstBad, rep.Problem = seq, fmt.Sprintf(format, args...)
			return errStopVerify
		}
	)
	// The head at the call: events appended while the scan runs are left
	// for the next verify, and are not taken for a hole at the end.
	end, _ := s.Head()
	err := s.ScanRaw(ctx, 0, func(seq uint64, raw []byte) error {
		if seq > end && rep.Events == end {
			return errStopVerify
		}
		if seq != rep.Events+1 {
			if rep.Events == 0 {
				return bad(1, "missing: the ledger starts at seq %d", seq)
			}
			return bad(rep.Events+1, "missing: seq %d is followed by seq %d", rep.Events, seq)
		}
		e, err := Decode(raw)
		switch {
		case err != nil:
			return bad(seq, "%v", err)
		case !Canonical(e, raw):
			return bad(seq, "stored bytes are not the canonical encoding")
		case e.Seq != seq:
			return bad(seq, "key %d holds seq %d", seq, e.Seq)
		case e.Prev != prev.Hash:
			return bad(seq, "prev %q is not the hash of seq %d (%q)", e.Prev, prev.Seq, prev.Hash)
		case seq > 1 && e.ID.Compare(prev.ID) <= 0:
			return bad(seq, "id %s is not after %s", e.ID, prev.ID)
		}
		if e.Version > CurrentVersion && rep.Newer == 0 {
			rep.Newer, rep.NewerVersion = seq, e.Version
		}
		prev = e
		rep.Events, rep.Head = seq, e.Hash
		return nil
	})
	switch {
	case errors.Is(err, ErrCorrupt) && rep.Problem == "":
		// The file could not be read past rep.Events: a damaged page.
		bad(rep.Events+1, "the file is damaged after seq %d: %v; move it away and rebuild it from the mirror with recledger restore (docs/replay.md)", rep.Events, err)
	case err != nil && !errors.Is(err, errStopVerify):
		return rep, fmt.Errorf("verify: %w", err)
	}
	if b := s.broken.Load(); b != nil && rep.Problem == "" {
		bad(rep.Events+1, "%v", *b)
	}
	if rep.Problem == "" && rep.Events != end {
		bad(rep.Events+1, "missing: the ledger ends at seq %d, its head is %d", rep.Events, end)
	}
	rep.OK = rep.Problem == ""
	return rep, nil
}

// errStopVerify stops Verify's scan at the first problem.
var errStopVerify = errors.New("verify: stop at first problem")
