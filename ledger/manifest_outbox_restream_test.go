package ledger

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestManifestOutboxRefillsAStreamMadeAgainBetweenLooks: a manifests
// stream deleted and made again by someone else between two looks (the
// events outbox, another site's server) lacks the days confirmed in the
// old one: the outbox publishes them again.
func TestManifestOutboxRefillsAStreamMadeAgainBetweenLooks(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-21", "2026-11-22")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = time.Hour // only woken
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "two manifests", func() bool { return len(manifestMsgs(t, js)) == 2 && o.Lag() == 0 })
	if err := js.DeleteStream(t.Context(), ManifestsStream); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(t.Context(), js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	o.Wake()
	jsWait(t, 20*time.Second, "the manifests again", func() bool { return len(manifestMsgs(t, js)) == 2 })
	checkManifests(t, js, src, "2026-11-21", "2026-11-22")
}

// TestManifestOutboxAddsItsSubjectToAStreamMadeAgainByAnotherSite: on a
// shared cluster, a manifests stream made again by another site's server
// takes that site's subject only; the outbox that may create streams adds
// its own back and publishes its days again at once, not at its next look.
func TestManifestOutboxAddsItsSubjectToAStreamMadeAgainByAnotherSite(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	src := sealedManifests("2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.CreateStreams(1)
	o.every = time.Hour // only woken
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "the manifest", func() bool { return len(manifestMsgs(t, js)) == 1 && o.Lag() == 0 })
	if err := js.DeleteStream(t.Context(), ManifestsStream); err != nil {
		t.Fatal(err)
	}
	if err := ensureStream(t.Context(), js, ManifestsStream, siteManifestsFilter("s2"), 1, ""); err != nil {
		t.Fatal(err)
	}
	o.Wake()
	jsWait(t, 20*time.Second, "the manifest again", func() bool { return len(manifestMsgs(t, js)) == 1 })
	checkManifests(t, js, src, "2026-11-21")
}

// TestAManifestOutboxThatMayNotCreateStreamsLeavesTheirSubjectsAlone: an
// outbox not allowed to create streams (an external server's, made by its
// operator) that finds no stream taking its subject retries, and leaves
// the stream's subjects to the operator.
func TestAManifestOutboxThatMayNotCreateStreamsLeavesTheirSubjectsAlone(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	editStream(t, js, ManifestsStream, func(cfg *jetstream.StreamConfig) { cfg.Subjects = []string{siteManifestsFilter("s2")} })
	src := sealedManifests("2026-11-21")
	o := NewManifestOutbox(js, jsTestSite, src, nil)
	o.every = 20 * time.Millisecond
	stop := runOutbox(t, o)
	defer stop()
	jsWait(t, 20*time.Second, "a failed publish", func() bool { return o.failing.Load() != 0 })
	time.Sleep(100 * time.Millisecond) // more looks
	s, err := js.Stream(t.Context(), ManifestsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, []string{siteManifestsFilter("s2")}) {
		t.Errorf("the stream's subjects became %v", got)
	}
	if o.Lag() != 1 || len(manifestMsgs(t, js)) != 0 {
		t.Errorf("lag %d, %d manifests, with no stream taking the site", o.Lag(), len(manifestMsgs(t, js)))
	}
}
