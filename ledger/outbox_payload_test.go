package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestOutboxPublishesAnEventAtTheServersBound: an event whose message
// (its bytes and its header) is exactly the server's max_payload is taken
// by the server, so the outbox publishes it rather than hold it back as
// too large; one a byte larger is held back.
func TestOutboxPublishesAnEventAtTheServersBound(t *testing.T) {
	js := smallPayloadJS(t) // 64 KiB
	s := jsStore(t)
	probe, err := s.Append(context.Background(), largeNote(0), largeNote(0)) // the second has a prev, as the large one
	if err != nil {
		t.Fatal(err)
	}
	hdr := (&nats.Msg{Header: nats.Header{jetstream.MsgIDHeader: []string{probe[1].ID.String()}}}).Size()
	n := 64<<10 - hdr - len(probe[1].Raw)
	envs, err := s.Append(context.Background(), largeNote(n))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(envs[0].Raw) + hdr; got != 64<<10 {
		t.Fatalf("the event's message is %d bytes, want 64 KiB", got)
	}
	o, _ := jsOutbox(t, s, js)
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if err := o.Mismatch(); err != nil {
		t.Errorf("problem %v", err)
	}

	if _, err := s.Append(context.Background(), largeNote(n+1)); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 1)
	jsWait(t, 10*time.Second, "the outbox to say it waits", func() bool { return errors.Is(o.Mismatch(), ErrTooLarge) })
	if lag := o.Lag(); lag != 2 {
		t.Errorf("lag %d, want the event a byte too large and the one behind it", lag)
	}
}

// TestOutboxSaysTooLargeForTheFirstEventOfASession: an event larger than
// the server takes is the outbox's problem also when it is the first a
// session publishes (as after every restart, and every session after the
// one that found it), not a passing interruption tried again for ever
// with nothing on /readyz but, much later, a stall.
func TestOutboxSaysTooLargeForTheFirstEventOfASession(t *testing.T) {
	js := smallPayloadJS(t)
	s := jsStore(t)
	jsAppend(t, s, 3)
	o1, stop1 := jsOutbox(t, s, js)
	jsDrained(t, s, o1)
	stop1()

	if _, err := s.Append(context.Background(), largeNote(80<<10)); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 2)
	o, _ := jsOutbox(t, s, js)
	jsWait(t, 10*time.Second, "the outbox to say it waits", func() bool { return errors.Is(o.Mismatch(), ErrTooLarge) })
	if lag := o.Lag(); lag != 3 {
		t.Errorf("lag %d, want the large event and the two behind it", lag)
	}
}

// streamMaxMsgSize sets stream's max_msg_size, as an operator of an
// external cluster may.
func streamMaxMsgSize(t *testing.T, js jetstream.JetStream, stream string, n int32) {
	t.Helper()
	editStream(t, js, stream, func(cfg *jetstream.StreamConfig) { cfg.MaxMsgSize = n })
}

// drainedOutbox is an outbox, set up by setup, that has mirrored a
// ledger of 3 events to a fresh embedded server's stream.
func drainedOutbox(t *testing.T, setup func(*Outbox)) (*Store, jetstream.JetStream, *Outbox) {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, 3)
	o, _ := jsOutboxUnder(t, s, js, "", setup)
	jsDrained(t, s, o)
	return s, js, o
}

// largeNote is a metadata command with a note of n bytes.
func largeNote(n int) Event {
	return Event{Type: TypeCommand, Data: Command{Command: "metadata", Params: []Param{{Key: "note", Value: strings.Repeat("x", n)}}, Transport: TransportHTTP}}
}

// TestOutboxHoldsBackAnEventLargerThanTheStreamStores: an event larger
// than the events stream's max_msg_size is held back, with the events
// behind it, and said, rather than published: the stream would refuse it
// and store the ones sent behind it, a hole no later publish can fill in
// order. Once the operator raises max_msg_size, the mirror is completed.
func TestOutboxHoldsBackAnEventLargerThanTheStreamStores(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	streamMaxMsgSize(t, js, EventsStream, 4<<10)
	s := jsStore(t)
	jsAppend(t, s, 3)
	if _, err := s.Append(context.Background(), largeNote(8<<10)); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 20)
	var logged safeBuffer
	o, _ := jsOutboxUnder(t, s, js, "", logInto(&logged))
	jsWait(t, 10*time.Second, "the outbox to say it waits", func() bool { return errors.Is(o.Mismatch(), ErrTooLarge) })
	if p := o.Mismatch().Error(); !strings.Contains(p, "seq 4") || !strings.Contains(p, "max_msg_size") {
		t.Errorf("problem %q: want the event's seq and the stream's max_msg_size", p)
	}
	time.Sleep(500 * time.Millisecond) // sessions after the one that found it
	if lag, n := o.Lag(), len(jsStreamMsgs(t, js)); lag != 21 || n != 3 {
		t.Errorf("lag %d, %d events in the stream; want 21, and the 3 before the large one", lag, n)
	}
	if n := strings.Count(logged.String(), "level=ERROR"); n != 1 {
		t.Errorf("the large event told %d times in the log, want once:\n%s", n, logged.String())
	}

	streamMaxMsgSize(t, js, EventsStream, 16<<10)
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if err := o.Mismatch(); err != nil {
		t.Errorf("problem %v once the stream stores the event", err)
	}
}

