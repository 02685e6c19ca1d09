package ledger

import (
	"testing"
	"time"
)

// TestOutboxPublishesACommitWithoutItsTick: a commit wakes the outbox;
// the tick is only a safety net. With the tick an hour away, each append
// is mirrored all the same: the session's first, then the later ones.
func TestOutboxPublishesACommitWithoutItsTick(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) { o.tick, o.look = time.Hour, time.Hour })
	jsWait(t, 15*time.Second, "the outbox to read the stream", o.LagKnown)
	for range 3 {
		jsAppend(t, s, 1)
		jsDrained(t, s, o)
	}
	jsCheckMirror(t, s, js)
}
