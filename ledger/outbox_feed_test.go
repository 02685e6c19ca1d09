package ledger

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// feedOutbox starts an outbox whose feed holds at most size batches.
func feedOutbox(t *testing.T, s *Store, size int) *Outbox {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	o := NewOutbox(s, js, jsTestSite, slog.New(slog.NewTextHandler(tWriter{t}, nil)))
	o.feed = make(chan []Envelope, size)
	o.ackTimeout = time.Second
	o.tick = 100 * time.Millisecond
	o.minBackoff = 20 * time.Millisecond
	o.maxBackoff = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("outbox Run: %v", err)
		}
	})
	t.Cleanup(func() { jsCheckMirror(t, s, js) })
	return o
}

// appendConcurrently appends n one-event batches from k goroutines, so
// that the writer commits many small batches in quick succession.
func appendConcurrently(t *testing.T, s *Store, k, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range k {
		wg.Go(func() {
			for i := g; i < n; i += k {
				if _, err := s.Append(context.Background(), jsEvents(i, 1)...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestOutboxPublishesFromTheFeed checks that events committed while the
// outbox runs are published from the commit hook's batches, not read back
// from bbolt; those committed before it subscribed come from bbolt.
func TestOutboxPublishesFromTheFeed(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 300) // before the outbox: only bbolt has them
	o := feedOutbox(t, s, outboxFeed)
	jsDrained(t, s, o)
	appendConcurrently(t, s, 8, 2000)
	jsDrained(t, s, o)
	if got := o.Published(); got != 2300 {
		t.Errorf("Published = %d, want 2300", got)
	}
	// The first event of the session goes alone, read with Get; the other
	// 299 old ones are scanned. Of the new ones, only a batch whose hook
	// had not yet run when the outbox looked may be read from bbolt too.
	if got := o.fromDB.Load(); got < 299 || got > 299+100 {
		t.Errorf("read %d events back from bbolt, want the 299 committed before the outbox and (nearly) no other", got)
	}
}

// TestOutboxFeedOverflowReadsBbolt checks that batches the hook drops
// because the feed is full are read from bbolt, each event published once
// and in order (jsCheckMirror at cleanup).
func TestOutboxFeedOverflowReadsBbolt(t *testing.T) {
	s := jsStore(t)
	o := feedOutbox(t, s, 0) // Run never waits on the feed: every batch is dropped
	appendConcurrently(t, s, 16, 3000)
	jsAppend(t, s, 1)
	jsDrained(t, s, o)
	if got := o.Published(); got != 3001 {
		t.Errorf("Published = %d, want 3001", got)
	}
	// All but the session's first event, which is read with Get.
	if got := o.fromDB.Load(); got != 3000 {
		t.Errorf("read %d events back from bbolt, want 3000", got)
	}
}
