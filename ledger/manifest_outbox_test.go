package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// memManifests is a ManifestSource holding sealed manifests in memory.
type memManifests struct {
	mu    sync.Mutex
	days  []string
	body  map[string][]byte
	reads int // Manifest calls
}

// sealedManifests is a memManifests with days sealed, in that order.
func sealedManifests(days ...string) *memManifests {
	m := &memManifests{}
	for _, d := range days {
		m.seal(d)
	}
	return m
}

func (m *memManifests) seal(day string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.body == nil {
		m.body = map[string][]byte{}
	}
	m.days = append(m.days, day)
	m.body[day] = fmt.Appendf(nil, "{\"format\":\"recledger.manifest/1\",\"day\":%q}\n", day)
}

// sealAt seals day with a manifest naming seq as its seal event's.
func (m *memManifests) sealAt(day string, seq uint64) {
	m.seal(day)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.body[day] = fmt.Appendf(nil, "{\"format\":\"recledger.manifest/1\",\"day\":%q,\"seal_seq\":%d}\n", day, seq)
}

// readCount is how many times Manifest was called.
func (m *memManifests) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

func (m *memManifests) SealedDays() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.days)
}

func (m *memManifests) Manifest(_ context.Context, day string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	b, ok := m.body[day]
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", day, ErrNotFound)
	}
	return b, nil
}

var _ ManifestSource = (*memManifests)(nil)

// manifestMsgs returns every message of the manifests stream, in stream order.
func manifestMsgs(t testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	return streamMsgs(t, js, ManifestsStream)
}

// checkManifests fails unless the stream holds exactly src's manifests of
// days, in that order, each once, with subject, message id and bytes.
func checkManifests(t testing.TB, js jetstream.JetStream, src *memManifests, days ...string) {
	t.Helper()
	msgs := manifestMsgs(t, js)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Subject)
	}
	var want []string
	for _, d := range days {
		want = append(want, ManifestSubject(jsTestSite, d))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stream subjects\n got %v\nwant %v", got, want)
	}
	for i, m := range msgs {
		body, _ := src.Manifest(context.Background(), days[i])
		if got, err := ManifestBody(m.Header, m.Data, MaxManifestBytes); err != nil || !bytes.Equal(got, body) {
			t.Errorf("%s: body %.200q (%v), want %.200q", days[i], got, err, body)
		}
		if id := m.Header.Get("Nats-Msg-Id"); id != jsTestSite+"."+days[i] {
			t.Errorf("%s: message id %q", days[i], id)
		}
	}
}

// shortDedupe shrinks the manifests stream's duplicate window, so that the
// tests see a second publish of the same day instead of JetStream hiding it.
func shortDedupe(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	editStream(t, js, ManifestsStream, func(cfg *jetstream.StreamConfig) { cfg.Duplicates = 100 * time.Millisecond })
}

