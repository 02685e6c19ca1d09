package replay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// A checkpoint near the head makes Load replay only the tail, to the same state.
func TestLoadReplaysOnlyTheTail(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	head, want := d.live.Digest()

	// No checkpoint: everything.
	st, n, err := replay.Load(ctx, d.store, d.store)
	if err != nil || n != head || st.Digest() != want {
		t.Fatalf("no checkpoint: replayed %d of %d, %v", n, head, err)
	}

	const tail = 5
	cp, _, err := replay.Run(ctx, d.store, replay.Options{Until: replay.UntilSeq(head - tail)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cp.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.store.SaveCheckpoint(ctx, projections.Version, head-tail, b, cp.PendingSections()); err != nil {
		t.Fatal(err)
	}
	st, n, err = replay.Load(ctx, d.store, d.store)
	if err != nil || n != tail || st.Digest() != want || st.Seq() != head {
		t.Fatalf("with checkpoint at %d: replayed %d, seq %d, %v", head-tail, n, st.Seq(), err)
	}
}

// Checkpoints of another projections version are never used, nor is one
// that does not decode, whose state is not at the seq it is filed under, or
// that names a section the store lacks or holds at another length.
func TestLoadIgnoresUnusableCheckpoints(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	head, _ := d.live.Digest()
	cp, _, err := replay.Run(ctx, d.store, replay.Options{Until: replay.UntilSeq(head - 2)})
	if err != nil {
		t.Fatal(err)
	}
	good, err := cp.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	secs := cp.PendingSections()
	if len(secs) == 0 {
		t.Fatal("the day cut no section") // the checkpoint is after the seal
	}
	short := slices.Clone(secs)
	short[0].Data = short[0].Data[1:]
	for _, tc := range []struct {
		name     string
		version  string
		seq      uint64
		state    []byte
		sections []ledger.Section
	}{
		{"other version", "0-old-rules", head - 2, good, nil},
		{"undecodable", projections.Version, head - 2, []byte(`{"version":`), secs},
		{"state of another seq", projections.Version, head - 1, good, secs},
		{"sections missing", projections.Version, head - 2, good, nil},
		{"a section cut short", projections.Version, head - 2, good, short},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := writeDay(t, nil)
			if err := d.store.SaveCheckpoint(ctx, tc.version, tc.seq, tc.state, tc.sections); err != nil {
				t.Fatal(err)
			}
			_, want := d.live.Digest()
			st, n, err := replay.Load(ctx, d.store, d.store)
			if err != nil || n != head || st.Digest() != want {
				t.Fatalf("replayed %d of %d (want all), digest ok %v, %v", n, head, st != nil && st.Digest() == want, err)
			}
		})
	}
}

// savedCheckpoint is one save seen by recorder.
type savedCheckpoint struct {
	version string
	seq     uint64
	at      time.Time
}

// recorder is a CheckpointSaver that remembers the saves and keeps the
// sections in a map (the bbolt side is tested above and in ledger).
type recorder struct {
	mu       sync.Mutex
	saves    []savedCheckpoint
	sections map[string][]byte
	fail     error
	took     time.Duration // each save takes this long (a big head)
}

func (r *recorder) SaveCheckpoint(ctx context.Context, version string, seq uint64, state []byte, sections []ledger.Section) error {
	r.mu.Lock()
	took := r.took
	r.mu.Unlock()
	time.Sleep(took)
	r.mu.Lock()
	if r.fail != nil {
		r.mu.Unlock()
		return r.fail
	}
	if r.sections == nil {
		r.sections = map[string][]byte{}
	}
	for _, sec := range sections {
		r.sections[sec.Key] = slices.Clone(sec.Data)
	}
	r.mu.Unlock()
	if _, err := projections.UnmarshalCheckpoint(ctx, state, r); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saves = append(r.saves, savedCheckpoint{version, seq, time.Now()})
	return nil
}

