package ledger

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsOutbox starts an outbox with short timings; stop cancels it and waits
// for Run to return.
func jsOutbox(t testing.TB, s *Store, js jetstream.JetStream) (o *Outbox, stop func()) {
	t.Helper()
	return jsOutboxUnder(t, s, js, "")
}

// jsOutboxUnder is jsOutbox publishing under a capture prefix
// (Outbox.PublishUnder), as serve's outbox does on the embedded server;
// setup runs before Run, after the tests' short timeouts are set.
func jsOutboxUnder(t testing.TB, s *Store, js jetstream.JetStream, capture string, setup ...func(*Outbox)) (o *Outbox, stop func()) {
	t.Helper()
	o = NewOutbox(s, js, jsTestSite, slog.New(slog.NewTextHandler(tWriter{t}, nil)))
	if capture != "" {
		o.PublishUnder(capture)
	}
	o.ackTimeout = time.Second
	o.tick = 100 * time.Millisecond
	o.minBackoff = 20 * time.Millisecond
	o.maxBackoff = 200 * time.Millisecond
	for _, f := range setup {
		f(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("outbox Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return o, stop
}

// logInto is a setup for jsOutboxUnder: the outbox logs into b.
func logInto(b *safeBuffer) func(*Outbox) {
	return func(o *Outbox) { o.log = slog.New(slog.NewTextHandler(b, nil)) }
}

// jsDrained waits until the outbox has confirmed the store's head.
func jsDrained(t testing.TB, s *Store, o *Outbox) {
	t.Helper()
	head, _ := s.Head()
	jsWait(t, 15*time.Second, "outbox to drain", func() bool { return o.Lag() == 0 && o.Confirmed() == head })
}

// jsAppendAlong appends batch events about every millisecond, from a
// goroutine, until the stop it returns is called (or the test ends); stop
// waits for the goroutine, and fails t if an append failed.
func jsAppendAlong(t testing.TB, s *Store, batch int) (stop func()) {
	t.Helper()
	var halt atomic.Bool
	done := make(chan error, 1)
	go func() {
		for i := 0; !halt.Load(); i++ {
			if _, err := s.Append(context.Background(), jsEvents(i*batch, batch)...); err != nil {
				done <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		done <- nil
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			halt.Store(true)
			if err := <-done; err != nil {
				t.Errorf("appending: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestOutboxPublishesInOrderOnce(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 700) // before the outbox exists: found by its first scan
	o, _ := jsOutbox(t, s, js)
	jsAppend(t, s, 2300)
	jsDrained(t, s, o)
	if got := o.Published(); got != 3000 {
		t.Errorf("Published = %d, want 3000", got)
	}
	jsCheckMirror(t, s, js)

	// A single late event is picked up by the commit hook.
	jsAppend(t, s, 1)
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
}

func TestOutboxResumesFromStreamTailNotMemory(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 500)
	o1, stop1 := jsOutbox(t, s, js)
	jsDrained(t, s, o1)
	stop1() // "crash": whatever o1 knew is gone

	jsAppend(t, s, 250)
	o2, stop2 := jsOutbox(t, s, js)
	jsDrained(t, s, o2)
	if got := o2.Published(); got != 250 {
		t.Errorf("second outbox published %d, want only the 250 new events", got)
	}
	jsCheckMirror(t, s, js)

	// Resumed with the stream caught up, the next event alone is
	// mirrored: it is published first, without waiting for another.
	stop2()
	o3, _ := jsOutbox(t, s, js)
	jsWait(t, 15*time.Second, "outbox to resume", func() bool { return o3.Confirmed() == 750 })
	jsAppend(t, s, 1)
	jsDrained(t, s, o3)
	jsCheckMirror(t, s, js)
}

func TestOutboxRefillsDeletedTail(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	ctx := context.Background()
	// A short deduplication window: the deleted messages' ids stay in it,
	// and the outbox must wait it out rather than count them as stored.
	editStream(t, js, EventsStream, func(cfg *jetstream.StreamConfig) { cfg.Duplicates = 500 * time.Millisecond })
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}

	s := jsStore(t)
	jsAppend(t, s, 300)
	o1, stop1 := jsOutbox(t, s, js)
	jsDrained(t, s, o1)
	stop1()

	const k = 40
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.LastSeq - k + 1; seq <= info.State.LastSeq; seq++ {
		if err := st.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(jsStreamMsgs(t, js)); got != 300-k {
		t.Fatalf("after delete the stream holds %d", got)
	}

	o2, _ := jsOutbox(t, s, js)
	jsDrained(t, s, o2)
	if got := o2.Published(); got != k {
		t.Errorf("refill published %d, want %d", got, k)
	}
	jsCheckMirror(t, s, js)
}

func TestOutboxRefillsRestoredOlderStream(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	ctx := context.Background()
	s := jsStore(t)
	jsAppend(t, s, 200)
	o1, stop1 := jsOutbox(t, s, js)
	jsDrained(t, s, o1)
	stop1()

	// The stream is restored from an older copy holding the first 120.
	old := jsStreamMsgs(t, js)[:120]
	if err := js.DeleteStream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	for _, m := range old {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header}); err != nil {
			t.Fatal(err)
		}
	}
	o2, _ := jsOutbox(t, s, js)
	jsDrained(t, s, o2)
	if got := o2.Published(); got != 80 {
		t.Errorf("refill published %d, want 80", got)
	}
	jsCheckMirror(t, s, js)
}

func TestOutboxRefusesAnotherLedgersStream(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)

	other := jsStore(t)
	jsAppend(t, other, 50)
	o1, stop1 := jsOutbox(t, other, js)
	jsDrained(t, other, o1)
	stop1()

	for _, n := range []int{10, 80} { // behind the stream, then ahead with other bytes
		s := jsStore(t)
		jsAppend(t, s, n)
		o, stop := jsOutbox(t, s, js)
		jsWait(t, 10*time.Second, "mismatch", func() bool { return o.Mismatch() != nil })
		if !errors.Is(o.Mismatch(), ErrMismatch) {
			t.Errorf("n=%d: Mismatch = %v", n, o.Mismatch())
		}
		if o.Published() != 0 {
			t.Errorf("n=%d: published %d over another ledger", n, o.Published())
		}
		stop()
	}
	if got := len(jsStreamMsgs(t, js)); got != 50 {
		t.Errorf("stream holds %d, want the other ledger's 50", got)
	}
}

func TestOutboxSurvivesJetStreamRestart(t *testing.T) {
	dir := t.TempDir()
	srv := jsServer(t, dir, "127.0.0.1:-1")
	port := srv.Addr().(*net.TCPAddr).Port
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	var logged safeBuffer
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) {
		o.stallFor = 300 * time.Millisecond
		o.log = slog.New(slog.NewTextHandler(&logged, nil))
	})

	// Append all along, in small batches, never waiting for JetStream.
	stopAppend := jsAppendAlong(t, s, 7)

	jsWait(t, 10*time.Second, "some events published", func() bool { return o.Published() > 200 })
	srv.Shutdown()
	srv.WaitForShutdown()

	// While JetStream is away, appends go on and the lag grows.
	start, _ := s.Head()
	jsWait(t, 10*time.Second, "lag to grow", func() bool {
		head, _ := s.Head()
		return head > start+300 && o.Lag() > 300
	})
	// and, once no publish has gone through for a while, readiness says so.
	jsWait(t, 10*time.Second, "the stall to be reported", func() bool { return errors.Is(o.Mismatch(), errStalled) })
	// and the log tells it once, with what to check.
	jsWait(t, 10*time.Second, "the stall to be logged", func() bool { return strings.Contains(logged.String(), "outbox stalled") })

	jsServerOwn(t, dir, "127.0.0.1:"+strconv.Itoa(port), srv.own)
	jsWait(t, 10*time.Second, "publishing after restart", func() bool { return o.Confirmed() > start })
	// Publishing again, the stall is over, though events still wait for
	// their turn now and then: a stall is told only while no publish goes
	// through.
	confirmed := o.Confirmed()
	jsWait(t, 10*time.Second, "more publishing after restart", func() bool { return o.Confirmed() > confirmed })
	for range 20 {
		if err := o.Mismatch(); err != nil {
			t.Fatalf("publishing again, lag %d: %v", o.Lag(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopAppend()
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if err := o.Mismatch(); err != nil {
		t.Errorf("after the outbox caught up: %v", err)
	}
	if n := strings.Count(logged.String(), "outbox stalled"); n != 1 {
		t.Errorf("the stall was logged %d times, want once:\n%s", n, logged.String())
	}
}

// A stall is counted from when the events began to wait, not from the
// end of the first session that failed, which waits out its acks'
// timeout (a walk's /readyz named a 30 s stall 42 s into an outage).
func TestOutboxCountsAStallFromTheFirstEventWaiting(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	o, _ := jsOutbox(t, s, js) // acks time out after 1 s
	jsAppend(t, s, 20)
	jsDrained(t, s, o)
	// Idle a while: nothing waits then, and the stall is not dated from
	// the last publish confirmed.
	time.Sleep(1500 * time.Millisecond)
	srv.Shutdown()
	srv.WaitForShutdown()
	waiting := time.Now()
	jsAppend(t, s, 5)
	jsWait(t, 20*time.Second, "the outbox to stall", func() bool { return o.Stalled() > 0 })
	// Dated from the end of the first failed session, the stall would be
	// a second (the acks' timeout) shorter; from the last publish
	// confirmed, 1.5 s longer. The margin below takes an append's fsync
	// on a loaded machine.
	if st, waited := o.Stalled(), time.Since(waiting); st < waited-600*time.Millisecond || st > waited+500*time.Millisecond {
		t.Errorf("stalled %v, though the events have waited %v", st, waited)
	}
}

// tWriter sends log lines to the test log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func TestOutboxFindsHoleLeftByInterruptedSession(t *testing.T) {
	s, js := jsMirrored(t, 100)
	ctx := context.Background()
	o := NewOutbox(s, js, jsTestSite, nil)
	o.lastSeq, o.lastStreamSeq = 50, 50 // acknowledged in order before the interruption

	tail, err := readTail(ctx, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.checkRun(ctx, js, tail); err != nil {
		t.Fatalf("no hole: %v", err)
	}
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 60); err != nil {
		t.Fatal(err)
	}
	err = o.checkRun(ctx, js, tail)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "lacks seq 60") {
		t.Fatalf("hole at 60: err = %v", err)
	}
}

func TestOutboxCreatesMissingStreams(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	nc, js, err := Connect(context.Background(), srv.ClientURL(), "test", nil, srv.Own())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := jsStore(t)
	jsAppend(t, s, 20)
	o := NewOutbox(s, js, jsTestSite, nil)
	o.CreateStreams(1)
	o.minBackoff, o.maxBackoff = 20*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	jsDrained(t, s, o)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	jsCheckMirror(t, s, js)
	if _, err := js.Stream(context.Background(), ManifestsStream); err != nil {
		t.Errorf("manifest stream: %v", err)
	}
}

// The stream lost while nothing is appended (the JetStream store wiped):
// the outbox notices within its look interval, creates the stream again
// and refills it from the ledger, without waiting for the next append.
func TestOutboxRefillsALostStreamWhileIdle(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 100)
	o := NewOutbox(s, js, jsTestSite, nil)
	o.CreateStreams(1)
	o.tick, o.look, o.minBackoff = 20*time.Millisecond, 50*time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	jsDrained(t, s, o)
	if err := js.DeleteStream(t.Context(), EventsStream); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 10*time.Second, "the stream refilled", func() bool {
		st, err := js.Stream(t.Context(), EventsStream)
		return err == nil && st.CachedInfo().State.Msgs == 100 && o.Lag() == 0
	})
	jsCheckMirror(t, s, js)
	if err := o.Mismatch(); !errors.Is(err, errStreamDeleted) || !strings.Contains(err.Error(), " 1 times") || o.lost.Load() != 1 {
		t.Errorf("after the stream was deleted once: problem %v, counted %d times; want one saying so, once", err, o.lost.Load())
	}
}

// TestOutboxAddsItsSubjectToAStreamMadeByAnotherSite: on a cluster shared
// by several sites, a lost stream made again by another site's server
// holds that site's subject only; this site's outbox adds its own back
// and refills the stream from its ledger, instead of failing forever.
// The stream deleted while events are being published: the outbox makes
// it again and refills it, and says that the stream lost events, as it
// does for one lost while idle (where the idle look, kept out here,
// finds it first).
func TestOutboxCountsAStreamDeletedWhilePublishing(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) { o.CreateStreams(1); o.look = time.Hour; o.lookedAt = time.Now() })
	stopAppend := jsAppendAlong(t, s, 5)
	jsWait(t, 10*time.Second, "events mirrored", func() bool { return o.Confirmed() > 200 })
	if err := js.DeleteStream(t.Context(), EventsStream); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 10*time.Second, "the loss found", func() bool { return errors.Is(o.Mismatch(), errStreamDeleted) })
	stopAppend()
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if n := o.lost.Load(); n != 1 {
		t.Errorf("the stream deleted once, counted %d times", n)
	}
}

