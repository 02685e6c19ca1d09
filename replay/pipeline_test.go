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