func (r *recorder) Section(_ context.Context, key string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.sections[key]
	if !ok {
		return nil, ledger.ErrNotFound
	}
	return slices.Clone(b), nil
}

func (r *recorder) SectionSizes(_ context.Context, keys []string) ([]int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = -1
		if b, ok := r.sections[k]; ok {
			out[i] = len(b)
		}
	}
	return out, nil
}

func (r *recorder) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []uint64
	for _, c := range r.saves {
		s = append(s, c.seq)
	}
	return s
}

// The Checkpointer saves after EveryEvents new events, or after Every when
// something new arrived, never when nothing did, retries a failed save, and
// saves once more on stop.
func TestCheckpointerSchedule(t *testing.T) {
	d := writeDay(t, nil)
	envs := d.envs
	synctest.Test(t, func(t *testing.T) {
		live := projections.NewLive(projections.New())
		rec := &recorder{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		c := &replay.Checkpointer{Store: rec, Source: d.store, Live: live, EveryEvents: 10, Every: time.Minute}
		go func() { done <- c.Run(ctx) }()
		feed := feeder(live, envs)
		expect := func(step string, want ...uint64) {
			t.Helper()
			time.Sleep(1500 * time.Millisecond) // more than one poll
			synctest.Wait()
			if got := rec.seqs(); !equal(got, want) {
				t.Fatalf("%s: saves at %v, want %v", step, got, want)
			}
		}
		expect("idle")
		feed(5)
		expect("5 events", nil...)
		feed(12)
		expect("12 events", 12)
		feed(13)
		expect("one more event, less than Every", 12)
		time.Sleep(time.Minute)
		expect("Every passed", 12, 13)
		time.Sleep(2 * time.Minute)
		expect("nothing new", 12, 13)

		rec.mu.Lock()
		rec.fail = errors.New("disk full")
		rec.mu.Unlock()
		if err := c.Problem(); err != nil || c.SavedSeq() != 13 {
			t.Fatalf("saving: problem %v, saved seq %d", err, c.SavedSeq())
		}
		feed(30)
		expect("failing", 12, 13)
		// Said until a save succeeds (a full disk showed only in a log
		// line a minute): since when, and what the next start folds.
		if err := c.Problem(); err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "every event after seq 13") || c.SavedSeq() != 13 {
			t.Fatalf("failing: problem %v, saved seq %d", err, c.SavedSeq())
		}
		first := c.Problem().Error()
		time.Sleep(time.Minute)
		expect("failing again", 12, 13)
		// Since the first failure, counting the tries.
		again := c.Problem().Error()
		since := func(p string) string { return p[:strings.Index(p, " (")] }
		if !strings.Contains(first, "(1 tries") || !strings.Contains(again, "(2 tries") || since(again) != since(first) {
			t.Fatalf("failing again: problem %q after %q", again, first)
		}
		rec.mu.Lock()
		rec.fail = nil
		rec.mu.Unlock()
		feed(40) // more than EveryEvents again: still not before Every
		expect("not tried again at once", 12, 13)
		time.Sleep(time.Minute)
		expect("retried", 12, 13, 40)
		if err := c.Problem(); err != nil || c.SavedSeq() != 40 {
			t.Fatalf("saved again: problem %v, saved seq %d", err, c.SavedSeq())
		}

		feed(41)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := rec.seqs(); !equal(got, []uint64{12, 13, 40, 41}) {
			t.Fatalf("after stop: saves at %v", got)
		}
		for _, s := range rec.saves {
			if s.version != projections.Version {
				t.Fatalf("saved under version %q", s.version)
			}
		}
	})
}

