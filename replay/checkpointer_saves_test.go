package replay_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// untilStopped is a checkpoint store whose saves last until the caller's
// context is done (a save cut short by the stop).
type untilStopped struct{ *recorder }

func (u untilStopped) SaveCheckpoint(ctx context.Context, _ string, _ uint64, _ []byte, _ []ledger.Section) error {
	<-ctx.Done()
	return ctx.Err()
}

// A save cut short by the stop is no failure of the saves: Problem stays
// nil (a health check would otherwise report a stop as a full disk).
func TestCheckpointerSaveCutShortByTheStopIsNoProblem(t *testing.T) {
	d := writeDay(t, nil)
	synctest.Test(t, func(t *testing.T) {
		live := projections.NewLive(projections.New())
		c := &replay.Checkpointer{Store: untilStopped{&recorder{}}, Source: d.store, Live: live, EveryEvents: 10, Every: time.Minute}
		stop := runCheckpointer(t, c)
		feeder(live, d.envs)(12)
		time.Sleep(5 * time.Second) // the save began at 1 s, and lasts
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err) // the final save is skipped: the cut one took 4 s
		}
		if p := c.Problem(); p != nil {
			t.Fatalf("after a stop during a save: problem %v", p)
		}
	})
}

// A Checkpointer whose source lags the live state never stores a
// checkpoint older than the one the live state started from.
func TestCheckpointerNeverSavesBehindSaved(t *testing.T) {
	d := writeDay(t, nil)
	st, _, err := replay.Run(context.Background(), d.store, replay.Options{Until: replay.UntilSeq(30)})
	if err != nil {
		t.Fatal(err)
	}
	lagging := sourceFunc(func(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error {
		return d.store.Scan(ctx, after, func(e ledger.Envelope) error {
			if e.Seq > 20 {
				return nil
			}
			return fn(e)
		})
	})
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		c := &replay.Checkpointer{Store: rec, Source: lagging, Live: projections.NewLive(st), EveryEvents: 1, Every: time.Minute, Saved: 25}
		stop := runCheckpointer(t, c)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := rec.seqs(); len(got) != 0 || c.SavedSeq() != 25 {
			t.Fatalf("saves at %v, saved seq %d; want none, 25", got, c.SavedSeq())
		}
	})
}

// Until a save succeeds, Problem names the seq the live state started
// from (Saved) as what the next start folds after.
func TestCheckpointerProblemBeforeAnySaveNamesSaved(t *testing.T) {
	d := writeDay(t, nil)
	st, _, err := replay.Run(context.Background(), d.store, replay.Options{Until: replay.UntilSeq(30)})
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{fail: errors.New("disk full")}
		c := &replay.Checkpointer{Store: rec, Source: d.store, Live: projections.NewLive(st), EveryEvents: 1, Every: time.Hour, Saved: 25}
		stop := runCheckpointer(t, c)
		defer func() { _ = stop() }() // the final save fails too
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if p := c.Problem(); p == nil || !strings.Contains(p.Error(), "every event after seq 25") {
			t.Fatalf("problem %v, want it to name seq 25", p)
		}
	})
}

// farAhead is a live state whose seq says that many events came since
// the last checkpoint (a long tail, without writing them all).
type farAhead struct {
	*projections.Live
	seq uint64
}

func (f farAhead) Seq() uint64 { return f.seq }

// A stop after a slow save still saves when the events since would take
// longer to replay than that save took.
func TestCheckpointerFinalSaveWhenTheTailIsLonger(t *testing.T) {
	d := writeDay(t, nil)
	head, _ := d.store.Head()
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		live := farAhead{projections.NewLive(projections.New()), 1_000_000} // some 5 s to replay
		stop := runCheckpointer(t, &replay.Checkpointer{Store: rec, Source: d.store, Live: live, From: projections.New(), FromTook: 2 * time.Second,
			EveryEvents: 1 << 40, Every: time.Hour})
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := rec.seqs(); !equal(got, []uint64{head}) {
			t.Fatalf("saves at %v, want the final one at %d", got, head)
		}
	})
}
