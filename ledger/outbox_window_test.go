package ledger

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestOutboxKeepsToItsWindow: no more than window publishes await their
// ack at any time, and they are the outbox's own: none counts against
// the JetStream context it was given, which others use too.
func TestOutboxKeepsToItsWindow(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 2000)
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) { o.window = 1 })
	pub := o.publisher()
	var most, given atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for o.Confirmed() < 2000 {
			if n := int64(pub.PublishAsyncPending()); n > most.Load() {
				most.Store(n)
			}
			if n := int64(js.PublishAsyncPending()); n > given.Load() {
				given.Store(n)
			}
		}
	}()
	jsDrained(t, s, o)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("sampler did not end")
	}
	if n := most.Load(); n > 1 {
		t.Errorf("%d publishes awaited their ack at once, window 1", n)
	}
	if n := given.Load(); n > 0 {
		t.Errorf("%d of the outbox's publishes pending on the context it was given", n)
	}
}
