package ledger

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

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

// TestAReadOfTheLastEventAloneIsAskedForAtOnce: a read from the stream's
// last event through itself (a replay resuming at the tail) asks for it
// at once, rather than waiting out a lost request (ten seconds in a
// replay) before asking.
func TestAReadOfTheLastEventAloneIsAskedForAtOnce(t *testing.T) {
	s, js := jsMirrored(t, 10)
	// A failure bound only: the read is answered at once, and waits an
	// hour for an answer it never asked for.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	want, err := s.Get(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// From the last event, and from the first in batches of 9, the last
	// event then alone in the second.
	for _, from := range []uint64{10, 0} {
		next := from
		var got [][]byte
		err = readSiteDirect(ctx, js, jsTestSite, &next, 10, directPace{batch: 9, wait: time.Hour}, func(uint64) {}, func(_ uint64, e Envelope) error {
			got = append(got, e.Raw)
			return nil
		})
		if err != nil || len(got) == 0 || !bytes.Equal(got[len(got)-1], want.Raw) {
			t.Fatalf("read from %d through the last event: %d events, %v", from, len(got), err)
		}
	}
}

// TestDirectGetsCancelledSayCancelled: a single get whose context is
// cancelled returns the context's error, which callers tell apart from
// an unavailable server (a shutdown is no outage to report).
func TestDirectGetsCancelledSayCancelled(t *testing.T) {
	_, js := jsMirrored(t, 3)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := getDirect(ctx, js, directOne{Seq: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled get: %v, want context.Canceled", err)
	}
}

// TestDirectGetSubjectFollowsTheDomain: a reader of a JetStream domain
// or API prefix (a leaf node's hub) sends its direct gets there.
func TestDirectGetSubjectFollowsTheDomain(t *testing.T) {
	for _, c := range []struct {
		o    jetstream.JetStreamOptions
		want string
	}{
		{jetstream.JetStreamOptions{}, "$JS.API.DIRECT.GET." + EventsStream},
		{jetstream.JetStreamOptions{Domain: "hub"}, "$JS.hub.API.DIRECT.GET." + EventsStream},
		{jetstream.JetStreamOptions{APIPrefix: "x.API"}, "x.API.DIRECT.GET." + EventsStream},
		{jetstream.JetStreamOptions{APIPrefix: "x.API."}, "x.API.DIRECT.GET." + EventsStream},
	} {
		if got := directGetSubject(c.o); got != c.want {
			t.Errorf("directGetSubject(%+v) = %q, want %q", c.o, got, c.want)
		}
	}
}