// Left at zero, EveryEvents and Every take their defaults: a few events
// are not saved at once, but after a minute.
func TestCheckpointerDefaults(t *testing.T) {
	d := writeDay(t, nil)
	synctest.Test(t, func(t *testing.T) {
		live := projections.NewLive(projections.New())
		rec := &recorder{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		c := &replay.Checkpointer{Store: rec, Source: d.store, Live: live}
		go func() { done <- c.Run(ctx) }()
		feeder(live, d.envs)(12)
		time.Sleep(replay.DefaultCheckpointEvery - time.Second)
		synctest.Wait()
		if got := rec.seqs(); len(got) != 0 {
			t.Fatalf("saves at %v before Every", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := rec.seqs(); !equal(got, []uint64{12}) {
			t.Fatalf("saves at %v after Every, want [12]", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// Saves that take long (the head of a big unsealed day: 100-200 MB,
// seconds to encode and store) are spaced so that saving takes at most a
// tenth of the time: the next waits nine times as long as the last took,
// whatever arrives meanwhile; the tail a restart replays grows instead.
// On stop, a tail that replays quicker than such a save is left to the
// next start.
func TestCheckpointerSpacesLongSaves(t *testing.T) {
	d := writeDay(t, nil)
	synctest.Test(t, func(t *testing.T) {
		ck := startSlowSaves(t, d)
		feed, expect := ck.feed, ck.expect
		start := time.Now()
		feed(12)
		expect("the first save, 30 s long", 32*time.Second, 12)
		feed(25)
		expect("more than EveryEvents, and Every, since", 2*time.Minute, 12)
		if waited := time.Since(start); waited > 4*time.Minute+30*time.Second {
			t.Fatalf("the test's clock is at %s already", waited)
		}
		expect("nine times 30 s after the first save", 4*time.Minute, 12, 25)
		// Stopping: two events replay far quicker than a 30 s save.
		feed(27)
		ck.stop()
		if got := ck.rec.seqs(); !equal(got, []uint64{12, 25}) {
			t.Fatalf("after stop: saves at %v, want no final save", got)
		}
	})
}

// A seal is saved at the next poll, however long the last save took: it
// shrinks the head the next restart reads and lets the live state drop
// the sealed day's bytes. The rest applies again after it.
func TestCheckpointerSavesASealAtOnce(t *testing.T) {
	d := writeDay(t, nil)
	var seal uint64
	for _, e := range d.envs {
		if e.Type == ledger.TypeDayClosed {
			seal = e.Seq
			break
		}
	}
	if seal < 12 || seal+2 > uint64(len(d.envs)) {
		t.Fatalf("the day's seal is at seq %d of %d", seal, len(d.envs))
	}
	synctest.Test(t, func(t *testing.T) {
		ck := startSlowSaves(t, d)
		feed, expect := ck.feed, ck.expect
		feed(seal - 1)
		expect("before the seal", 32*time.Second, seal-1)
		feed(seal)
		expect("the seal, within the rest", 32*time.Second, seal-1, seal)
		feed(seal + 2)
		expect("after it, the rest again", 2*time.Minute, seal-1, seal)
		ck.stop()
	})
}

// A stop soon after a start whose checkpoint took seconds to read (a big
// unsealed day's head) leaves the few events since to the next start: a
// save of the same head would take about as long. A quick read does not.
func TestCheckpointerStopSoonAfterABigStart(t *testing.T) {
	d := writeDay(t, nil)
	for _, tc := range []struct {
		read time.Duration
		want []uint64
	}{{5 * time.Second, nil}, {50 * time.Millisecond, []uint64{3}}} {
		synctest.Test(t, func(t *testing.T) {
			live := projections.NewLive(projections.New())
			rec := &recorder{}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			c := &replay.Checkpointer{Store: rec, Source: d.store, Live: live, From: projections.New(), FromTook: tc.read,
				EveryEvents: 1000, Every: time.Hour}
			go func() { done <- c.Run(ctx) }()
			feeder(live, d.envs)(3)
			time.Sleep(2 * time.Second)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := rec.seqs(); !equal(got, tc.want) {
				t.Errorf("read in %s, stopped: saves at %v, want %v", tc.read, got, tc.want)
			}
		})
	}
}

// slowSaves is a Checkpointer saving every 10 events or every minute into
// a recorder whose saves take 30 s, run inside a synctest bubble.
type slowSaves struct {
	rec    *recorder
	feed   func(to uint64)                                        // commit d's events up to a seq
	expect func(step string, after time.Duration, want ...uint64) // after that long, the saves are at want
	stop   func()                                                 // stop it, and wait
}

func startSlowSaves(t *testing.T, d *day) slowSaves {
	t.Helper()
	live := projections.NewLive(projections.New())
	rec := &recorder{took: 30 * time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	c := &replay.Checkpointer{Store: rec, Source: d.store, Live: live, EveryEvents: 10, Every: time.Minute}
	go func() { done <- c.Run(ctx) }()
	return slowSaves{rec: rec, feed: feeder(live, d.envs),
		expect: func(step string, after time.Duration, want ...uint64) {
			t.Helper()
			time.Sleep(after)
			synctest.Wait()
			if got := rec.seqs(); !equal(got, want) {
				t.Fatalf("%s: saves at %v, want %v", step, got, want)
			}
		},
		stop: func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}}
}

// feeder commits envs to live one by one up to a seq, as the store's
// commit hook does.
func feeder(live *projections.Live, envs []ledger.Envelope) func(to uint64) {
	return func(to uint64) {
		for live.Seq() < to {
			live.OnCommit(envs[live.Seq() : live.Seq()+1])
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A live state that came from a long replay without a checkpoint is saved
// at the first poll; one that came from a checkpoint (Saved) is not.
func TestCheckpointerSavesAfterColdStart(t *testing.T) {
	d := writeDay(t, nil)
	for _, tc := range []struct {
		saved uint64
		want  []uint64
	}{{0, []uint64{30}}, {30, nil}, {25, nil}} {
		st, _, err := replay.Run(context.Background(), d.store, replay.Options{Until: replay.UntilSeq(30)})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Test(t, func(t *testing.T) {
			rec := &recorder{}
			ctx, cancel := context.WithCancel(t.Context())
			c := &replay.Checkpointer{Store: rec, Source: d.store, Live: projections.NewLive(st), EveryEvents: 10, Every: time.Hour, Saved: tc.saved}
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			time.Sleep(1500 * time.Millisecond)
			synctest.Wait()
			if got := rec.seqs(); !equal(got, tc.want) {
				t.Errorf("saved %d: saves at %v, want %v", tc.saved, got, tc.want)
			}
			cancel()
			<-done
		})
	}
}

// The serve wiring against real bbolt: live projections on the store's
// commits, a Checkpointer saving into the same store; after stop, Load
// starts from the final checkpoint with nothing to replay, at the same digest.
func TestCheckpointerWithStoreThenLoad(t *testing.T) {
	d := writeDay(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c := &replay.Checkpointer{Store: d.store, Source: d.store, Live: d.live, EveryEvents: 1 << 40, Every: time.Hour}
	go func() { done <- c.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	head, want := d.live.Digest()
	seq, _, err := d.store.LoadCheckpoint(context.Background(), projections.Version)
	if err != nil || seq != head {
		t.Fatalf("final checkpoint at %d (head %d): %v", seq, head, err)
	}
	st, n, err := replay.Load(context.Background(), d.store, d.store)
	if err != nil || n != 0 || st.Digest() != want {
		t.Fatalf("load: replayed %d, %v", n, err)
	}
}

// A checkpoint's digest is the state's, as GET /v1/digest gives it: the
// server logs it with each save, for an engineer to bisect against. Save
// also tells how many bytes the sections it stored hold.
func TestSaveGivesTheDigest(t *testing.T) {
	d := writeDay(t, nil)
	st, _, err := replay.Run(context.Background(), d.store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, stored := st.Digest(), 0
	for _, sec := range st.PendingSections() {
		stored += len(sec.Data)
	}
	sv, err := replay.Save(context.Background(), d.store, st)
	if err != nil {
		t.Fatal(err)
	}
	if stored == 0 || sv.SectionBytes != stored {
		t.Errorf("section bytes %d, want %d", sv.SectionBytes, stored)
	}
	if _, live := d.live.Digest(); sv.Digest != want || sv.Digest != live {
		t.Errorf("saved digest %s, the state's %s, the live state's %s", sv.Digest, want, live)
	}
	// The sections stored, the state drops their bytes and reads them
	// back from the store when asked.
	if len(sv.Sections) == 0 || len(st.PendingSections()) != 0 || st.Digest() != want {
		t.Errorf("after saving %d sections, %d still pending, digest kept %v", len(sv.Sections), len(st.PendingSections()), st.Digest() == want)
	}
}

// SavedSeq is the seq the live state started from until Run saves: the
// metric of what a restart folds is right from the first scrape.
func TestCheckpointerSavedSeqBeforeRun(t *testing.T) {
	if c := (&replay.Checkpointer{Saved: 17}); c.SavedSeq() != 17 || c.Problem() != nil {
		t.Fatalf("saved seq %d, problem %v", c.SavedSeq(), c.Problem())
	}
}

// behind is a checkpoint store whose ledger ends at head: the ledger of a
// data dir put back from an older copy while a checkpoint kept its state.
type behind struct {
	*ledger.Store
	head uint64
}

func (b behind) Head() (uint64, string) { return b.head, "" }

// A checkpoint after the ledger's head is damage: it is refused, and the
// ledger is replayed from its first event.
func TestLoadRefusesACheckpointAfterTheHead(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	head, _ := d.live.Digest()
	cp, _, err := replay.Run(ctx, d.store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cp.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.store.SaveCheckpoint(ctx, projections.Version, head, b, cp.PendingSections()); err != nil {
		t.Fatal(err)
	}

	// The older copy: the same day without its last batch.
	older := openStore(t)
	batches := replaytest.DayEvents()
	if _, err := replaytest.Write(ctx, older, batches[:len(batches)-1], nil); err != nil {
		t.Fatal(err)
	}
	oldHead, _ := older.Head()
	want, _, err := replay.Run(ctx, older, replay.Options{})
	if err != nil || oldHead >= head {
		t.Fatalf("older copy at %d of %d: %v", oldHead, head, err)
	}

	store := behind{d.store, oldHead}
	if _, err := replay.CheckpointState(ctx, store); !errors.Is(err, ledger.ErrCorrupt) {
		t.Errorf("checkpoint at %d over a ledger ending at %d: %v, want ErrCorrupt", head, oldHead, err)
	}
	st, n, err := replay.Load(ctx, store, older)
	if err != nil || n != oldHead || st.Digest() != want.Digest() {
		t.Fatalf("replayed %d of %d, digest ok %v, %v", n, oldHead, st != nil && st.Digest() == want.Digest(), err)
	}
}

// sectionsOffline is a checkpoint store that cannot tell its sections'
// sizes now (a disk gone away), without any sign of damage.
type sectionsOffline struct{ *ledger.Store }

func (sectionsOffline) SectionSizes(context.Context, []string) ([]int, error) {
	return nil, fmt.Errorf("read sections: %w: input/output error", ledger.ErrUnavailable)
}

// A checkpoint whose sections cannot be read now is not called damaged:
// verify tells an operator to rebuild a damaged file, and this one is not.
func TestCheckpointWithSectionsUnreadableIsNotDamaged(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	cp, _, err := replay.Run(ctx, d.store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replay.Save(ctx, d.store, cp); err != nil {
		t.Fatal(err)
	}
	if _, err := replay.CheckpointState(ctx, d.store); err != nil {
		t.Fatal(err)
	}
	_, err = replay.CheckpointState(ctx, sectionsOffline{d.store})
	if !errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("sections unreadable: %v, want ErrUnavailable and not ErrCorrupt", err)
	}
}
