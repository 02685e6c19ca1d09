package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOutboxPublishesAnEventAtTheServersBound: an event whose message
// (its bytes and the allowance for its header) is exactly the server's
// max_payload is taken by the server, so the outbox publishes it rather
// than hold it back as too large.
func TestOutboxPublishesAnEventAtTheServersBound(t *testing.T) {
	js := smallPayloadJS(t) // 64 KiB
	s := jsStore(t)
	note := func(n int) Event {
		return Event{Type: TypeCommand, Data: Command{Command: "metadata", Params: []Param{{Key: "note", Value: strings.Repeat("x", n)}}, Transport: TransportHTTP}}
	}
	probe, err := s.Append(context.Background(), note(0), note(0)) // the second has a prev, as the large one
	if err != nil {
		t.Fatal(err)
	}
	n := 64<<10 - msgOverhead - len(probe[1].Raw)
	envs, err := s.Append(context.Background(), note(n))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(envs[0].Raw) + msgOverhead; got != 64<<10 {
		t.Fatalf("the event's message is %d bytes, want 64 KiB", got)
	}
	o, _ := jsOutbox(t, s, js)
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if err := o.Mismatch(); err != nil {
		t.Errorf("problem %v", err)
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

	big := Event{Type: TypeCommand, Data: Command{Command: "metadata", Params: []Param{{Key: "note", Value: strings.Repeat("x", 80<<10)}}, Transport: TransportHTTP}}
	if _, err := s.Append(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 2)
	o, _ := jsOutbox(t, s, js)
	jsWait(t, 10*time.Second, "the outbox to say it waits", func() bool { return errors.Is(o.Mismatch(), ErrTooLarge) })
	if lag := o.Lag(); lag != 3 {
		t.Errorf("lag %d, want the large event and the two behind it", lag)
	}
}