// An outbox that does not create the streams (an external cluster whose
// operators make them) shows a stream lost while idle as lag, the whole
// ledger, until the stream is made again; then it refills it.
func TestOutboxWaitingForItsStreamShowsTheLostOneAsLag(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 100)
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) { o.tick, o.look = 20*time.Millisecond, 50*time.Millisecond })
	jsDrained(t, s, o)
	if err := js.DeleteStream(t.Context(), EventsStream); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 10*time.Second, "the lost stream shown as lag", func() bool { return o.Lag() == 100 })
	if err := EnsureStreams(t.Context(), js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
}

func TestOutboxAddsItsSubjectToAStreamMadeByAnotherSite(t *testing.T) {
	ctx := context.Background()
	js, s, o := jsExternal(t, 20)

	if err := js.DeleteStream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, "other", 1); err != nil { // the other site's server, first to notice
		t.Fatal(err)
	}
	jsAppend(t, s, 5)
	jsDrained(t, s, o)
	if got := len(jsStreamMsgs(t, js)); got != 25 {
		t.Fatalf("the stream holds %d events of the site, want 25", got)
	}
}

// TestOutboxSaysTheMirrorLostItsBeginning: a stream purged up to some seq
// (an external stream's operator, a limit) keeps its tail, and nothing
// else would notice the mirror lacks the beginning. The outbox says so,
// and publishing goes on.
func TestOutboxSaysTheMirrorLostItsBeginning(t *testing.T) {
	ctx := context.Background()
	js, s, o := jsExternal(t, 20, func(o *Outbox) { o.look = 100 * time.Millisecond })
	if o.Mismatch() != nil {
		t.Fatalf("a whole mirror: %v", o.Mismatch())
	}
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(11)); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 5)
	jsWait(t, 15*time.Second, "the gap reported", func() bool {
		err := o.Mismatch()
		return err != nil && strings.Contains(err.Error(), "first event of this site is seq 11")
	})
	jsDrained(t, s, o)
}

