package ledger

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestDirectGetsReadOneSite: the site's events are read with batched
// direct gets on its subjects, in batches of any size; another site's
// messages in the same stream are never given.
func TestDirectGetsReadOneSite(t *testing.T) {
	ctx := context.Background()
	s, js := jsMirrored(t, 200)
	want := jsCollect(t, func(fn func(Envelope) error) error { return s.Scan(ctx, 0, fn) })
	if err := EnsureStreams(ctx, js, "s2", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, EventSubject("s2", TypeCommand), []byte(`{"not":"ours"}`)); err != nil {
		t.Fatal(err)
	}
	tail, err := readTail(ctx, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{7, 200, 1000} {
		next := uint64(0)
		got := jsCollect(t, func(fn func(Envelope) error) error {
			return readSiteDirect(ctx, js, jsTestSite, &next, tail.streamSeq, directPace{batch: size, wait: jsDirectWait}, nil, func(_ uint64, e Envelope) error { return fn(e) })
		})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batches of %d: %d events, differing from bbolt's %d", size, len(got), len(want))
		}
	}
}

// TestStreamConfigRefusals: --replicas 3 against a NATS server that is
// not a cluster is a configuration error that says what to do, not an
// unavailable server to wait for.
func TestStreamConfigRefusals(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	err := EnsureStreams(t.Context(), js, jsTestSite, 3)
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "--replicas 1") {
		t.Fatalf("replicas 3 on one server: %v", err)
	}
	if err := EnsureStreams(t.Context(), js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(t.Context(), js, jsTestSite, 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an update to replicas 3: %v", err)
	}
	// Another stream of the operator's takes a site's subjects: also a
	// configuration to fix, said so, not a server away.
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{siteEventsFilter("s9")}}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(t.Context(), js, "s9", 1); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "another stream takes") {
		t.Fatalf("a site's subjects taken by another stream: %v", err)
	}
}