// TestOutboxFollowsAMaxMsgSizeLoweredWhileItRuns: a max_msg_size lowered
// while the outbox idles is read at its next look at the stream; an event
// committed after it, larger, is held back as at the start of a session.
func TestOutboxFollowsAMaxMsgSizeLoweredWhileItRuns(t *testing.T) {
	s, js, o := drainedOutbox(t, func(o *Outbox) { o.look = 50 * time.Millisecond })
	streamMaxMsgSize(t, js, EventsStream, 4<<10)
	time.Sleep(500 * time.Millisecond) // some looks
	if _, err := s.Append(context.Background(), largeNote(8<<10)); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 2)
	jsWait(t, 10*time.Second, "the outbox to say it waits", func() bool { return errors.Is(o.Mismatch(), ErrTooLarge) })
	if lag := o.Lag(); lag != 3 {
		t.Errorf("lag %d, want the large event and the two behind it", lag)
	}
}

// TestOutboxFollowsAMaxMsgSizeLoweredUnderTraffic: under steady appends,
// when the outbox never waits long enough for its idle look, the lowered
// max_msg_size is read all the same: the large event committed next, with
// events behind it, is held back rather than refused by the stream.
func TestOutboxFollowsAMaxMsgSizeLoweredUnderTraffic(t *testing.T) {
	s, js, o := drainedOutbox(t, func(o *Outbox) { o.look = 50 * time.Millisecond; o.tick = time.Hour })
	stop := jsAppendAlong(t, s, 1)
	streamMaxMsgSize(t, js, EventsStream, 4<<10)
	time.Sleep(500 * time.Millisecond) // some looks
	stop()
	envs, err := s.Append(context.Background(), append([]Event{largeNote(8 << 10)}, jsEvents(0, 5)...)...)
	if err != nil {
		t.Fatal(err)
	}
	jsWait(t, 10*time.Second, "the outbox to say it waits", func() bool { return errors.Is(o.Mismatch(), ErrTooLarge) })
	if n := uint64(len(jsStreamMsgs(t, js))); n != envs[0].Seq-1 {
		t.Errorf("the stream holds %d events, want the %d before the large one", n, envs[0].Seq-1)
	}
}

// TestOutboxReportsAHoleLeftByARefusedPublish: a max_msg_size lowered
// after the outbox last read it (the caveat in docs/clients.md) has the
// stream refuse a large event and store the ones sent behind it. The
// outbox does not take them as confirmed past the refused one: the
// mirror's hole is its problem, a mismatch naming the missing seq.
func TestOutboxReportsAHoleLeftByARefusedPublish(t *testing.T) {
	// Its ack awaited when the window is full, and when the commits are
	// all sent.
	for _, window := range []int{2, outboxWindow} {
		t.Run(fmt.Sprintf("window %d", window), func(t *testing.T) {
			s, js, o := drainedOutbox(t, func(o *Outbox) { o.look, o.window = time.Hour, window })
			streamMaxMsgSize(t, js, EventsStream, 4<<10)
			envs, err := s.Append(context.Background(), append([]Event{largeNote(8 << 10)}, jsEvents(0, 5)...)...)
			if err != nil {
				t.Fatal(err)
			}
			jsWait(t, 10*time.Second, "the hole reported", func() bool { return errors.Is(o.Mismatch(), ErrMismatch) })
			if p := o.Mismatch().Error(); !strings.Contains(p, fmt.Sprintf("lacks seq %d", envs[0].Seq)) {
				t.Errorf("problem %q: want it to name seq %d", p, envs[0].Seq)
			}
			if c := o.Confirmed(); c >= envs[0].Seq {
				t.Errorf("confirmed %d, at or past the refused seq %d", c, envs[0].Seq)
			}
		})
	}
}
