//go:build linux

package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"
)

// fillDisk makes every write to the open block files of stream fail with
// ENOSPC, as on a full disk: it puts /dev/full under their descriptors.
// nats-server keeps a stream's last block open for writing. It returns
// how many it found.
func fillDisk(t *testing.T, storeDir, stream string) int {
	t.Helper()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	want := string(filepath.Separator) + filepath.Join(stream, "msgs") + string(filepath.Separator)
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || !strings.HasPrefix(target, storeDir) || !strings.Contains(target, want) || !strings.HasSuffix(target, ".blk") {
			continue
		}
		num, err := strconv.Atoi(fd.Name())
		if err != nil {
			continue
		}
		if err := unix.Dup3(int(full.Fd()), num, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// stallAfter is a publisher stalled since since; not stalled while it is
// zero. It counts the Mender's calls of Mended.
type stallAfter struct {
	mu     sync.Mutex
	since  time.Time
	mended int
}

func (s *stallAfter) Mended() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mended++
}

func (s *stallAfter) Stalled() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() {
		return 0
	}
	return time.Since(s.since)
}

// mendUntilDrained runs a Mender of srv for outbox o (store s, the
// JetStream store in dir) until the outbox has drained the store.
func mendUntilDrained(t *testing.T, srv *Embedded, dir string, s *Store, o *Outbox) *Mender {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	m := &Mender{Server: srv, Publishers: []Staller{o}, Dir: dir, After: time.Second, Every: 50 * time.Millisecond, Log: slog.New(slog.NewTextHandler(tWriter{t}, nil))}
	go func() { done <- m.Run(ctx) }()
	jsDrained(t, s, o)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMenderRestartsAJetStreamThatFailedAWrite: once a write to the events
// stream's file fails (the disk full), JetStream takes no event, even with
// room again; the Mender restarts it and the outbox refills the mirror,
// exactly once and in order.
func TestMenderRestartsAJetStreamThatFailedAWrite(t *testing.T) {
	dir := t.TempDir()
	srv := jsServer(t, dir, "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	o, _ := jsOutbox(t, s, js)
	jsAppend(t, s, 200)
	jsDrained(t, s, o)

	if n := fillDisk(t, dir, EventsStream); n == 0 {
		t.Fatal("no open block file of the events stream")
	}
	jsAppend(t, s, 300)
	jsWait(t, 20*time.Second, "the outbox to stall", func() bool { return o.Stalled() > 0 })
	// The store stays failed: the stall goes on.
	time.Sleep(1500 * time.Millisecond)
	if o.Stalled() < time.Second || o.Lag() == 0 {
		t.Fatalf("stalled %v with lag %d: the failed store took events again", o.Stalled(), o.Lag())
	}

	m := mendUntilDrained(t, srv, dir, s, o)
	if m.restarts != 1 {
		t.Errorf("%d restarts, want 1", m.restarts)
	}
	jsAppend(t, s, 50)
	jsDrained(t, s, o)
	if r, err := CompareJetStream(context.Background(), s, js, jsTestSite); err != nil || !r.OK {
		t.Fatalf("mirror after the restart: %+v, %v", r, err)
	}
}

// TestMenderTurnsJetStreamOnAgain: a write the store's file system
// refuses for want of permission (a block file made immutable) makes
// nats-server turn JetStream off for the whole server
// (Server.ShutdownJetStream, which this test calls as nats-server does).
// Once the file can be written again, the Mender turns it on with the
// configuration it started with, the outbox refills the mirror, and a
// reader reads it again through the relay (a walk's mirror stayed off
// until serve was restarted).
func TestMenderTurnsJetStreamOnAgain(t *testing.T) {
	dir := t.TempDir()
	srv := jsServer(t, dir, "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	var logged safeBuffer
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) {
		o.log = slog.New(slog.NewTextHandler(&logged, nil))
		o.stallFor = 500 * time.Millisecond
	})
	jsAppend(t, s, 200)
	jsDrained(t, s, o)
	storeDir := srv.StoreDir()

	if err := srv.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 300)
	jsWait(t, 20*time.Second, "the outbox to stall", func() bool { return o.Stalled() > 0 })

	if m := mendUntilDrained(t, srv, dir, s, o); m.restarts != 1 {
		t.Errorf("%d restarts, want 1", m.restarts)
	}
	// The stall was long enough to be a problem: its end is said.
	if !strings.Contains(logged.String(), "the mirror advances again") {
		t.Errorf("no word of the stall's end:\n%s", logged.String())
	}
	if !srv.JetStreamEnabled() || srv.StoreDir() != storeDir {
		t.Fatalf("JetStream on %v, store %q, want on in %q", srv.JetStreamEnabled(), srv.StoreDir(), storeDir)
	}
	jsAppend(t, s, 50)
	jsDrained(t, s, o)
	if r, err := CompareJetStream(context.Background(), s, js, jsTestSite); err != nil || !r.OK {
		t.Fatalf("mirror after JetStream was turned on again: %+v, %v", r, err)
	}
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	if !c.canRead(t, 550) {
		t.Error("a reader cannot read the mirror after JetStream was turned on again")
	}
}

