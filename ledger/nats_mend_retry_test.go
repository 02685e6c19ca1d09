//go:build linux

package ledger

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// heldStall is a publisher whose stall is what the test sets, not a
// time that grows: it counts the Mender's looks and records each Mended.
// Once mended with clear set, it is stalled no more.
type heldStall struct {
	mu     sync.Mutex
	d      time.Duration
	clear  bool
	looks  int
	mended []time.Time
}

func (h *heldStall) Stalled() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.looks++
	return h.d
}

func (h *heldStall) Mended() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mended = append(h.mended, time.Now())
	if h.clear {
		h.d = 0
	}
}

func (h *heldStall) set(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.d = d
}

func (h *heldStall) counts() (looks, mended int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.looks, len(h.mended)
}

// startMender runs m on srv for ps, logging to log, until the test ends.
func startMender(t *testing.T, srv *Embedded, m *Mender, log *safeBuffer, ps ...Staller) {
	t.Helper()
	m.Server, m.Publishers, m.Dir = srv, ps, srv.StoreDir()
	if log != nil {
		m.Log = slog.New(slog.NewTextHandler(log, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// TestMenderHearsEveryPublisher: serve's Mender watches both the events
// outbox and the manifests outbox; a stall of either one is a stall to
// mend, not only of the first one named.
func TestMenderHearsEveryPublisher(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	fine, stuck := &heldStall{}, &heldStall{d: time.Hour}
	startMender(t, srv, &Mender{After: 50 * time.Millisecond, Every: 10 * time.Millisecond}, nil, fine, stuck)
	jsWait(t, 20*time.Second, "a restart for the second publisher's stall", func() bool {
		_, n := stuck.counts()
		return n > 0
	})
}

// TestMenderSpacesRestartsThatDoNotHelp: a publisher stalled long before
// (an hour) stays stalled after each restart; the Mender then waits After,
// 2×After, 4×After since its last restart before the next, rather than
// restarting JetStream at every look (each restart makes every client's
// requests go unanswered while the streams are read back).
func TestMenderSpacesRestartsThatDoNotHelp(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	p := &heldStall{d: time.Hour}
	const after = 200 * time.Millisecond
	startMender(t, srv, &Mender{After: after, Every: 10 * time.Millisecond}, nil, p)
	jsWait(t, 30*time.Second, "three restarts", func() bool {
		_, n := p.counts()
		return n >= 3
	})
	p.mu.Lock()
	at := append([]time.Time(nil), p.mended...)
	p.mu.Unlock()
	// A restart's own length blurs the instants a little: three quarters
	// of each wait is the bound.
	for i, wait := range []time.Duration{2 * after, 4 * after} {
		if gap := at[i+1].Sub(at[i]); gap < wait*3/4 {
			t.Errorf("restart %d came %v after the one before, want about %v", i+2, gap, wait)
		}
	}
}

// TestMenderStartsAfreshOnceAStallEnds: a restart that ends the stall
// is said once, and a later stall is mended once it has lasted After
// again, not the doubled wait left from the restart before (which would
// leave a mirror that stalls again behind for longer each time).
func TestMenderStartsAfreshOnceAStallEnds(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	// A stall of 300 ms that never grows: past After (200 ms), short of
	// twice After.
	p := &heldStall{d: 300 * time.Millisecond, clear: true}
	var logged safeBuffer
	startMender(t, srv, &Mender{After: 200 * time.Millisecond, Every: 10 * time.Millisecond}, &logged, p)
	jsWait(t, 20*time.Second, "the first restart", func() bool {
		_, n := p.counts()
		return n == 1
	})
	looks, _ := p.counts()
	jsWait(t, 20*time.Second, "the Mender to look again", func() bool {
		l, _ := p.counts()
		return l >= looks+5
	})
	if n := strings.Count(logged.String(), "the mirror advances again"); n != 1 {
		t.Errorf("the end of the stall said %d times, want once:\n%s", n, logged.String())
	}
	p.set(300 * time.Millisecond)
	jsWait(t, 20*time.Second, "a restart for the new stall", func() bool {
		_, n := p.counts()
		return n == 2
	})
}

// TestMenderBackoffStopsAtItsBound: the wait between restarts doubles up
// to 30 minutes, and no further: the log names the next try.
func TestMenderBackoffStopsAtItsBound(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	p := &heldStall{d: 2 * time.Hour}
	var logged safeBuffer
	startMender(t, srv, &Mender{After: 20 * time.Minute, Every: 10 * time.Millisecond}, &logged, p)
	jsWait(t, 20*time.Second, "the restart", func() bool {
		_, n := p.counts()
		return n == 1
	})
	jsWait(t, 5*time.Second, "its log line", func() bool { return strings.Contains(logged.String(), mendKeyNext+"=") })
	if !strings.Contains(logged.String(), mendKeyNext+"=30m0s") {
		t.Errorf("after a wait of 20 minutes, want the next try in 30 minutes:\n%s", logged.String())
	}
}

// TestMenderWaitsTheDefaultStall: a Mender without After waits for a
// stall of DefaultMendAfter, not for any stall at all: a publisher
// stalled for a few seconds (a slow ack) is no cause to restart
// JetStream.
func TestMenderWaitsTheDefaultStall(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	p := &heldStall{d: DefaultMendAfter / 3}
	startMender(t, srv, &Mender{Every: 10 * time.Millisecond}, nil, p)
	jsWait(t, 20*time.Second, "some looks", func() bool {
		l, _ := p.counts()
		return l >= 20
	})
	if _, n := p.counts(); n != 0 {
		t.Errorf("a stall of %v with the default After: %d restarts", DefaultMendAfter/3, n)
	}
}

// TestMenderTurnsJetStreamOnOnceItsStoreIsUsableAgain: JetStream turned
// off by the server (a write refused) whose store cannot be used yet (a
// file system still read-only, say) fails to come on; the Mender tries
// again at doubling intervals, each try a failure until the store is
// usable, and then turns JetStream on. A failed try must not leave
// JetStream looking on to the server while it serves nothing: every
// later restart then went through the motions and the mirror stayed off
// until serve was restarted.
func TestMenderTurnsJetStreamOnOnceItsStoreIsUsableAgain(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	storeDir := srv.StoreDir()
	if err := srv.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	// A file where the store's directory was: JetStream cannot start.
	if err := os.Rename(storeDir, storeDir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(storeDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &heldStall{d: time.Hour}
	var logged safeBuffer
	startMender(t, srv, &Mender{After: 50 * time.Millisecond, Every: 10 * time.Millisecond}, &logged, p)
	failed := func() []string {
		var next []string
		for _, line := range strings.Split(logged.String(), "\n") {
			if strings.Contains(line, "JetStream restart failed") {
				_, v, _ := strings.Cut(line, mendKeyNext+"=")
				next = append(next, strings.Fields(v + " ")[0])
			}
		}
		return next
	}
	jsWait(t, 20*time.Second, "three failed restarts", func() bool {
		_, n := p.counts()
		return len(failed()) >= 3 || n > 0
	})
	if _, n := p.counts(); n != 0 {
		t.Fatalf("%d restarts taken for done while the store could not be used:\n%s", n, logged.String())
	}
	if got := strings.Join(failed()[:3], " "); got != "100ms 200ms 400ms" {
		t.Errorf("the next tries after failed restarts: %s, want 100ms 200ms 400ms\n%s", got, logged.String())
	}
	// The store usable again: JetStream comes back with it.
	if err := os.Remove(storeDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(storeDir+".away", storeDir); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 30*time.Second, "JetStream on again", func() bool {
		_, n := p.counts()
		return n > 0
	})
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Errorf("JetStream turned on again, but: %v\n%s", err, logged.String())
	}
}
