package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestOutboxLagCountsEachEventNotInTheStream: Lag is the committed events
// the stream is not known to hold, down to the last one.
func TestOutboxLagCountsEachEventNotInTheStream(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 5)
	for held := range uint64(6) {
		o := NewOutbox(s, nil, jsTestSite, nil)
		o.Holds(held)
		if got := o.Lag(); got != 5-held {
			t.Errorf("stream holding %d of 5: lag %d, want %d", held, got, 5-held)
		}
	}
}

// stalledOutbox runs an outbox for s whose JetStream has gone away, the
// stream having held the ledger's first held events, and waits until its
// sessions have failed (a stall begun).
func stalledOutbox(t *testing.T, s *Store, held uint64, stallFor time.Duration) *Outbox {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	srv.Shutdown()
	srv.WaitForShutdown()
	o, _ := jsOutboxUnder(t, s, js, "", func(o *Outbox) {
		o.Holds(held)
		o.stallFor = stallFor
	})
	jsWait(t, 15*time.Second, "a session to fail", func() bool { return o.stall.Load() != nil })
	return o
}

// TestOutboxIsNotStalledWithNothingWaiting: JetStream away for longer
// than stallFor is no problem of the outbox while every event is in the
// stream; once one waits, it is.
func TestOutboxIsNotStalledWithNothingWaiting(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 5)
	o := stalledOutbox(t, s, 5, 200*time.Millisecond)
	time.Sleep(400 * time.Millisecond) // past stallFor
	if err := o.Mismatch(); err != nil || o.Stalled() != 0 {
		t.Fatalf("nothing waits: problem %v, stalled %v; want none", err, o.Stalled())
	}
	jsAppend(t, s, 1)
	jsWait(t, 15*time.Second, "the stall reported", func() bool { return errors.Is(o.Mismatch(), errStalled) })
}

// TestOutboxStallIsAProblemOnlyAfterStallFor: events waiting on a
// JetStream that is away are a stall (Stalled counts it) but not the
// outbox's problem on /readyz until they have waited stallFor.
func TestOutboxStallIsAProblemOnlyAfterStallFor(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 5)
	o := stalledOutbox(t, s, 3, time.Hour)
	if o.Stalled() <= 0 {
		t.Fatalf("events wait with JetStream away: stalled %v", o.Stalled())
	}
	if err := o.Mismatch(); err != nil {
		t.Fatalf("stalled for %v of an hour's stallFor: problem %v", o.Stalled(), err)
	}
}

// TestOutboxShowsALostStreamForLostShown: a stream found lost is the
// outbox's problem for lostShown after it was found, then no longer.
func TestOutboxShowsALostStreamForLostShown(t *testing.T) {
	s := jsStore(t)
	o := NewOutbox(s, nil, jsTestSite, nil)
	o.noteLost()
	if err := o.Mismatch(); !errors.Is(err, errStreamDeleted) {
		t.Fatalf("just found lost: problem %v, want errStreamDeleted", err)
	}
	o.lostAt.Store(time.Now().Add(-lostShown - time.Second).UnixNano())
	if err := o.Mismatch(); err != nil {
		t.Fatalf("lost longer than %v ago: problem %v, want none", lostShown, err)
	}
}

// TestOutboxDatesTheWaitFromTheLastConfirmation: while a backlog drains,
// the events still waiting wait from the last publish confirmed, not
// from when the first of them was committed: a JetStream lost halfway
// through is a stall from then on, not one as long as the backlog took.
func TestOutboxDatesTheWaitFromTheLastConfirmation(t *testing.T) {
	s := jsStore(t)
	o := NewOutbox(s, nil, jsTestSite, nil)
	envs, err := s.Append(context.Background(), jsEvents(0, 5)...)
	if err != nil {
		t.Fatal(err)
	}
	o.waitSince.Store(time.Now().Add(-time.Hour).UnixNano()) // the backlog began an hour ago
	before := time.Now()
	ack := func(e Envelope) {
		t.Helper()
		if err := o.acked(context.Background(), pendingAck{seq: e.Seq, raw: e.Raw}, &jetstream.PubAck{Stream: EventsStream, Sequence: e.Seq}); err != nil {
			t.Fatal(err)
		}
	}
	ack(envs[2])
	if since := o.waitingSince(); since.Before(before) {
		t.Errorf("seq 3 of 5 confirmed: the rest wait since %v, before the confirmation at %v", since, before)
	}
	ack(envs[4])
	if w := o.waitSince.Load(); w != 0 {
		t.Errorf("every event confirmed: waiting since %v, want none waiting", time.Unix(0, w))
	}
}

// TestOutboxCountsOnlyAcksOfTheEventsStream: a publish stored by another
// stream that takes the site's subject (an operator's stream made in
// place of the lost one, say) is not an event in the mirror: the outbox
// does not count it as confirmed.
func TestOutboxCountsOnlyAcksOfTheEventsStream(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	ctx := t.Context()
	if err := js.DeleteStream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, js, "other", 1); err != nil { // the events stream, without this site
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "IMPOSTOR", Subjects: []string{siteEventsFilter(jsTestSite)}}); err != nil {
		t.Fatal(err)
	}
	s := jsStore(t)
	jsAppend(t, s, 5)
	var logged safeBuffer
	o, _ := jsOutboxUnder(t, s, js, "", logInto(&logged))
	jsWait(t, 15*time.Second, "the wrong stream's ack refused", func() bool {
		return strings.Contains(logged.String(), "acknowledged by stream")
	})
	if c, lag := o.Confirmed(), o.Lag(); c != 0 || lag != 5 {
		t.Errorf("events stored only in another stream: confirmed %d, lag %d; want 0 and 5", c, lag)
	}
}