// TestMendedOutboxTriesAgainAtOnce: after a restart of JetStream
// (Mended), an outbox stalled on the failed store neither waits out the
// acks of its session nor the backoff after it (each an hour here), and
// refills the mirror.
func TestMendedOutboxTriesAgainAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*Outbox)
	}{
		{"waiting on acks", func(o *Outbox) { o.ackTimeout = time.Hour }},
		{"waiting out the backoff", func(o *Outbox) { o.minBackoff, o.maxBackoff = time.Hour, time.Hour }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := jsServer(t, dir, "127.0.0.1:-1")
			_, js := jsConnect(t, srv)
			s := jsStore(t)
			o, _ := jsOutboxUnder(t, s, js, "", tc.setup)
			jsAppend(t, s, 200)
			jsDrained(t, s, o)
			if n := fillDisk(t, dir, EventsStream); n == 0 {
				t.Fatal("no open block file of the events stream")
			}
			jsAppend(t, s, 300)
			time.Sleep(1500 * time.Millisecond) // past the test's ack timeout of 1 s
			if o.Lag() == 0 {
				t.Fatal("the failed store took events")
			}
			// Stalled as the Mender wants it: the outbox's own sessions
			// fail without progress once serve's ack timeout has passed
			// twice, longer than this test waits.
			o.stall.Store(&stall{since: time.Now().Add(-time.Minute)})
			if err := srv.RestartJetStream(); err != nil {
				t.Fatal(err)
			}
			o.Mended()
			jsDrained(t, s, o)
			if r, err := CompareJetStream(context.Background(), s, js, jsTestSite); err != nil || !r.OK {
				t.Fatalf("mirror after the restart: %+v, %v", r, err)
			}
		})
	}
}

// TestMenderWaitsForRoomAndBacksOff: no restart while the store's file
// system lacks the room asked for, nor before a stall has lasted After;
// restarts that do not end a stall come at doubling intervals.
func TestMenderWaitsForRoomAndBacksOff(t *testing.T) {
	dir := t.TempDir()
	srv := jsServer(t, dir, "127.0.0.1:-1")
	p := &stallAfter{}
	run := func(m *Mender, d time.Duration) int {
		m.Server, m.Publishers, m.Dir, m.Every = srv, []Staller{p}, dir, 10*time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := m.Run(ctx); err != nil {
			t.Fatal(err)
		}
		return m.restarts
	}
	if n := run(&Mender{After: 50 * time.Millisecond}, 300*time.Millisecond); n != 0 {
		t.Errorf("no stall: %d restarts", n)
	}
	p.mu.Lock()
	p.since = time.Now()
	p.mu.Unlock()
	if n := run(&Mender{After: time.Hour}, 300*time.Millisecond); n != 0 {
		t.Errorf("a stall shorter than After: %d restarts", n)
	}
	free, ok := FreeBytes(dir)
	if !ok {
		t.Skip("the free space cannot be told here")
	}
	if n := run(&Mender{After: 50 * time.Millisecond, MinFree: free * 2}, 300*time.Millisecond); n != 0 {
		t.Errorf("too little room: %d restarts", n)
	}
	// Stalled all along: restarts at 50, +100, +200, +400, +800 ms: 5 in
	// 2 s (a look every 10 ms, so a little later each; fewer when each
	// restart of JetStream is slow on a loaded machine), not 2 s / 50 ms.
	n := run(&Mender{After: 50 * time.Millisecond}, 2*time.Second)
	if n < 2 || n > 6 {
		t.Errorf("stalled for 2 s with After 50 ms: %d restarts, want about 5", n)
	}
	// The publisher was told of each, to try again at once.
	p.mu.Lock()
	mended := p.mended
	p.mu.Unlock()
	if mended != n {
		t.Errorf("%d restarts, the publisher told of %d", n, mended)
	}
	// JetStream is back after them.
	_, js := jsConnect(t, srv)
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Errorf("after the restarts: %v", err)
	}
}

