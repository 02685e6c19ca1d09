package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// shortEventsDedupe shrinks the events stream's deduplication window to
// the least JetStream takes, so that a test can outwait it.
func shortEventsDedupe(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	editStream(t, js, EventsStream, func(cfg *jetstream.StreamConfig) { cfg.Duplicates = 100 * time.Millisecond })
}

// TestOutboxResumeRefusesAHoleAfterItsLastAck: the session after an
// interrupted one checks, as it resumes, what landed beyond the last
// in-order ack; a hole there (one publish refused, the ones behind it
// stored) cannot be filled in order, so resume fails with a mismatch and
// takes nothing more as confirmed.
func TestOutboxResumeRefusesAHoleAfterItsLastAck(t *testing.T) {
	s, js := jsMirrored(t, 100)
	ctx := context.Background()
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 60); err != nil {
		t.Fatal(err)
	}
	o := NewOutbox(s, js, jsTestSite, nil)
	o.lastSeq, o.lastStreamSeq = 50, 50 // acknowledged in order before the interruption
	o.confirmed.Store(50)
	if _, _, err := o.resume(ctx, js); !errors.Is(err, ErrMismatch) {
		t.Fatalf("resume over a hole at seq 60: %v, want ErrMismatch", err)
	}
	if got := o.Confirmed(); got != 50 {
		t.Errorf("confirmed %d after a refused resume, want 50", got)
	}
}

// TestOutboxFirstPublishExpectsTheTailItRead: a publish of an earlier
// session that lands after the new session read the stream's tail (and
// after the deduplication window forgot its id) makes the session's first
// publish fail, rather than store the event a second time; the next
// session resumes after it.
func TestOutboxFirstPublishExpectsTheTailItRead(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	shortEventsDedupe(t, js)
	ctx := context.Background()
	s := jsStore(t)
	jsAppend(t, s, 10)
	o1, stop1 := jsOutbox(t, s, js)
	jsDrained(t, s, o1)
	stop1()

	jsAppend(t, s, 1)
	o := NewOutbox(s, js, jsTestSite, nil)
	tail, _, err := o.resume(ctx, js)
	if err != nil || tail.seq != 10 {
		t.Fatalf("resume: tail %d, %v", tail.seq, err)
	}
	late, err := s.Get(ctx, 11)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, o.message(late)); err != nil { // the earlier session's, landing now
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // its id is out of the deduplication window
	if err := o.publishFirst(ctx, js, tail); err == nil {
		t.Error("the first publish went through over a tail that had moved")
	}
	if got := len(jsStreamMsgs(t, js)); got != 11 {
		t.Fatalf("the stream holds %d messages, want 11: seq 11 once", got)
	}
	o2, _ := jsOutbox(t, s, js)
	jsAppend(t, s, 1)
	jsDrained(t, s, o2)
	jsCheckMirror(t, s, js)
}

// TestOutboxKnowsItsLagOnceASessionReadTheStream: without Holds, the lag
// is not known until a session has read the stream; then it is, also
// when the session had nothing to publish.
func TestOutboxKnowsItsLagOnceASessionReadTheStream(t *testing.T) {
	s, js := jsMirrored(t, 5)
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) {
		if o.LagKnown() {
			t.Error("lag known before the stream was read")
		}
	})
	jsWait(t, 15*time.Second, "the session to read the stream", func() bool { return o.Confirmed() == 5 })
	if !o.LagKnown() || o.Lag() != 0 || o.Published() != 0 {
		t.Errorf("after reading a stream that holds the ledger: known %v, lag %d, published %d; want known, 0, 0", o.LagKnown(), o.Lag(), o.Published())
	}
}

// TestOutboxResumesInsideABatchTheFeedDropped: a session that resumes in
// the middle of a committed batch the commit hook could not queue (an
// earlier session published all but its last two, then failed) reads
// the rest of the batch from bbolt, down to the ledger's head, without
// waiting for another commit.
func TestOutboxResumesInsideABatchTheFeedDropped(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	ctx := context.Background()
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) {
		o.feed = make(chan []Envelope) // the hook drops every batch
		envs, err := s.Append(ctx, jsEvents(0, 20)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs[:18] { // what the earlier session published
			if _, err := js.PublishMsg(ctx, o.message(e)); err != nil {
				t.Fatal(err)
			}
		}
	})
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if got := o.Published(); got != 2 {
		t.Errorf("published %d, want the batch's last 2", got)
	}
}

// TestOutboxSkipsQueuedEventsTheStreamHolds: a session that resumes after
// a tail beyond events still queued in the feed (an earlier session
// published them, and the deduplication window has forgotten their ids)
// publishes only what follows the tail: each event once in the stream.
func TestOutboxSkipsQueuedEventsTheStreamHolds(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	shortEventsDedupe(t, js)
	s := jsStore(t)
	ctx := context.Background()
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) {
		envs, err := s.Append(ctx, jsEvents(0, 20)...) // queued in the feed
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs[:15] { // what the earlier session published
			if _, err := js.PublishMsg(ctx, o.message(e)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond) // their ids out of the deduplication window
	})
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if got := o.Published(); got != 5 {
		t.Errorf("published %d, want the batch's last 5", got)
	}
}
