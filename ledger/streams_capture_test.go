package ledger

import (
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestCapturingStreamsDenyRemovingMessages: the embedded server's streams
// (with a capture prefix) deny deleting and purging messages, whether
// EnsureStreamsCapturing makes them or finds them allowing either.
func TestCapturingStreamsDenyRemovingMessages(t *testing.T) {
	srv, js := jsCapturing(t)
	denied := func(when string) {
		t.Helper()
		for _, name := range []string{EventsStream, ManifestsStream} {
			s, err := js.Stream(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			if cfg := s.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge {
				t.Errorf("%s: %s: deny delete %v, deny purge %v", when, name, cfg.DenyDelete, cfg.DenyPurge)
			}
		}
	}
	denied("made")
	// JetStream lets a stream's denials be set, never lifted: a stream
	// made elsewhere may deny one only.
	if err := js.DeleteStream(t.Context(), ManifestsStream); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: ManifestsStream, Subjects: []string{captured(siteManifestsFilter(jsTestSite), srv.Capture())},
		SubjectTransform: captureTransform(srv.Capture()), DenyDelete: true}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreamsCapturing(t.Context(), js, jsTestSite, 1, srv.Capture()); err != nil {
		t.Fatal(err)
	}
	denied("found denying deletes only")
}

// TestCapturingStreamsTakeOnlyTheCurrentPrefix: streams left on another
// start's capture prefix are set to this start's alone; the other prefix
// is not kept beside it.
func TestCapturingStreamsTakeOnlyTheCurrentPrefix(t *testing.T) {
	srv, js := jsCapturedByAnotherStart(t)
	if err := EnsureStreamsCapturing(t.Context(), js, jsTestSite, 1, srv.Capture()); err != nil {
		t.Fatal(err)
	}
	for name, filter := range map[string]string{EventsStream: siteEventsFilter(jsTestSite), ManifestsStream: siteManifestsFilter(jsTestSite)} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.CachedInfo().Config.Subjects, []string{captured(filter, srv.Capture())}; !slices.Equal(got, want) {
			t.Errorf("%s subjects %v, want %v", name, got, want)
		}
	}
}