// runOutbox runs o until the returned stop is called.
func runOutbox(t *testing.T, o *ManifestOutbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestManifestOutboxPublishesEachOnceAcrossRestarts(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	shortDedupe(t, js)
	src := &memManifests{}
	// sealed in day order, listed out of order: published oldest first
	src.seal("2026-11-21")
	src.seal("2026-11-23")
	src.seal("2026-11-22")

	o := NewManifestOutbox(js, jsTestSite, src, nil)
	if lag := o.Lag(); lag != 3 {
		// Before its first look none is known to be in the stream (a
		// crash walk read 0 for a second after a start).
		t.Errorf("lag before the first look %d, want 3", lag)
	}
	stop := runOutbox(t, o)
	jsWait(t, 10*time.Second, "three manifests", func() bool { return len(manifestMsgs(t, js)) >= 3 && o.Lag() == 0 })
	stop()
	checkManifests(t, js, src, "2026-11-21", "2026-11-22", "2026-11-23")

	// a restart, after the duplicate window, publishes only what is new
	time.Sleep(200 * time.Millisecond)
	src.seal("2026-11-24")
	o = NewManifestOutbox(js, jsTestSite, src, nil)
	stop = runOutbox(t, o)
	jsWait(t, 10*time.Second, "the fourth manifest", func() bool { return len(manifestMsgs(t, js)) >= 4 && o.Lag() == 0 })
	time.Sleep(3 * DefaultManifestEvery / 2) // another look changes nothing
	stop()
	checkManifests(t, js, src, "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24")
}

func TestManifestOutboxDoesNotDuplicateAfterCrash(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	shortDedupe(t, js)
	src := sealedManifests("2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only Wake makes it look again
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 10*time.Second, "the first manifest", func() bool { return len(manifestMsgs(t, js)) == 1 })

	// Published by an earlier run that crashed before confirming it: the
	// outbox's start-up listing did not see it.
	src.seal("2026-11-22")
	body, _ := src.Manifest(context.Background(), "2026-11-22")
	if err := publishManifest(t.Context(), js, jsTestSite, "2026-11-22", body, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // past the duplicate window
	src.seal("2026-11-23")
	o.Wake()
	jsWait(t, 10*time.Second, "the third manifest", func() bool { return len(manifestMsgs(t, js)) >= 3 && o.Lag() == 0 })
	checkManifests(t, js, src, "2026-11-21", "2026-11-22", "2026-11-23")
}

func TestManifestOutboxSkipsConflictingDay(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	// another ledger's manifest for the 21st is already there
	other := &memManifests{}
	other.seal("2026-11-21")
	other.body["2026-11-21"] = []byte("{\"other\":true}\n")
	if err := publishManifest(t.Context(), js, jsTestSite, "2026-11-21", other.body["2026-11-21"], ""); err != nil {
		t.Fatal(err)
	}
	src := sealedManifests("2026-11-21", "2026-11-22")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 10*time.Second, "the second manifest", func() bool { return len(manifestMsgs(t, js)) >= 2 })
	msgs := manifestMsgs(t, js)
	if len(msgs) != 2 || string(msgs[0].Data) != "{\"other\":true}\n" || msgs[1].Subject != ManifestSubject(jsTestSite, "2026-11-22") {
		t.Fatalf("stream holds %d messages; first %q", len(msgs), msgs[0].Data)
	}
}

func TestManifestOutboxConflictIsReported(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-21", []byte("a\n"), ""); err != nil {
		t.Fatal(err)
	}
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-21", []byte("a\n"), ""); err != nil {
		t.Fatalf("same bytes again: %v", err)
	}
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-21", []byte("b\n"), ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("different bytes: %v, want ErrConflict", err)
	}
}

// TestRacingManifestsStoreOne: two servers publishing different
// manifests for the same day at once store one; the other is told of the
// conflict, never that its manifest was published (the message id alone
// would have the stream take the second for a duplicate of the first).
func TestRacingManifestsStoreOne(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range 30 {
		day := fmt.Sprintf("2026-10-%02d", i+1)
		errs := make(chan error, 2)
		start := make(chan struct{})
		for _, body := range []string{"a\n", "b\n"} {
			go func() {
				<-start
				errs <- publishManifest(ctx, js, jsTestSite, day, []byte(body), "")
			}()
		}
		close(start)
		var ok, conflict int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				ok++
			case errors.Is(err, ErrConflict):
				conflict++
			default:
				t.Fatalf("%s: %v", day, err)
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("%s: %d published, %d conflicts; want one of each", day, ok, conflict)
		}
	}
}

func TestManifestOutboxRejectsBadSite(t *testing.T) {
	o := NewManifestOutbox(nil, "a.b", &memManifests{}, nil)
	if err := o.Run(t.Context()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Run with site a.b: %v, want ErrInvalid", err)
	}
}

