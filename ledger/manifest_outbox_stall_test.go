package ledger

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestAStallEndsWhenNoDayWaits: a day whose publishes failed, then found
// holding another ledger's manifest, waits no more (it is skipped and
// logged): the outbox is no longer stalled, though none of its publishes
// went through, /readyz shows no problem, and a later day's stall counts
// from its own failures.
func TestAStallEndsWhenNoDayWaits(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-21")
	readable := unreadable(src, "2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only woken
	o.shownAfter = 0
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "a failed look", func() bool { return o.failing.Load() != 0 })
	if o.Stalled() == 0 || o.Problem() == nil {
		t.Fatalf("stalled %v, problem %v, with the day failing", o.Stalled(), o.Problem())
	}
	if err := publishManifest(t.Context(), js, jsTestSite, "2026-11-21", []byte("{\"other\":true}\n"), ""); err != nil {
		t.Fatal(err)
	}
	readable()
	o.Wake()
	jsWait(t, 20*time.Second, "the day skipped", func() bool { return o.Lag() == 0 })
	if d := o.Stalled(); d != 0 {
		t.Errorf("stalled %v with no day waiting", d)
	}
	if p := o.Problem(); p != nil {
		t.Errorf("problem with no day waiting: %v", p)
	}
	// A look with nothing waiting forgets those failures: a day failing
	// later is stalled from its own first failure only.
	skipped := time.Now()
	o.Wake()
	jsWait(t, 20*time.Second, "a look with nothing waiting", func() bool { return o.failing.Load() == 0 })
	src.seal("2026-11-22")
	unreadable(src, "2026-11-22")
	o.Wake()
	jsWait(t, 20*time.Second, "the next day failing", func() bool { return o.Stalled() != 0 })
	if d, since := o.Stalled(), time.Since(skipped); d >= since {
		t.Errorf("stalled %v, counted from before the look %v ago that found nothing waiting", d, since)
	}
}

// TestAManifestTooLargeIsNoStall: a day that turns out larger than the
// stream stores, after failed publishes, ends the stall (no restart of
// JetStream mends it): /readyz shows it as too large instead.
func TestAManifestTooLargeIsNoStall(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	streamMaxMsgSize(t, js, ManifestsStream, 16<<10)
	src := sealedManifests("2026-11-21")
	readable := unreadable(src, "2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only woken
	o.shownAfter = 0
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "a failed look", func() bool { return o.Stalled() != 0 })
	readable()
	src.mu.Lock()
	src.body["2026-11-21"] = incompressible(64 << 10)
	src.mu.Unlock()
	o.Wake()
	jsWait(t, 20*time.Second, "the day too large", func() bool { return errors.Is(o.Problem(), ErrTooLarge) })
	if d := o.Stalled(); d != 0 {
		t.Errorf("stalled %v behind a day too large", d)
	}
}

// TestAWaitForASealEventEndsWithIt: once a day's seal event is in the
// events stream its wait is over; a later day that fails to publish is
// shown as a stall, not as a wait for the events mirror.
func TestAWaitForASealEventEndsWithIt(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := &memManifests{}
	src.sealAt("2026-11-21", 10)
	var mirrored atomic.Uint64
	mirrored.Store(5)
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only woken, or polling for the events stream
	o.shownAfter = 0
	o.AfterEvents(mirrored.Load)
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "the wait for the seal event", func() bool { return o.Problem() != nil })
	mirrored.Store(10)
	jsWait(t, 20*time.Second, "the manifest", func() bool { return len(manifestMsgs(t, js)) == 1 && o.Lag() == 0 })
	src.sealAt("2026-11-22", 11)
	unreadable(src, "2026-11-22")
	mirrored.Store(11)
	o.Wake()
	jsWait(t, 20*time.Second, "the next day failing", func() bool { return o.Stalled() != 0 })
	if p := o.Problem(); !errors.Is(p, errManifestsStalled) {
		t.Errorf("problem: %v, want the stall", p)
	}
}