// steadyMirror is an embedded server whose events stream mirrors a store
// of n events, through an outbox as serve makes it: creating missing
// streams, not while JetStream restarts. setup runs before the outbox.
func steadyMirror(t *testing.T, n int, setup ...func(*Outbox)) (*Embedded, jetstream.JetStream, *Store, *Outbox) {
	t.Helper()
	srv, js := jsCapturing(t)
	s := jsStore(t)
	jsAppend(t, s, n)
	o, _ := jsOutboxUnder(t, s, js, srv.Capture(), append([]func(*Outbox){func(o *Outbox) {
		o.CreateStreams(1)
		o.CreateSteadily(srv.Steady)
	}}, setup...)...)
	jsDrained(t, s, o)
	return srv, js, s, o
}

// TestReadersRideOutARestartOfJetStream: a reader (replay, verify,
// restore beside a server) reading while JetStream's streams are away for
// a restart (Mender) is answered once they are back: the direct-get relay
// holds its requests meanwhile, where they would have found no one to
// answer them.
func TestReadersRideOutARestartOfJetStream(t *testing.T) {
	srv, _, _, _ := steadyMirror(t, 20_000)
	ctx := t.Context()
	nc, reader, err := Connect(ctx, srv.ClientURL(), "reader", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// JetStream away, as RestartJetStream makes it, for 300 ms.
	acc := srv.GlobalAccount()
	srv.restart.Lock()
	if err := acc.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	scanned, got := make(chan error, 1), make(chan error, 1)
	go func() {
		n := 0
		err := ScanJetStream(ctx, reader, jsTestSite, 0, func(Envelope) error { n++; return nil })
		if err == nil && n != 20_000 {
			err = fmt.Errorf("read %d events", n)
		}
		scanned <- err
	}()
	go func() {
		m, err := getDirect(ctx, reader, directOne{Seq: 7})
		if err == nil && (m == nil || m.Seq != 7) {
			err = fmt.Errorf("got %+v", m)
		}
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := acc.EnableJetStream(nil, nil); err != nil {
		t.Fatal(err)
	}
	srv.restart.Unlock()
	if err := <-scanned; err != nil {
		t.Errorf("a read across the restart: %v", err)
	}
	if err := <-got; err != nil {
		t.Errorf("a single get across the restart: %v", err)
	}
}

// TestOutboxLeavesStreamsBeingReadBack: while JetStream reads its streams
// back (RestartJetStream), a stream not yet read is "not found"; the
// outbox, looking for its stream then, waits for the restart to end
// instead of creating the stream anew (which would take the place of the
// one being read back, and of its consumers).
func TestOutboxLeavesStreamsBeingReadBack(t *testing.T) {
	srv, js, s, o := steadyMirror(t, 5_000, func(o *Outbox) {
		o.look = time.Millisecond // look for the stream at every tick
		o.tick = 5 * time.Millisecond
	})
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if err := srv.RestartJetStream(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := o.lost.Load(); n > 0 {
		t.Errorf("the outbox took a stream being read back for a lost one %d times", n)
	}
	jsAppend(t, s, 10)
	jsDrained(t, s, o)
	if r, err := CompareJetStream(t.Context(), s, js, jsTestSite); err != nil || !r.OK {
		t.Fatalf("mirror after the restarts: %+v, %v", r, err)
	}
}