// TestOutboxSaysTheMirrorLostItsMiddle: a damaged block of the stream's
// store loses the messages in it silently, first and last kept (a crash
// walk's mirror lacked 7,763 events and /readyz said ready). The outbox
// counts the site's messages and says so.
func TestOutboxSaysTheMirrorLostItsMiddle(t *testing.T) {
	ctx := context.Background()
	js, s, o := jsExternal(t, 20, func(o *Outbox) { o.look = 100 * time.Millisecond })
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 10); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 5)
	jsWait(t, 15*time.Second, "the missing event reported", func() bool {
		err := o.Mismatch()
		return err != nil && strings.Contains(err.Error(), "holds 24 of this site's events where the ledger's first 25 were confirmed")
	})
	jsDrained(t, s, o)
}

// jsExternal is an outbox publishing n events to streams it creates on
// the public subjects, as serve's does on an external NATS server,
// drained; setup runs before Run.
func jsExternal(t *testing.T, n int, setup ...func(*Outbox)) (jetstream.JetStream, *Store, *Outbox) {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, n)
	o, stop := jsOutboxUnder(t, s, js, "", append([]func(*Outbox){func(o *Outbox) { o.CreateStreams(1) }}, setup...)...)
	t.Cleanup(stop)
	jsDrained(t, s, o)
	return js, s, o
}

