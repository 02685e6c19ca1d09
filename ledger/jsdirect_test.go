package ledger

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestDirectGetsWithoutFilter: while the stream holds only this site's
// subject and messages, its events are read without a subject filter;
// another site's subject (configured before, or arriving during the read),
// or another site's messages left behind in it, bring the filter back, and
// no read ever gives another site's events.
func TestDirectGetsWithoutFilter(t *testing.T) {
	ctx := context.Background()
	s, js := jsMirrored(t, 200)
	want := jsCollect(t, func(fn func(Envelope) error) error { return s.Scan(ctx, 0, fn) })
	tail, err := readTail(ctx, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if !soleSite(ctx, js, jsTestSite) {
		t.Fatal("a stream of this site alone: soleSite false")
	}
	next := uint64(0)
	got := jsCollect(t, func(fn func(Envelope) error) error {
		return readSiteDirect(ctx, js, jsTestSite, true, &next, tail.streamSeq, 7, nil, func(_ uint64, e Envelope) error { return fn(e) })
	})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("without a filter: %d events, differing from bbolt's %d", len(got), len(want))
	}

	// Another site arrives during the read: after the batch that saw it
	// the read stops with errNotSole, before giving that batch to anyone,
	// and readSite reads on with the filter.
	foreign := []byte(`{"not":"ours"}`)
	added := false
	got = nil
	err = readSiteSized(ctx, js, jsTestSite, 0, tail.streamSeq, 7, nil, func(_ uint64, e Envelope) error {
		if !added {
			added = true
			if err := EnsureStreams(ctx, js, "s2", 1); err != nil {
				return err
			}
			if _, err := js.Publish(ctx, EventSubject("s2", TypeCommand), foreign); err != nil {
				return err
			}
		}
		got = append(got, e.Raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("site added during the read: %d events, differing from bbolt's %d", len(got), len(want))
	}
	if n := len(jsStreamMsgs(t, js)); n != len(want)+1 {
		t.Fatalf("stream holds %d messages, want this site's %d and the other's", n, len(want))
	}
	next = 0
	err = readSiteDirect(ctx, js, jsTestSite, true, &next, tail.streamSeq, 7, nil, func(uint64, Envelope) error { return nil })
	if !errors.Is(err, errNotSole) || next != 0 {
		t.Errorf("unfiltered read of a stream with two sites: %v at %d, want errNotSole at 0", err, next)
	}
	if soleSite(ctx, js, jsTestSite) {
		t.Error("stream with two sites' subjects: soleSite true")
	}

	// The other site's subject removed, its message left behind.
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Subjects = []string{siteEventsFilter(jsTestSite)}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if soleSite(ctx, js, jsTestSite) {
		t.Error("another site's message left in the stream: soleSite true")
	}
	got = jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, js, jsTestSite, 0, fn) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with another site's message left: %d events, differing from bbolt's %d", len(got), len(want))
	}
}
