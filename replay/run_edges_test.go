package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// A replay that cannot tell which sections its section store holds, after
// a seal, fails there: it would otherwise keep the whole history in
// memory without saying why. The seal was folded before the store was
// asked, so the stats count it and end at it, and the error names it.
func TestRunFailsWhenTheSectionStoreCannotBeRead(t *testing.T) {
	d := writeDay(t, nil)
	_, stats, err := replay.Run(context.Background(), d.store, replay.Options{Sections: sectionsOffline{d.store}})
	if !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), "sealed history") {
		t.Fatalf("replay: %v; want the section store's error, at the seal", err)
	}
	if stats.Last.Type != ledger.TypeDayClosed || stats.Events != stats.Last.Seq {
		t.Fatalf("stats end at seq %d (%s) after %d events; want the seal, every event up to it counted", stats.Last.Seq, stats.Last.Type, stats.Events)
	}
	if want := fmt.Sprintf("seal of seq %d", stats.Last.Seq); !strings.Contains(err.Error(), want) {
		t.Fatalf("replay: %v; want it to name the %s", err, want)
	}
}

// TracedUser counts only the lines that name the user, not those kept
// because they change what every user's rules read: newbie's trace holds
// the first configuration document (which does not name newbie) and the
// put of newbie itself.
func TestTracedUserCountsOnlyTheUsersLines(t *testing.T) {
	d := writeDay(t, nil)
	var buf bytes.Buffer
	_, stats, err := replay.Run(context.Background(), d.store, replay.Options{User: "newbie", Trace: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Traced != 2 || stats.TracedUser != 1 || !strings.Contains(buf.String(), "config put user newbie") {
		t.Fatalf("%d traced, %d naming newbie; want 2 and 1:\n%s", stats.Traced, stats.TracedUser, buf.String())
	}
}

// A replay cancelled while it folds the last events, the source read to
// its end already, still reports the cancellation: whoever stopped it
// does not take its result for a finished replay.
func TestRunCancelledAfterTheSourceWasReadFails(t *testing.T) {
	d := writeDay(t, nil)
	head, _ := d.store.Head()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, stats, err := replay.Run(ctx, d.store, replay.Options{Progress: func(seq uint64) {
		if seq == head {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || stats.Last.Seq != head {
		t.Fatalf("cancelled at the last event: %v after seq %d; want context.Canceled", err, stats.Last.Seq)
	}
}

// flipped is a section store whose sections read back altered, at their
// stored length (a damaged page).
type flipped struct{ *ledger.Store }

func (f flipped) Section(ctx context.Context, key string) ([]byte, error) {
	b, err := f.Store.Section(ctx, key)
	if err == nil && len(b) > 0 {
		b[len(b)/2] ^= 1
	}
	return b, err
}

// With CheckSections, a stored section whose bytes do not hash to the
// state's own is not trusted: the replay keeps it in memory, for the
// next checkpoint to write again. Without, the length is enough.
func TestRunChecksStoredSectionsWhenAsked(t *testing.T) {
	d := savedDay(t)
	for _, check := range []bool{true, false} {
		st, _, err := replay.Run(context.Background(), d.store, replay.Options{Sections: flipped{d.store}, CheckSections: check})
		if err != nil {
			t.Fatal(err)
		}
		if kept := len(st.PendingSections()); (kept > 0) != check {
			t.Errorf("check %v: %d sections kept in memory", check, kept)
		}
	}
}
