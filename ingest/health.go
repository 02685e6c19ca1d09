package ingest

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Failer is implemented by a part that can fall into a failed state: the
// projections when an event could not be applied (projections.Live), the
// store if it reports one. /readyz reports the first such error, and also
// fails while the ledger refuses writes (the last Append failed with
// ErrClosed or ErrUnavailable).
type Failer interface {
	Err() error
}

// readyReply is GET /readyz.
type readyReply struct {
	Ready         bool   `json:"ready"`
	OutboxLag     uint64 `json:"outbox_lag"`
	HeadSeq       uint64 `json:"head_seq"`
	ProjectionSeq uint64 `json:"projection_seq"`
	Problem       string `json:"problem,omitempty"`
	// OutboxProblem is set when the JetStream copy does not continue this
	// ledger (the outbox stopped publishing), when an event is too large
	// for the NATS server, or when events wait and no publish has gone
	// through for 30 s (JetStream out of disk space, a stream it cannot
	// create, a server away): an operator must look. The ledger still
	// takes writes, so it does not make the server unready.
	OutboxProblem string `json:"outbox_problem,omitempty"`
	// ManifestLag is the number of sealed days whose manifest is not yet
	// known to be in the manifests stream.
	ManifestLag uint64 `json:"manifest_lag"`
	// ManifestProblem is set when sealed days wait and every publish of
	// their manifest has failed for 30 s (as OutboxProblem; the upload
	// workers get nothing meanwhile).
	ManifestProblem string `json:"manifest_problem,omitempty"`
	// ChainProblem is set when a check of the hash chain (CheckChain at
	// start, or GET /v1/verify) found it broken: an event was changed
	// after it was written. The server still appends, after the break; an
	// auditor must look (recledger verify names the event).
	ChainProblem string `json:"chain_problem,omitempty"`
	// CheckpointProblem is set while saves of the projections' checkpoint
	// fail (a full disk): the server serves from its ledger, but a
	// restart folds every event since the last one saved.
	CheckpointProblem string `json:"checkpoint_problem,omitempty"`
	// DamageProblem is set once a request met a damaged part of the
	// ledger file (it was answered 500, reason ledger_corrupt): a sealed
	// day's stored history whose bytes do not hash, a page bbolt cannot
	// read. What does not touch that part is served, and writes go on; an
	// administrator must look (recledger verify names it and the mend).
	DamageProblem string `json:"damage_problem,omitempty"`
	// Stopping is set once the server was told to stop: it still answers
	// what it is sent until its drain delay ends, but a load balancer
	// should send new work elsewhere.
	Stopping bool `json:"stopping,omitempty"`
}

// Stopping makes /readyz answer 503 (stopping) from now on, while every
// other request is still served: the server is about to stop, and a load
// balancer that asks /readyz sends new work elsewhere.
func (s *Server) Stopping() { s.stopping.Store(true) }

// handleHealthz serves GET /healthz: 200 while the process runs.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleReadyz serves GET /readyz: 200 when the ledger takes writes and
// the projections are healthy, 503 otherwise; both with the outbox lag.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	rep := s.ready()
	status := http.StatusOK
	if !rep.Ready {
		status = http.StatusServiceUnavailable
	}
	s.writeJSON(w, status, rep)
}

