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
	// Sections, when set, is where the ledger's sealed history may
	// already be stored (its own file, which serve's checkpoints fill):
	// after each seal, the sections the state cut that Sections holds at
	// the same length are dropped from memory and read back from there
	// (State.DropStored), so a replay from scratch holds about a day of
	// history, not all of it.
	Sections projections.SectionReader
	// CheckSections reads each section Sections holds before trusting it:
	// one whose bytes do not hash to the state's own stays in memory, for
	// the next checkpoint to write again (a rebuild mends damaged ones).
	CheckSections bool
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
	// TracedUser is how many of them named Options.User itself (not only
	// a change of what every user's rules read, Effect.All).
	TracedUser uint64
}

// errUntil ends a Scan early once the Until bound is passed.
var errUntil = errors.New("replay: past the until bound")

// Pipeline shape: the source is read (and its events decoded) by a second
// goroutine, in batches, while the caller's goroutine folds; on two cores
// decoding and folding overlap.
const (
	pipeBatch = 512 // events per hand-over
	pipeDepth = 4   // batches in flight
)

// Run folds src's events into a state and returns it. It checks that the
// seqs continue without a gap from the start state, and stops at the first
// event the projections cannot understand (wrapping the projections' error,
// e.g. ledger.ErrUnknownVersion). On error the partial state and stats are
// returned too, so a caller can show how far it got.
//
// The source is read by a goroutine that Run starts and always waits for
// before returning; Trace and Progress are called on the caller's goroutine.
func Run(ctx context.Context, src Source, opts Options) (*projections.State, Stats, error) {
	st := opts.From
	if st == nil {
		st = projections.New()
	}
	stats := Stats{After: st.Seq()}
	if opts.Trace == nil {
		// Nobody reads the change lines or the commands' answers: do not
		// build them.
		defer st.SetQuiet(st.SetQuiet(true))
		defer st.SetResults(st.SetResults(false))
	}
	var tw *bufio.Writer
	if opts.Trace != nil {
		tw = bufio.NewWriterSize(opts.Trace, 64<<10)
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []ledger.Envelope, pipeDepth)
	free := make(chan []ledger.Envelope, pipeDepth+2)
	var scanErr error
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(batches)
		buf := make([]ledger.Envelope, 0, pipeBatch)
		send := func() error {
			select {
			case batches <- buf:
			case <-sctx.Done():
				return sctx.Err()
			}
			select {
			case buf = <-free:
				buf = buf[:0]
			default:
				buf = make([]ledger.Envelope, 0, pipeBatch)
			}
			return nil
		}
		scanErr = src.Scan(sctx, stats.After, func(e ledger.Envelope) error {
			if opts.Until.Past(&e) {
				return errUntil
			}
			buf = append(buf, e)
			if len(buf) == pipeBatch {
				return send()
			}
			return nil
		})
		// What was read before the end, or before a bad event, is
		// folded: a replay that fails names the last good seq.
		if len(buf) > 0 && sctx.Err() == nil {
			if err := send(); err != nil && scanErr == nil {
				scanErr = err
			}
		}
	}()

	next := stats.After + 1
	var (
		line    []byte
		foldErr error
	)
	fold := func(e *ledger.Envelope) error {
		if e.Seq != next {
			return fmt.Errorf("replay: %w: expected seq %d, got %d", ledger.ErrChainBroken, next, e.Seq)
		}
		eff, err := st.Apply(e)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		next++
		stats.Events++
		stats.Last = *e // folded: what fails after this (sections, trace) fails after it
		if opts.Sections != nil && e.Type == ledger.TypeDayClosed {
			if _, err := st.DropStored(ctx, opts.Sections, opts.CheckSections); err != nil {
				return fmt.Errorf("replay: sealed history at the seal of seq %d: %w", e.Seq, err)
			}
		}
		if tw != nil && (opts.User == "" || touches(eff, opts.User)) {
			line = AppendTraceLine(line[:0], e, eff)
			line = append(line, '\n')
			if _, err := tw.Write(line); err != nil {
				return fmt.Errorf("replay: trace: %w", err)
			}
			stats.Traced++
			if opts.User != "" && touchesUser(eff, opts.User) {
				stats.TracedUser++
			}
		}
		if opts.Progress != nil {
			opts.Progress(e.Seq)
		}
		return nil
	}
	for b := range batches {
		for i := 0; i < len(b) && foldErr == nil; i++ {
			if foldErr = fold(&b[i]); foldErr != nil {
				cancel() // stop the reader; keep draining until it is gone
			}
		}
		select {
		case free <- b:
		default:
		}
	}
	<-scanned

	err := foldErr
	if err == nil && scanErr != nil && !errors.Is(scanErr, errUntil) {
		err = scanErr
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

// touches reports whether the event's effect names user, or concerns
// every user.
func touches(eff projections.Effect, user string) bool {
	return eff.All || touchesUser(eff, user)
}

// touchesUser reports whether the event's effect names user.
func touchesUser(eff projections.Effect, user string) bool {
	for _, u := range eff.Users {
		if u == user {
			return true
		}
	}
	return eff.Result != nil && eff.Result.UserID == user
}