func TestManifestOutboxWaitsForTheStream(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc, js, err := Connect(ctx, srv.ClientURL(), "test", nil, srv.Own())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	src := sealedManifests("2026-11-21", "2026-11-22")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = 50 * time.Millisecond
	o.shownAfter = 150 * time.Millisecond
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 10*time.Second, "a look without a stream", func() bool { return o.looked.Load() && o.failing.Load() != 0 && o.Lag() == 2 })
	time.Sleep(200 * time.Millisecond) // a few failed looks
	if o.Lag() != 2 {
		t.Fatalf("lag %d without a stream, want 2", o.Lag())
	}
	// Stalled since its first failed look (the Mender's measure), and
	// told on /readyz.
	if d := o.Stalled(); d < 200*time.Millisecond {
		t.Errorf("stalled %v after failing for 200 ms", d)
	}
	if err := o.Problem(); !errors.Is(err, errManifestsStalled) || !strings.Contains(err.Error(), "2 sealed days wait") {
		t.Errorf("problem after failing for 200 ms: %v", err)
	}
	if err := EnsureStreams(ctx, js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 10*time.Second, "both manifests", func() bool { return o.Lag() == 0 })
	checkManifests(t, js, src, "2026-11-21", "2026-11-22")
	// A publish that went through ends the stall: the next day to wait
	// does not count from the failures before it.
	if at := o.failing.Load(); at != 0 {
		t.Errorf("failing since %v after every day was published", time.Unix(0, at))
	}
	if err := o.Problem(); err != nil {
		t.Errorf("every day published: %v", err)
	}
}

// The manifests stream lost while the server runs (its JetStream store
// wiped): the outbox creates it again and publishes every sealed day's
// manifest again, without waiting for a restart or the next seal.
func TestManifestOutboxRefillsALostStream(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-21", "2026-11-22")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.CreateStreams(1)
	o.every = 50 * time.Millisecond
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 10*time.Second, "two manifests", func() bool { return len(manifestMsgs(t, js)) == 2 })
	if err := js.DeleteStream(t.Context(), ManifestsStream); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 10*time.Second, "the manifests again", func() bool {
		if _, err := js.Stream(t.Context(), ManifestsStream); err != nil {
			return false
		}
		return len(manifestMsgs(t, js)) == 2
	})
	checkManifests(t, js, src, "2026-11-21", "2026-11-22")
}

// TestManifestWaitsForItsSealEvent: with AfterEvents, a day's manifest is
// published only once the events stream holds the event that sealed it,
// and later days wait behind it; the wait ends as soon as the events
// stream has it, not at the outbox's next look.
func TestManifestWaitsForItsSealEvent(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := &memManifests{}
	src.sealAt("2026-11-21", 10)
	src.sealAt("2026-11-22", 20)
	var mirrored atomic.Uint64
	mirrored.Store(15)
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only woken, or polling for the events stream
	o.shownAfter = 100 * time.Millisecond
	o.AfterEvents(mirrored.Load)
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 10*time.Second, "the first manifest", func() bool { return len(manifestMsgs(t, js)) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n, lag := len(manifestMsgs(t, js)), o.Lag(); n != 1 || lag != 1 {
		t.Fatalf("%d manifests published, lag %d, with the second day's seal event not in the events stream", n, lag)
	}
	// A wait that lasts is the manifests' problem too, pointing at the
	// events mirror's.
	if p := o.Problem(); p == nil || !strings.Contains(p.Error(), "for the events mirror to hold their seal events") {
		t.Fatalf("problem while the second day waits: %v", p)
	}
	// The wait polls every 20 ms without reading the manifest again.
	src.mu.Lock()
	reads := src.reads
	src.mu.Unlock()
	if reads > 3 {
		t.Errorf("%d manifest reads while one day waited 200 ms", reads)
	}
	mirrored.Store(20)
	jsWait(t, 10*time.Second, "the second manifest", func() bool { return len(manifestMsgs(t, js)) == 2 && o.Lag() == 0 })
	checkManifests(t, js, src, "2026-11-21", "2026-11-22")
	if p := o.Problem(); p != nil {
		t.Fatalf("problem after the wait: %v", p)
	}
}

// A manifests stream left on another start's capture prefix (a start on
// a full disk could not set its own) took no manifest, for good: the
// outbox that finds no stream answering sets the stream's subject.
func TestManifestOutboxSetsTheStreamToItsCapture(t *testing.T) {
	srv, js := jsCapturedByAnotherStart(t)
	src := sealedManifests("2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, slog.New(slog.NewTextHandler(tWriter{t}, nil)))
	o.CreateStreams(1)
	o.PublishUnder(srv.Capture())
	o.CreateSteadily(srv.Steady)
	o.every = 50 * time.Millisecond
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 10*time.Second, "the manifest", func() bool { return len(manifestMsgs(t, js)) == 1 })
	checkManifests(t, js, src, "2026-11-21")
}
