package replay_test

import (
	"context"
	"errors"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// On a ledger of many batches, a fold error or a cancellation stops the
// reader goroutine and Run returns at once with what was folded.
func TestRunStopsReaderOnErrorAndCancel(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	head, err := replaytest.Bulk(ctx, st, 6000, 20, 2500)
	if err != nil {
		t.Fatal(err)
	}
	_, stats, err := replay.Run(ctx, st, replay.Options{})
	if err != nil || stats.Events != head {
		t.Fatalf("whole: %d of %d, %v", stats.Events, head, err)
	}

	var read uint64
	bad := sourceFunc(func(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error {
		return st.Scan(ctx, after, func(e ledger.Envelope) error {
			read = e.Seq
			if e.Seq == 1500 {
				e.Version = ledger.CurrentVersion + 1
			}
			return fn(e)
		})
	})
	_, stats, err = replay.Run(ctx, bad, replay.Options{})
	if !errors.Is(err, ledger.ErrUnknownVersion) || stats.Last.Seq != 1499 {
		t.Fatalf("bad version: last %d, %v", stats.Last.Seq, err)
	}
	if read >= head {
		t.Fatalf("the reader went on to seq %d after the error", read)
	}

	cctx, cancel := context.WithCancel(ctx)
	_, stats, err = replay.Run(cctx, st, replay.Options{Progress: func(seq uint64) {
		if seq == 2000 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || stats.Events >= head {
		t.Fatalf("cancelled: %d events, %v", stats.Events, err)
	}

	// Until in the middle of a batch.
	_, stats, err = replay.Run(ctx, st, replay.Options{Until: replay.UntilSeq(3333)})
	if err != nil || stats.Events != 3333 || stats.Last.Seq != 3333 {
		t.Fatalf("until 3333: %d, %v", stats.Events, err)
	}
}

// A source that fails at one event leaves the events before it folded,
// also those read since the last hand-over, and the error names the damage.
func TestRunFoldsWhatCameBeforeADamagedEvent(t *testing.T) {
	d := writeDay(t, nil)
	st, stats, err := replay.Run(context.Background(), damagedAt{d.store, 32}, replay.Options{})
	if !errors.Is(err, ledger.ErrCorrupt) || stats.Events != 31 || stats.Last.Seq != 31 || st.Seq() != 31 {
		t.Fatalf("damaged at 32: %d events, last %d, state at %d, %v", stats.Events, stats.Last.Seq, st.Seq(), err)
	}
}

// A quiet replay (no trace) of a state given in From gives it back as it
// came: the live state that a start loads answers commands, with their
// change lines.
func TestRunGivesBackFromAsItCame(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	last := len(d.envs) - 1
	for d.envs[last].Type != ledger.TypeCommand {
		last--
	}
	from, _, err := replay.Run(ctx, d.store, replay.Options{Until: replay.UntilSeq(1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []replay.Options{{}, {From: from}} {
		opts.Until = replay.UntilSeq(d.envs[last].Seq - 1)
		st, _, err := replay.Run(ctx, d.store, opts)
		if err != nil {
			t.Fatal(err)
		}
		eff, err := st.Apply(&d.envs[last])
		if err != nil || eff.Result == nil || len(eff.Changes) == 0 {
			t.Fatalf("from %v: the next command gives result %v, changes %q, %v", opts.From != nil, eff.Result, eff.Changes, err)
		}
	}
}