func (s *Server) ready() readyReply {
	var rep readyReply
	// Projections first: they follow the head, so read in this order they
	// can never look ahead of it.
	rep.ProjectionSeq = s.views.Seq()
	rep.HeadSeq, _ = s.events.Head()
	if s.health != nil {
		rep.OutboxLag = s.health.Lag()
		if err := s.health.Mismatch(); err != nil {
			rep.OutboxProblem = err.Error()
		}
	}
	if s.manifests != nil {
		rep.ManifestLag = s.manifests.Lag()
		if err := s.manifests.Problem(); err != nil {
			rep.ManifestProblem = err.Error()
		}
	}
	if p := s.chainProblem.Load(); p != nil {
		rep.ChainProblem = *p
	}
	if p := s.damageProblem.Load(); p != nil {
		rep.DamageProblem = *p
	}
	if s.checkpoints != nil {
		if err := s.checkpoints.Problem(); err != nil {
			rep.CheckpointProblem = err.Error()
		}
	}
	if s.stopping.Load() {
		rep.Stopping = true
		rep.Problem = "stopping: this server is about to stop (a signal, such as SIGTERM, told it to); send new work to another one"
		return rep
	}
	failed := s.writeErr.Load()
	if f, ok := s.app.(WriteFailer); ok && failed == nil {
		if err := f.WriteFailure(); err != nil {
			failed = &err // the server's own append (a timer, a seal)
		}
	}
	if failed != nil && !s.writableAgain(failed) {
		rep.Problem = "the ledger refused the last write: " + (*failed).Error()
		return rep
	}
	for _, part := range []any{s.app, s.events, s.views} {
		if f, ok := part.(Failer); ok {
			if err := f.Err(); err != nil {
				rep.Problem = err.Error()
				return rep
			}
		}
	}
	if rep.ProjectionSeq > rep.HeadSeq {
		rep.Problem = "projections are ahead of the ledger"
		return rep
	}
	rep.Ready = true
	return rep
}

// WriteFailer is an Appender that remembers its last failed write, by
// whoever appended it, until one commits (ledger.Store).
type WriteFailer interface {
	WriteFailure() error
}

// WriteProber is an Appender that can tell whether it takes writes
// without appending an event (ledger.Store).
type WriteProber interface {
	ProbeWrite(ctx context.Context) error
}

// probeEvery paces the write probes of /readyz: each is an fsync.
const probeEvery = time.Second

// writableAgain probes, at most once every probeEvery, whether the ledger
// that refused the last write (err) takes writes again, and clears err
// when it does: nothing else would, while a load balancer keeps requests
// away from a server that says it is not ready.
func (s *Server) writableAgain(err *error) bool {
	p, ok := s.app.(WriteProber)
	if !ok {
		return false
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if now := s.now(); now.Sub(s.lastProbe) >= probeEvery {
		s.lastProbe = now
		// Not the request's context: the probe's answer is shared (it
		// clears writeErr for every later caller), and a client that
		// hung up must not make it fail and hold the next one off for
		// probeEvery. Its own bound is the timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if p.ProbeWrite(ctx) == nil {
			if s.writeErr.CompareAndSwap(err, nil) {
				s.log.Info("the ledger takes writes again")
			}
			return true
		}
	}
	return false
}

// CheckChain verifies the ledger's hash chain once, from its first event,
// as GET /v1/verify does, and logs the result. serve runs it at start, in
// the background: the start replays only the events after the newest
// checkpoint, so an event changed before it would otherwise go unnoticed
// until someone asked. A broken chain shows on /readyz as chain_problem.
// It returns nil, also when ctx ends it.
func (s *Server) CheckChain(ctx context.Context) error {
	start := time.Now()
	rep, err := s.events.Verify(ctx)
	switch {
	case ctx.Err() != nil:
	case !rep.OK && (rep.FirstBad > 0 || rep.Problem != ""):
		s.noteChain(rep)
	case err != nil:
		s.log.Error("ledger chain not checked", logKeyErr, err)
	default:
		s.log.Info("ledger chain verified", logKeyEvents, rep.Events, logKeyTook, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// noteChain records and logs a broken chain.
func (s *Server) noteChain(rep ledger.VerifyReport) {
	p := fmt.Sprintf("hash chain broken at seq %d: %s; recledger verify --data DIR names it", rep.FirstBad, rep.Problem)
	if old := s.chainProblem.Swap(&p); old == nil || *old != p {
		s.log.Error("ledger chain broken: an event was changed after it was written", logKeySeq, rep.FirstBad, logKeyErr, rep.Problem)
	}
}
