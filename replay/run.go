package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// Options shapes one replay. The zero value replays everything from the
// empty state, quietly.
type Options struct {
	// Until stops the replay after the last event within the bound.
	Until Until
	// User filters the trace to the events that touched this user
	// (projections.Effect.Users); it does not change what is folded.
	User string
	// Trace, when set, receives one line per event (see TraceLine).
	Trace io.Writer
	// Progress, when set, is called with the seq of each folded event.
	Progress func(seq uint64)
	// From is the state to start from (e.g. a checkpoint); nil means
	// projections.New(). The replay continues after From.Seq() and
	// folds into From itself.
	From *projections.State
}

// Stats describes a finished replay.
type Stats struct {
	// After is the seq the replay started after (From's seq, else 0).
	After uint64
	// Events is how many events were folded.
	Events uint64
	// Last is the last event folded (zero when none).
	Last ledger.Envelope
	// Traced is how many trace lines were written.
	Traced uint64
}

// errUntil ends a Scan early once the Until bound is passed.
var errUntil = errors.New("replay: past the until bound")

// Run folds src's events into a state and returns it. It checks that the
// seqs continue without a gap from the start state, and stops at the first
// event the projections cannot understand (wrapping the projections' error,
// e.g. ledger.ErrUnknownVersion). On error the partial state and stats are
// returned too, so a caller can show how far it got.
func Run(ctx context.Context, src Source, opts Options) (*projections.State, Stats, error) {
	st := opts.From
	if st == nil {
		st = projections.New()
	}
	stats := Stats{After: st.Seq()}
	var tw *bufio.Writer
	if opts.Trace != nil {
		tw = bufio.NewWriterSize(opts.Trace, 64<<10)
	}
	next := stats.After + 1
	var line []byte
	err := src.Scan(ctx, stats.After, func(e ledger.Envelope) error {
		if opts.Until.Past(&e) {
			return errUntil
		}
		if e.Seq != next {
			return fmt.Errorf("replay: %w: expected seq %d, got %d", ledger.ErrChainBroken, next, e.Seq)
		}
		eff, err := st.Apply(&e)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		next++
		stats.Events++
		if tw != nil && (opts.User == "" || touches(eff, opts.User)) {
			line = AppendTraceLine(line[:0], &e, eff)
			line = append(line, '\n')
			if _, err := tw.Write(line); err != nil {
				return fmt.Errorf("replay: trace: %w", err)
			}
			stats.Traced++
		}
		if opts.Progress != nil {
			opts.Progress(e.Seq)
		}
		stats.Last = e
		return nil
	})
	if errors.Is(err, errUntil) {
		err = nil
	}
	if tw != nil {
		if ferr := tw.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("replay: trace: %w", ferr)
		}
	}
	if err != nil {
		return st, stats, err
	}
	if err := ctx.Err(); err != nil {
		return st, stats, fmt.Errorf("replay: %w", err)
	}
	return st, stats, nil
}

// touches reports whether the event's effect names user.
func touches(eff projections.Effect, user string) bool {
	for _, u := range eff.Users {
		if u == user {
			return true
		}
	}
	return eff.Result != nil && eff.Result.UserID == user
}