// TestIdleOutboxRefillsAStreamMadeAgainWithoutIt: the stream lost and made
// again by another site's server while this site sends nothing: the idle
// outbox finds its events gone and refills them, instead of showing no
// lag until its next event.
func TestIdleOutboxRefillsAStreamMadeAgainWithoutIt(t *testing.T) {
	ctx := context.Background()
	js, _, o := jsExternal(t, 20, func(o *Outbox) { o.look = 100 * time.Millisecond })
	if err := js.DeleteStream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, "other", 1); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 15*time.Second, "the idle site's events refilled", func() bool {
		return len(jsStreamMsgs(t, js)) == 20 && o.Lag() == 0
	})
}

// TestOutboxFindsItsTailFarBackInASharedStream: a foreign message after
// the site's last event, with many of another site's messages between
// them, does not make the tail's search outlast a session.
func TestOutboxFindsItsTailFarBackInASharedStream(t *testing.T) {
	ctx := context.Background()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 5)
	first, stop := jsOutboxUnder(t, s, js, "", func(o *Outbox) { o.CreateStreams(1) })
	jsDrained(t, s, first)
	stop()
	if err := EnsureStreams(ctx, js, "other", 1); err != nil {
		t.Fatal(err)
	}
	for i := range 20_000 {
		if _, err := js.PublishAsync(EventSubject("other", TypeCommand), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()
	if _, err := js.Publish(ctx, "recledger.events."+jsTestSite+".junk", []byte(`{"hello":1}`)); err != nil {
		t.Fatal(err)
	}
	// The server starts again: its outbox's first session reads the tail.
	o, stop := jsOutboxUnder(t, s, js, "", func(o *Outbox) { o.CreateStreams(1); o.ackTimeout = 300 * time.Millisecond })
	defer stop()
	jsAppend(t, s, 3)
	jsDrained(t, s, o)
}

// The embedded server's streams take the capture prefix of the start
// that set it. A start on a full disk could not update them to its own,
// and every publish then found no stream, for good, though the disk had
// room again (a full-disk walk): the outbox sets the streams' subjects
// at its first session and after each failed one.
func TestOutboxSetsTheStreamsToItsCapture(t *testing.T) {
	srv, js := jsCapturedByAnotherStart(t)
	s := jsStore(t)
	jsAppend(t, s, 50)
	o, _ := jsOutboxUnder(t, s, js, srv.Capture(), func(o *Outbox) {
		o.CreateStreams(1)
		o.CreateSteadily(srv.Steady)
	})
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
}

// TestOutboxKnowsWhenItsLagIsExact: before the stream was read (NATS
// away since the start), the lag counts every event, and says it is not
// exact; once the start's look (Holds) or a session has read the
// stream, it is. A stop said "events not yet in the mirror" as fact for
// a mirror that held them all.
func TestOutboxKnowsWhenItsLagIsExact(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 5)
	o := NewOutbox(s, nil, jsTestSite, nil)
	if o.LagKnown() || o.Lag() != 5 {
		t.Fatalf("before any look: known %v, lag %d", o.LagKnown(), o.Lag())
	}
	o.Holds(3)
	if !o.LagKnown() || o.Lag() != 2 {
		t.Fatalf("after the start's look: known %v, lag %d", o.LagKnown(), o.Lag())
	}
}
