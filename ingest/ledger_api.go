package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/recledger/recledger/ledger"
)

// The ledger itself on the read side: its events as stored, the hash-chain
// check and the projections' digest.

// Limits of GET /v1/events.
const (
	defaultEventsLimit = 1000
	maxEventsLimit     = 10000
)

// errStopScan ends a Scan early once the page is full.
var errStopScan = errors.New("page full")

// handleEvents serves GET /v1/events?after_seq=N&limit=M: the envelopes as
// stored, in ledger order, and the seq to continue after.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after_seq"), 0, "after_seq")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := uintParam(q.Get("limit"), defaultEventsLimit, "limit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if limit == 0 {
		s.writeError(w, r, newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("limit must be 1 to %d (more is taken as %d), got 0", maxEventsLimit, maxEventsLimit)).with("field", "limit"))
		return
	}
	limit = min(limit, maxEventsLimit)
	// seq is gapless and only grows: a cursor beyond the head comes from
	// another ledger (or one restored short of it), and an empty page
	// that hands it back would skip every event up to it unseen.
	if head, _ := s.events.Head(); after > head {
		s.writeError(w, r, newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("after_seq is beyond the ledger's head, seq %d: this cursor is not from this ledger", head)).with("field", "after_seq"))
		return
	}
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	next, n := after, uint64(0)
	err = s.events.Scan(r.Context(), after, func(e ledger.Envelope) error {
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(e.Raw)
		next, n = e.Seq, n+1
		if n >= limit {
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		s.writeError(w, r, fmt.Errorf("events: %w", err))
		return
	}
	fmt.Fprintf(&b, `],"next_after_seq":%d}`, next)
	b.WriteByte('\n')
	writeRawJSON(w, b.Bytes())
}

func uintParam(v string, def uint64, name string) (uint64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("%s must be a non-negative integer, got %q", name, v)).with("field", name)
	}
	return n, nil
}

// verifyReply is GET /v1/verify.
type verifyReply struct {
	OK       bool   `json:"ok"`
	Events   uint64 `json:"events"`
	Head     string `json:"head"`
	FirstBad uint64 `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// handleVerify serves GET /v1/verify: the hash chain checked end to end.
// A broken chain is a report (200, ok false), not a failure of the request.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	rep, err := s.events.Verify(r.Context())
	if err != nil && !rep.OK && rep.Problem == "" {
		s.writeError(w, r, fmt.Errorf("verify: %w", err))
		return
	}
	out := verifyReply{OK: rep.OK, Events: rep.Events, Head: rep.Head}
	if !rep.OK {
		s.noteChain(rep)
		out.FirstBad, out.Problem = rep.FirstBad, rep.Problem
	}
	s.writeJSON(w, http.StatusOK, out)
}

// handleDigest serves GET /v1/digest.
func (s *Server) handleDigest(w http.ResponseWriter, r *http.Request) {
	seq, digest := s.views.Digest()
	s.writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "digest": digest})
}
