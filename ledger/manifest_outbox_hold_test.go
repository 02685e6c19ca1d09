package ledger

import (
	"strings"
	"testing"
	"time"
)

// unreadable makes day's manifest fail to read until the returned
// function is called.
func unreadable(src *memManifests, day string) (readable func()) {
	src.mu.Lock()
	defer src.mu.Unlock()
	body := src.body[day]
	delete(src.body, day)
	return func() {
		src.mu.Lock()
		defer src.mu.Unlock()
		src.body[day] = body
	}
}

// TestAManifestThatCannotBeReadHoldsTheLaterDaysBack: a sealed day whose
// manifest cannot be read is retried, and no later day's manifest is
// published before it (upload workers take the days in order); once the
// failure has lasted, the manifests' problem names it.
func TestAManifestThatCannotBeReadHoldsTheLaterDaysBack(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-21", "2026-11-22")
	readable := unreadable(src, "2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = 20 * time.Millisecond
	o.shownAfter = time.Hour
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "a failed look", func() bool { return o.failing.Load() != 0 && o.Lag() == 2 })
	if p := o.Problem(); p != nil {
		t.Errorf("problem before the failure has lasted: %v", p)
	}
	time.Sleep(200 * time.Millisecond) // some ten looks
	if n, lag := len(manifestMsgs(t, js)), o.Lag(); n != 0 || lag != 2 {
		t.Fatalf("%d manifests published, lag %d, while the oldest day's cannot be read", n, lag)
	}
	o.shownAfter = 100 * time.Millisecond
	if p := o.Problem(); p == nil || !strings.Contains(p.Error(), "2 sealed days wait") || !strings.Contains(p.Error(), "manifest 2026-11-21") {
		t.Errorf("problem after failing for 200 ms: %v, want it to name the failure", p)
	}
	readable()
	jsWait(t, 20*time.Second, "both manifests", func() bool { return len(manifestMsgs(t, js)) >= 2 && o.Lag() == 0 })
	checkManifests(t, js, src, "2026-11-21", "2026-11-22")
}

// TestADayFoundHoldingAnotherManifestLaterIsSkipped: a day whose subject
// comes to hold another ledger's manifest after the outbox listed the
// stream is skipped (logged for an operator), and the later days are
// published behind it.
func TestADayFoundHoldingAnotherManifestLaterIsSkipped(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-21", "2026-11-22")
	readable := unreadable(src, "2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only woken
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "a failed look", func() bool { return o.failing.Load() != 0 })
	if err := publishManifest(t.Context(), js, jsTestSite, "2026-11-21", []byte("{\"other\":true}\n"), ""); err != nil {
		t.Fatal(err)
	}
	readable()
	o.Wake()
	jsWait(t, 20*time.Second, "the later day's manifest", func() bool { return len(manifestMsgs(t, js)) == 2 && o.Lag() == 0 })
	msgs := manifestMsgs(t, js)
	if string(msgs[0].Data) != "{\"other\":true}\n" || msgs[1].Subject != ManifestSubject(jsTestSite, "2026-11-22") {
		t.Errorf("stream holds %q on %s, then %s", msgs[0].Data, msgs[0].Subject, msgs[1].Subject)
	}
}

// TestARestartedManifestOutboxReadsOnlyWhatTheStreamLacks: the days whose
// manifests the stream holds are not read again (a busy day's is
// megabytes), neither at a restart nor at later looks.
func TestARestartedManifestOutboxReadsOnlyWhatTheStreamLacks(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-21", "2026-11-22")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = 20 * time.Millisecond
	stop := runOutbox(t, o)
	jsWait(t, 20*time.Second, "both manifests", func() bool { return len(manifestMsgs(t, js)) >= 2 && o.Lag() == 0 })
	time.Sleep(100 * time.Millisecond) // more looks
	stop()
	if reads := src.readCount(); reads != 2 {
		t.Errorf("%d manifest reads to publish two days", reads)
	}

	src.seal("2026-11-23")
	o = NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = 20 * time.Millisecond
	stop = runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "the third manifest", func() bool { return len(manifestMsgs(t, js)) >= 3 && o.Lag() == 0 })
	time.Sleep(100 * time.Millisecond) // more looks
	if reads := src.readCount(); reads != 3 {
		t.Errorf("%d manifest reads in all, want 3: one per day", reads)
	}
	checkManifests(t, js, src, "2026-11-21", "2026-11-22", "2026-11-23")
}

// TestAMendedManifestOutboxPublishesAtOnce: told that JetStream was
// restarted (Mended), the outbox publishes the days waiting then, not at
// its next look.
func TestAMendedManifestOutboxPublishesAtOnce(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := &memManifests{}
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only woken
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "the first look", func() bool { return o.looked.Load() })
	src.seal("2026-11-21")
	o.Mended()
	jsWait(t, 20*time.Second, "the manifest", func() bool { return len(manifestMsgs(t, js)) == 1 && o.Lag() == 0 })
	checkManifests(t, js, src, "2026-11-21")
}
