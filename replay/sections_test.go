package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// views is what the section tests ask of a state or a Live.
type views interface {
	Contacts(ctx context.Context, q ledger.ContactQuery) ([]ledger.Contact, error)
	Contact(ctx context.Context, id string) (ledger.Contact, error)
	Pauses(ctx context.Context, q ledger.PauseQuery) ([]ledger.PauseRow, error)
	EachContact(ctx context.Context, q ledger.ContactQuery, fn func(*ledger.Contact) error) error
	EachPause(ctx context.Context, q ledger.PauseQuery, fn func(*ledger.PauseRow) error) error
	Manifest(ctx context.Context, day string) ([]byte, error)
	SealedDays() []string
}

// bulkStore writes a busy site with several seals into a bbolt file and
// returns the open store and the file's path.
func bulkStore(t *testing.T) (*ledger.Store, string, uint64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	st, err := ledger.Open(path, ledger.Options{Now: replaytest.NewClock(replaytest.Start, time.Millisecond).Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	head, err := replaytest.Bulk(context.Background(), st, 12_000, 12, 2_500)
	if err != nil {
		t.Fatal(err)
	}
	return st, path, head
}

// sameAnswers checks that got answers every history query as want does.
func sameAnswers(t *testing.T, what string, got, want views) {
	t.Helper()
	ctx := context.Background()
	eq := func(q string, a, b any, errA, errB error) {
		t.Helper()
		if errA != nil || errB != nil {
			t.Fatalf("%s: %s: %v / %v", what, q, errA, errB)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("%s: %s differs:\n%.300s\n%.300s", what, q, ja, jb)
		}
	}
	all, err := want.Contacts(ctx, ledger.ContactQuery{})
	a, errA := got.Contacts(ctx, ledger.ContactQuery{})
	eq("all contacts", a, all, errA, err)
	streamed := []ledger.Contact{}
	errA = got.EachContact(ctx, ledger.ContactQuery{}, func(c *ledger.Contact) error { streamed = append(streamed, *c); return nil })
	eq("all contacts, streamed", streamed, all, errA, nil)
	days := want.SealedDays()
	if len(days) < 3 {
		t.Fatalf("%d sealed days: the test checks too little", len(days))
	}
	for _, d := range days {
		q := ledger.ContactQuery{Day: d}
		a, errA := got.Contacts(ctx, q)
		b, errB := want.Contacts(ctx, q)
		eq("contacts of "+d, a, b, errA, errB)
		ma, errA := got.Manifest(ctx, d)
		mb, errB := want.Manifest(ctx, d)
		eq("manifest of "+d, string(ma), string(mb), errA, errB)
	}
	for i := 0; i < len(all); i += 37 {
		a, errA := got.Contact(ctx, all[i].ContactID)
		b, errB := want.Contact(ctx, all[i].ContactID)
		eq("contact "+all[i].ContactID, a, b, errA, errB)
	}
	for _, q := range []ledger.PauseQuery{{}, {UserID: "agent3"}, {From: ledger.T(replaytest.Start.Add(time.Hour)), To: ledger.T(replaytest.Start.Add(2 * time.Hour))}} {
		a, errA := got.Pauses(ctx, q)
		b, errB := want.Pauses(ctx, q)
		eq("pauses", a, b, errA, errB)
		streamed := []ledger.PauseRow{}
		errA = got.EachPause(ctx, q, func(p *ledger.PauseRow) error { streamed = append(streamed, *p); return nil })
		eq("pauses, streamed", streamed, b, errA, nil)
	}
}

// A state with sealed days, checkpointed as serve does: its sections are
// stored in bbolt and dropped from the heap, and it, and a restart from
// that checkpoint, answer every query that reads sealed history exactly as
// the state that holds everything in memory, at the same digest.
func TestStoredSectionsAnswerLikeMemory(t *testing.T) {
	ctx := context.Background()
	store, _, head := bulkStore(t)
	mem, _, err := replay.Run(ctx, store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	held := mem.PendingSections()
	if len(held) < 6 {
		t.Fatalf("%d sections: the test checks too little", len(held))
	}

	st, _, err := replay.Run(ctx, store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	live := projections.NewLive(st)
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if err := (&replay.Checkpointer{Store: store, Source: store, Live: live}).Run(stopped); err != nil {
		t.Fatal(err)
	}
	if _, _, left, _ := live.Snapshot(); len(left) != 0 {
		t.Fatalf("%d sections still held after the save", len(left))
	}
	if _, d := live.Digest(); d != mem.Digest() {
		t.Fatal("the digest changed when the sections were stored")
	}
	sameAnswers(t, "live, sections stored", live, mem)

	loaded, n, err := replay.Load(ctx, store, store)
	if err != nil || n != 0 || loaded.Seq() != head {
		t.Fatalf("restart: replayed %d, seq %d of %d: %v", n, loaded.Seq(), head, err)
	}
	if len(loaded.PendingSections()) != 0 || loaded.Digest() != mem.Digest() {
		t.Fatal("the restart holds sections, or its digest differs")
	}
	sameAnswers(t, "restart from the checkpoint", loaded, mem)

	// Rebuilt from seq 1 over that file, the replay reads back the
	// sealed history the checkpoint stored instead of holding it.
	rebuilt, _, err := replay.Run(ctx, store, replay.Options{Sections: store})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rebuilt.PendingSections()); n != 0 || rebuilt.Digest() != mem.Digest() {
		t.Fatalf("rebuilt from seq 1: %d sections held of %d, or the digest differs", n, len(held))
	}
	sameAnswers(t, "rebuilt from seq 1, sections read back", rebuilt, mem)

	// A section the file lacks stays in memory.
	lacking := hiding{SectionReader: store, key: held[2].Key}
	rebuilt, _, err = replay.Run(ctx, store, replay.Options{Sections: lacking})
	if err != nil {
		t.Fatal(err)
	}
	if p := rebuilt.PendingSections(); len(p) != 1 || p[0].Key != lacking.key || rebuilt.Digest() != mem.Digest() {
		t.Fatalf("rebuilt over a file lacking %s: holds %d sections", lacking.key, len(p))
	}
}

// hiding is a section store that lacks one key.
type hiding struct {
	projections.SectionReader
	key string
}

func (h hiding) SectionSizes(ctx context.Context, keys []string) ([]int, error) {
	sizes, err := h.SectionReader.SectionSizes(ctx, keys)
	for i, k := range keys {
		if k == h.key && err == nil {
			sizes[i] = -1
		}
	}
	return sizes, err
}

// A stored section that was altered is an error wrapping ErrCorrupt when a
// query reads it; one that is missing makes Load rebuild from seq 1.
func TestDamagedSections(t *testing.T) {
	ctx := context.Background()
	store, path, head := bulkStore(t)
	mem, _, err := replay.Run(ctx, store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mem.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	secs := mem.PendingSections()
	if err := store.SaveCheckpoint(ctx, projections.Version, head, b, secs); err != nil {
		t.Fatal(err)
	}
	day := mem.SealedDays()[0]
	manifestKey := projections.Version + "/m/" + day
	var pauseKey string
	for _, s := range secs {
		if strings.HasPrefix(s.Key, projections.Version+"/p/") {
			pauseKey = s.Key
			break
		}
	}
	store.Close()

	damage := func(fn func(b *bolt.Bucket) error) *ledger.Store {
		t.Helper()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte("sections"))) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		st, err := ledger.Open(path, ledger.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}

	// One byte of a manifest changed: the restart only checks lengths, the
	// query checks the hash.
	ro := damage(func(b *bolt.Bucket) error {
		v := append([]byte(nil), b.Get([]byte(manifestKey))...)
		v[len(v)/2] ^= 1
		return b.Put([]byte(manifestKey), v)
	})
	st, n, err := replay.Load(ctx, ro, ro)
	if err != nil || n != 0 {
		t.Fatalf("load: replayed %d: %v", n, err)
	}
	if _, err := st.Manifest(ctx, day); !errors.Is(err, ledger.ErrCorrupt) || !strings.Contains(err.Error(), manifestKey) {
		t.Fatalf("altered manifest: %v", err)
	}
	if m, err := st.Manifest(ctx, mem.SealedDays()[1]); err != nil || len(m) == 0 {
		t.Fatalf("another day's manifest: %v", err)
	}
	ro.Close()

	// A chunk of pause rows gone: the checkpoint is not used.
	ro = damage(func(b *bolt.Bucket) error { return b.Delete([]byte(pauseKey)) })
	st, n, err = replay.Load(ctx, ro, ro)
	if err != nil || n != head || st.Digest() != mem.Digest() {
		t.Fatalf("load without a section: replayed %d of %d: %v", n, head, err)
	}
	if st2 := replay.FromCheckpoint(ctx, ro); st2 != nil {
		t.Fatal("a checkpoint naming a missing section is used")
	}
}

// The server's path under load: live projections on the store's commits,
// a Checkpointer storing sections and dropping them while readers query
// sealed history; every read succeeds, and the state ends where a replay
// from scratch does. Run it with -race. The busy days are cooled before
// their seal: the server's state shares the bytes of the entries it keeps
// with the Checkpointer's, which goes on folding beside it.
func TestSectionsStoredWhileServing(t *testing.T) {
	t.Run("small days", func(t *testing.T) { servingWithSaves(t, 6_000, 8, 1_000, 400, 3) })
	t.Run("busy days", func(t *testing.T) { servingWithSaves(t, 125_000, 40, 60_000, 20_000, 2) })
}

// servingWithSaves is TestSectionsStoredWhileServing over about n events
// of agents, sealed every sealEvery, checkpointed every saveEvery; with
// three days or more it compares every answer, with fewer the digests.
func servingWithSaves(t *testing.T, n, agents, sealEvery, saveEvery, days int) {
	ctx := context.Background()
	st, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Now: replaytest.NewClock(replaytest.Start, time.Millisecond).Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	live := projections.NewLive(projections.New())
	st.Subscribe(live.OnCommit)
	cctx, cancel := context.WithCancel(ctx)
	saved := make(chan error, 1)
	go func() {
		saved <- (&replay.Checkpointer{Store: st, Source: st, Live: live, EveryEvents: uint64(saveEvery), Every: 5 * time.Millisecond}).Run(cctx)
	}()
	stop := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				for _, d := range live.SealedDays() {
					if _, err := live.Manifest(ctx, d); err != nil {
						errs <- err
						return
					}
					if _, err := live.Contacts(ctx, ledger.ContactQuery{Day: d}); err != nil {
						errs <- err
						return
					}
				}
				if _, err := live.Pauses(ctx, ledger.PauseQuery{UserID: "agent1"}); err != nil {
					errs <- err
					return
				}
				// the streamed whole history, as the API serves it
				if err := live.EachPause(ctx, ledger.PauseQuery{}, func(*ledger.PauseRow) error { return nil }); err != nil {
					errs <- err
					return
				}
				if err := live.EachContact(ctx, ledger.ContactQuery{}, func(*ledger.Contact) error { return nil }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	head, err := replaytest.Bulk(ctx, st, n, agents, sealEvery)
	close(stop)
	for range 2 {
		if rerr := <-errs; rerr != nil {
			t.Fatalf("a query while sections were stored: %v", rerr)
		}
	}
	cancel()
	if serr := <-saved; serr != nil || err != nil {
		t.Fatalf("bulk %v, final save %v", err, serr)
	}
	if _, _, left, _ := live.Snapshot(); len(left) != 0 {
		// The final save was skipped, as a slow one is (under -race):
		// the next Checkpointer's stores them.
		stopped, cancel := context.WithCancel(ctx)
		cancel()
		if err := (&replay.Checkpointer{Store: st, Source: st, Live: live}).Run(stopped); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, left, _ := live.Snapshot(); len(left) != 0 || len(live.SealedDays()) < days {
		t.Fatalf("%d sections held after the final save, %d sealed days", len(left), len(live.SealedDays()))
	}
	want, _, err := replay.Run(ctx, st, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if seq, d := live.Digest(); seq != head || d != want.Digest() {
		t.Fatalf("live at %d of %d, digest equal %v", seq, head, d == want.Digest())
	}
	if days >= 3 {
		sameAnswers(t, "live after serving", live, want)
	}
}

// A day busy enough to be cooled before its seal (more closed contacts
// than a cooling takes), checkpointed as serve does: the checkpoint names
// the cooled contacts and manifest entries instead of carrying them, a
// restart from it answers as the state that folded everything, and the
// seal after the restart cuts the same manifest and deletes the entries'
// sections from the store with its checkpoint.
func TestBusyDayCooledBeforeItsSeal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	store, err := ledger.Open(path, ledger.Options{Now: replaytest.NewClock(replaytest.Start, time.Millisecond).Now})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// a day of about 8,900 calls, not sealed yet
	if _, err := replaytest.Bulk(ctx, store, 62_000, 40, 0); err != nil {
		t.Fatal(err)
	}
	mem, _, err := replay.Run(ctx, store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, sec := range mem.PendingSections() {
		if strings.Contains(sec.Key, "/e/") {
			entries = append(entries, sec.Key)
		}
	}
	if len(entries) == 0 {
		t.Fatal("no manifest entries cooled before the seal: the test checks nothing")
	}

	live := projections.NewLive(mem)
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if err := (&replay.Checkpointer{Store: store, Source: store, Live: live}).Run(stopped); err != nil {
		t.Fatal(err)
	}
	if sizes, err := store.SectionSizes(ctx, entries); err != nil || slices.Contains(sizes, -1) {
		t.Fatalf("the checkpoint did not store the cooled entries: %v %v", sizes, err)
	}
	loaded, n, err := replay.Load(ctx, store, store)
	if err != nil || n != 0 || loaded.Digest() != mem.Digest() {
		t.Fatalf("restart: replayed %d: %v, or its digest differs", n, err)
	}

	day := replaytest.Start.Format(time.DateOnly)
	if _, err := store.Append(ctx, replaytest.Seal(day)); err != nil {
		t.Fatal(err)
	}
	after, _, err := replay.Run(ctx, store, replay.Options{From: loaded})
	if err != nil {
		t.Fatal(err)
	}
	straight, _, err := replay.Run(ctx, store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(straight.SealedDays()) != 1 || after.Digest() != straight.Digest() {
		t.Fatalf("sealed %v; the seal after a restart and the straight fold differ", straight.SealedDays())
	}
	m1, err1 := after.Manifest(ctx, day)
	m2, err2 := straight.Manifest(ctx, day)
	c1, err3 := after.Contacts(ctx, ledger.ContactQuery{Day: day})
	c2, err4 := straight.Contacts(ctx, ledger.ContactQuery{Day: day})
	if err := errors.Join(err1, err2, err3, err4); err != nil || !bytes.Equal(m1, m2) || len(c1) < 8000 || !reflect.DeepEqual(c1, c2) {
		t.Fatalf("the manifest or the contacts of %s differ (%d contacts): %v", day, len(c2), err)
	}
	if _, err := replay.Save(ctx, store, after); err != nil {
		t.Fatal(err)
	}
	sizes, err := store.SectionSizes(ctx, entries)
	if err != nil || slices.ContainsFunc(sizes, func(n int) bool { return n >= 0 }) {
		t.Fatalf("the entries the seal took are still stored: %v %v", sizes, err)
	}
	if again, n, err := replay.Load(ctx, store, store); err != nil || n != 0 || again.Digest() != straight.Digest() {
		t.Fatalf("restart after the seal: replayed %d: %v, or its digest differs", n, err)
	}
}
