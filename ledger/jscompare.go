package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// compareBuffer is how many stream events may wait for their bbolt twin.
const compareBuffer = 4096

// CompareJetStream walks the store and the site's events in the stream side
// by side and names the first difference: a missing or extra event, a
// different id, different bytes, or a stream that is not a chain. OK=false
// is a finding (FirstBad, Problem), not an error; errors are I/O. Events is
// how many events both copies agree on; Head is the hash of the last of
// them (the store's head when OK, the mirror's when it is behind).
// Neither copy is held in memory: the stream is read by a second goroutine
// into a bounded channel. Each side is read up to its head at the call, so
// on a live ledger the outbox's lag shows as "stream ends": compare a
// quiescent ledger, or one whose outbox reports no lag. Messages on the
// site's subjects that are not events are stepped over and counted
// (Foreign).
func CompareJetStream(ctx context.Context, store *Store, js jetstream.JetStream, site string) (VerifyReport, error) {
	var foreign atomic.Uint64
	rep, err := compareJetStream(ctx, store, js, site, &foreign)
	rep.Foreign = foreign.Load() // the stream's reader is done
	return rep, err
}

// compareJetStream is CompareJetStream counting foreign messages.
func compareJetStream(ctx context.Context, store *Store, js jetstream.JetStream, site string, foreign *atomic.Uint64) (VerifyReport, error) {
	headSeq, _ := store.Head()
	var rep VerifyReport
	bad := func(seq uint64, format string, args ...any) error {
		rep.FirstBad, rep.Problem = seq, fmt.Sprintf(format, args...)
		return errStopCompare
	}

	var streamErr error
	// streamFault reports the stream reader's error at seq: a finding when
	// the stream is not a chain, else an I/O error.
	streamFault := func(seq uint64) error {
		if errors.Is(streamErr, ErrChainBroken) || errors.Is(streamErr, ErrCorrupt) {
			return bad(seq, "stream: %v", streamErr)
		}
		return streamErr
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	ch := make(chan Envelope, compareBuffer)
	g.Go(func() error {
		defer close(ch)
		streamErr = ScanJetStreamNoting(gctx, js, site, 0, func(e Envelope) error {
			select {
			case ch <- e:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}, func(uint64) { foreign.Add(1) })
		return nil
	})

	err := store.Scan(ctx, 0, func(e Envelope) error {
		if want := rep.Events + 1; e.Seq != want {
			// Its key gone from the file: the scan steps over it. The
			// ledger is damaged there, not the mirror.
			return fmt.Errorf("seq %d: %w: not in the ledger file, which goes on at seq %d", want, ErrCorrupt, e.Seq)
		}
		j, ok := <-ch
		if !ok {
			// The stream's reader is done: streamErr is set (close happens after).
			if streamErr != nil {
				return streamFault(e.Seq)
			}
			rep.Behind = true
			return bad(e.Seq, "the stream ends at seq %d; the ledger goes on to seq %d", rep.Events, headSeq)
		}
		switch {
		case j.Seq != e.Seq:
			return bad(e.Seq, "stream has seq %d where the ledger has seq %d", j.Seq, e.Seq)
		case j.ID != e.ID:
			return bad(e.Seq, "seq %d: stream id %s, ledger id %s", e.Seq, j.ID, e.ID)
		case !bytes.Equal(j.Raw, e.Raw):
			return bad(e.Seq, "seq %d: stream bytes differ from the ledger's", e.Seq)
		}
		rep.Events++
		rep.Head = e.Hash
		return nil
	})
	if errors.Is(err, errStopCompare) {
		cancel()
		_ = g.Wait()
		return rep, nil
	}
	if (errors.Is(err, ErrCorrupt) || errors.Is(err, ErrChainBroken)) && ctx.Err() == nil {
		// The ledger's own copy cannot be read here (its chain check
		// names it too): a finding, and the mirror is read on, so that
		// the report says whether it holds a whole copy to rebuild the
		// ledger from. (Reported as an error, it hid every check's line,
		// and named the mirror as the damaged copy: walks.)
		seq, last := rep.Events+1, rep.Events
		for j := range ch {
			last = j.Seq
		}
		_ = g.Wait()
		rep.FirstBad, rep.LedgerDamaged = seq, true
		switch {
		case streamErr != nil:
			rep.Problem = fmt.Sprintf("the ledger's event at seq %d cannot be read (%v); the mirror is damaged too: %v", seq, err, streamErr)
		case last < headSeq:
			rep.Problem = fmt.Sprintf("the ledger's event at seq %d cannot be read (%v); the mirror, whole and chained, ends at seq %d, before the ledger's head %d", seq, err, last, headSeq)
		default:
			rep.Restorable = true
			rep.Problem = fmt.Sprintf("the ledger's event at seq %d cannot be read (%v); the mirror holds every event to seq %d, whole and chained", seq, err, last)
		}
		return rep, nil
	}
	if err != nil {
		cancel()
		_ = g.Wait()
		return rep, fmt.Errorf("compare jetstream: %w", err)
	}
	if j, ok := <-ch; ok {
		rep.Ahead = true
		bad(j.Seq, "stream has seq %d beyond the ledger's head %d", j.Seq, rep.Events)
		cancel()
		_ = g.Wait()
		return rep, nil
	}
	_ = g.Wait()
	if streamErr == nil {
		rep.OK = true
		return rep, nil
	}
	if err := streamFault(rep.Events + 1); !errors.Is(err, errStopCompare) {
		return rep, fmt.Errorf("compare jetstream: %w", err)
	}
	return rep, nil
}

// errStopCompare ends the ledger scan at the first difference.
var errStopCompare = errors.New("stop compare")
