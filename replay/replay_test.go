package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// The same ledger gives the same state whichever copy it is read from:
// the live projections, bbolt, JetStream, and a data dir restored from
// JetStream.
func TestReplayEqualsLiveFromEveryCopy(t *testing.T) {
	ctx := context.Background()
	_, js := startJetStream(t)
	d := writeDay(t, js)
	head, want := d.live.Digest()
	if head != uint64(len(d.envs)) {
		t.Fatalf("live at seq %d, wrote %d events", head, len(d.envs))
	}

	st, stats, err := replay.Run(ctx, d.store, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Digest(); got != want || stats.Events != head || stats.Last.Seq != head {
		t.Fatalf("bbolt replay: digest %s, %d events, last %d; live %s at %d", got, stats.Events, stats.Last.Seq, want, head)
	}

	if h, err := (replay.JetStreamSource{JS: js, Site: replaytest.Site}).Head(ctx); err != nil || h != head {
		t.Fatalf("jetstream head %d, %v; want %d", h, err, head)
	}
	if h, err := (replay.JetStreamSource{JS: js, Site: "elsewhere"}).Head(ctx); err != nil || h != 0 {
		t.Fatalf("jetstream head of an empty site %d, %v", h, err)
	}
	jst, jstats, err := replay.Run(ctx, replay.JetStreamSource{JS: js, Site: replaytest.Site}, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := jst.Digest(); got != want || jstats.Events != head {
		t.Fatalf("jetstream replay: digest %s, %d events; live %s at %d", got, jstats.Events, want, head)
	}

	dst := openStore(t)
	n, err := replay.Restore(ctx, replay.JetStreamSource{JS: js, Site: replaytest.Site}, dst, 7, nil)
	if err != nil || n != head {
		t.Fatalf("restore: %d events, %v", n, err)
	}
	rep, err := dst.Verify(ctx)
	if err != nil || !rep.OK || rep.Events != head {
		t.Fatalf("verify restored: %+v, %v", rep, err)
	}
	if _, h := d.store.Head(); rep.Head != h {
		t.Fatalf("restored head %s, source head %s", rep.Head, h)
	}
	rst, _, err := replay.Run(ctx, dst, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rst.Digest(); got != want {
		t.Fatalf("restored replay digest %s, live %s", got, want)
	}
}

// damagedAt reads a real store, as a mirror damaged at one event reads:
// that event fails the scan as corrupt.
type damagedAt struct {
	replay.Source
	at uint64
}

func (d damagedAt) Scan(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error {
	return d.Source.Scan(ctx, after, func(e ledger.Envelope) error {
		if e.Seq == d.at {
			return fmt.Errorf("decode seq %d: %w", e.Seq, ledger.ErrCorrupt)
		}
		return fn(e)
	})
}

// A restore from a source damaged at one event keeps every event before
// it, also those read since the last whole batch.
func TestRestoreKeepsWhatCameBeforeADamagedEvent(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	dst := openStore(t)
	n, err := replay.Restore(ctx, damagedAt{d.store, 32}, dst, 1000, nil)
	if !errors.Is(err, ledger.ErrCorrupt) || n != 31 {
		t.Fatalf("restore: %d events, %v; want 31 and the damage", n, err)
	}
	if head, _ := dst.Head(); head != 31 {
		t.Fatalf("restored head %d, want 31", head)
	}
}

// batches is an Importer that keeps the size of each Import and can fail
// the one numbered failAt (from 1).
type batches struct {
	*ledger.Store
	sizes  []int
	failAt int
}

func (b *batches) Import(ctx context.Context, envs []ledger.Envelope) error {
	b.sizes = append(b.sizes, len(envs))
	if len(b.sizes) == b.failAt {
		return errors.New("disk gone")
	}
	return b.Store.Import(ctx, envs)
}

// Restore imports batch events per transaction, tells the progress the
// last seq of each, takes the default batch for none given, and names
// where it stopped when an import fails.
func TestRestoreImportsInBatches(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	head, _ := d.store.Head()

	dst := &batches{Store: openStore(t)}
	var seqs []uint64
	n, err := replay.Restore(ctx, d.store, dst, 7, func(seq uint64) { seqs = append(seqs, seq) })
	if err != nil || n != head {
		t.Fatalf("restore: %d of %d events, %v", n, head, err)
	}
	for i, size := range dst.sizes {
		last := i == len(dst.sizes)-1
		if size != 7 && !(last && size > 0 && size < 7) || seqs[i] != uint64(7*i+size) {
			t.Fatalf("batches %v, progress %v: want 7 each and the last seq of each", dst.sizes, seqs)
		}
	}
	if int(head) != 7*(len(dst.sizes)-1)+dst.sizes[len(dst.sizes)-1] {
		t.Fatalf("batches %v for %d events", dst.sizes, head)
	}

	for _, batch := range []int{0, -1} {
		dst := &batches{Store: openStore(t)}
		if n, err := replay.Restore(ctx, d.store, dst, batch, nil); err != nil || n != head || !slices.Equal(dst.sizes, []int{int(head)}) {
			t.Errorf("batch %d: %d events in %v, %v; want one import of %d (the default batch)", batch, n, dst.sizes, err, head)
		}
	}

	// The third import fails: two batches stay, and the error says where.
	dst = &batches{Store: openStore(t), failAt: 3}
	n, err = replay.Restore(ctx, d.store, dst, 7, nil)
	if err == nil || n != 14 || !strings.Contains(err.Error(), "after seq 14") || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("failed import: %d events, %v; want 14 and where it stopped", n, err)
	}
	if h, _ := dst.Head(); h != 14 {
		t.Fatalf("restored head %d, want 14", h)
	}
}

// --until at any seq, id or time gives the state the live projections had
// right after that event.
func TestUntilMatchesLiveHistory(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	for _, e := range d.envs {
		want, ok := d.digests[e.Seq]
		if !ok {
			continue // inside a multi-event Append: no live reading
		}
		for _, u := range []string{e.ID.String(), e.Time.String(), uitoa(e.Seq)} {
			until, err := replay.ParseUntil(u)
			if err != nil {
				t.Fatal(err)
			}
			st, stats, err := replay.Run(ctx, d.store, replay.Options{Until: until})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Last.Seq != e.Seq || st.Digest() != want {
				// Times are per millisecond: a later event of the same
				// millisecond is within the bound too.
				if strings.Contains(u, "T") && stats.Last.Time == e.Time && stats.Last.Seq > e.Seq {
					continue
				}
				t.Fatalf("until %s: stopped at %d with digest %s; live after seq %d: %s", u, stats.Last.Seq, st.Digest(), e.Seq, want)
			}
		}
	}
	// Before the first event: the empty state.
	st, stats, err := replay.Run(ctx, d.store, replay.Options{Until: replay.UntilSeq(0)})
	if err != nil || stats.Events != 0 || st.Digest() != projections.New().Digest() {
		t.Fatalf("until 0: %d events, %v", stats.Events, err)
	}
}

func uitoa(n uint64) string { return replay.UntilSeq(n).String() }

// A trace filtered to one user shows each of its commands with what it did,
// and nothing of the other users.
func TestTraceFilteredToUser(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	var buf bytes.Buffer
	_, stats, err := replay.Run(ctx, d.store, replay.Options{User: "jdoe", Trace: &buf})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if uint64(len(lines)) != stats.Traced || len(lines) == 0 {
		t.Fatalf("%d lines, %d traced", len(lines), stats.Traced)
	}
	// Every jdoe command of the day, in order, with its change or outcome.
	var wantCmds []string
	for _, e := range d.envs {
		if e.Type != ledger.TypeCommand {
			continue
		}
		var c ledger.Command
		if err := e.Unmarshal(&c); err != nil {
			t.Fatal(err)
		}
		if c.SenderID == "jdoe" {
			wantCmds = append(wantCmds, uitoa(e.Seq)+" ")
		}
	}
	var gotCmds []string
	for _, l := range lines {
		if strings.Contains(l, "asmith") || strings.Contains(l, "bkim") || strings.Contains(l, "gwu") {
			t.Errorf("line of another user: %s", l)
		}
		if strings.Contains(l, " command ") {
			gotCmds = append(gotCmds, l[:strings.IndexByte(l, ' ')+1])
			if !strings.Contains(l, " command jdoe ") {
				t.Errorf("command line without its user: %s", l)
			}
		}
	}
	if strings.Join(gotCmds, "") != strings.Join(wantCmds, "") {
		t.Errorf("traced commands at %q, want %q\n%s", gotCmds, wantCmds, buf.String())
	}
	for _, want := range []string{
		" command jdoe pause: c-1 recording→paused",
		" command jdoe resume: c-1 pause closed (resume); c-1 paused→recording",
		" command jdoe pause: no_effect (already_paused)",
		" command jdoe tag: c-1 tagged",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, buf.String())
		}
	}
}

// Apply's refusal stops the replay with the event named, and what was
// folded before it is returned.
func TestRunStopsAtUnknownVersion(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	src := newerAt(d.store, 5)
	_, stats, err := replay.Run(ctx, src, replay.Options{})
	if !errors.Is(err, ledger.ErrUnknownVersion) || stats.Last.Seq != 4 {
		t.Fatalf("err %v, last %d", err, stats.Last.Seq)
	}
	gap := sourceFunc(func(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error {
		return d.store.Scan(ctx, after, func(e ledger.Envelope) error {
			if e.Seq == 3 {
				return nil
			}
			return fn(e)
		})
	})
	if _, _, err := replay.Run(ctx, gap, replay.Options{}); !errors.Is(err, ledger.ErrChainBroken) {
		t.Fatalf("gap: %v", err)
	}
}

type sourceFunc func(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error

func (f sourceFunc) Scan(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error {
	return f(ctx, after, fn)
}

// newerAt is store read with its event seq given a version newer than
// this build reads.
func newerAt(store *ledger.Store, seq uint64) sourceFunc {
	return func(ctx context.Context, after uint64, fn func(ledger.Envelope) error) error {
		return store.Scan(ctx, after, func(e ledger.Envelope) error {
			if e.Seq == seq {
				e.Version = ledger.CurrentVersion + 1
			}
			return fn(e)
		})
	}
}

// fullDisk takes room bytes, then fails every write as a full disk does.
type fullDisk struct{ room int }

func (w *fullDisk) Write(p []byte) (int, error) {
	if len(p) <= w.room {
		w.room -= len(p)
		return len(p), nil
	}
	n := w.room
	w.room = 0
	return n, errors.New("no space left on device")
}

// A trace that cannot be written fails the replay, down to its last byte:
// a trace cut short must not look like a whole one.
func TestTraceThatCannotBeWrittenFailsTheReplay(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	var whole bytes.Buffer
	if _, _, err := replay.Run(ctx, d.store, replay.Options{Trace: &whole}); err != nil {
		t.Fatal(err)
	}
	for _, room := range []int{0, whole.Len() - 1} {
		_, _, err := replay.Run(ctx, d.store, replay.Options{Trace: &fullDisk{room: room}})
		if err == nil || !strings.Contains(err.Error(), "trace") || !strings.Contains(err.Error(), "no space") {
			t.Errorf("room for %d of %d bytes: %v, want the trace's write error", room, whole.Len(), err)
		}
	}
}
