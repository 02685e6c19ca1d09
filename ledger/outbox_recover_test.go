package ledger

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestOutboxMismatchEndsOnceTheStreamContinuesTheLedger: an outbox that
// found another ledger's events in the stream stops, and says so; once
// the stream is deleted and made again (the operator's remedy), it fills
// it from its ledger and the problem is gone.
func TestOutboxMismatchEndsOnceTheStreamContinuesTheLedger(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	other := jsStore(t)
	jsAppend(t, other, 30)
	o1, stop1 := jsOutbox(t, other, js)
	jsDrained(t, other, o1)
	stop1()

	s := jsStore(t)
	jsAppend(t, s, 10)
	o, _ := jsOutbox(t, s, js)
	jsWait(t, 10*time.Second, "the mismatch", func() bool { return errors.Is(o.Mismatch(), ErrMismatch) })
	if err := js.DeleteStream(t.Context(), EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(t.Context(), js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
	if err := o.Mismatch(); err != nil {
		t.Errorf("the stream continues the ledger again: problem %v", err)
	}
}

// outboxWithoutStream runs an outbox, logging into logged, for a ledger
// of 3 events whose events stream is missing, and which it is not told to
// create: each of its sessions fails.
func outboxWithoutStream(t *testing.T) (js jetstream.JetStream, s *Store, o *Outbox, stop func(), logged *safeBuffer) {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js = jsConnect(t, srv)
	if err := js.DeleteStream(t.Context(), EventsStream); err != nil {
		t.Fatal(err)
	}
	s = jsStore(t)
	jsAppend(t, s, 3)
	logged = &safeBuffer{}
	o, stop = jsOutboxUnder(t, s, js, "", logInto(logged))
	return js, s, o, stop, logged
}

// TestOutboxBacksOffNoLongerThanMaxBackoff: sessions failing one after
// another (here: the stream missing, and the outbox not to create it)
// wait longer each time, but never longer than maxBackoff, so the mirror
// catches up soon after an outage of any length.
func TestOutboxBacksOffNoLongerThanMaxBackoff(t *testing.T) {
	_, _, o, stop, logged := outboxWithoutStream(t)
	const fails = 8 // the doubling passes maxBackoff at the 5th
	jsWait(t, 15*time.Second, "sessions to fail", func() bool { return strings.Count(logged.String(), "publishing interrupted") >= fails })
	stop()
	waits := regexp.MustCompile(`publishing interrupted.* backoff=(\S+)`).FindAllStringSubmatch(logged.String(), -1)
	if len(waits) < fails {
		t.Fatalf("%d waits logged:\n%s", len(waits), logged.String())
	}
	for i, m := range waits {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if d > o.maxBackoff {
			t.Errorf("wait %d after a failed session: %v, more than maxBackoff %v", i+1, d, o.maxBackoff)
		}
	}
}

// TestOutboxLeavesAMissingStreamToWhoeverMakesIt: an outbox not told to
// create the streams (an external cluster whose operators make them)
// never makes one it finds missing; it tries again until someone does.
func TestOutboxLeavesAMissingStreamToWhoeverMakesIt(t *testing.T) {
	js, s, o, _, logged := outboxWithoutStream(t)
	jsWait(t, 15*time.Second, "sessions to fail", func() bool { return strings.Count(logged.String(), "publishing interrupted") >= 3 })
	if _, err := js.Stream(t.Context(), EventsStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the events stream after the outbox's sessions: %v, want it still missing", err)
	}
	if err := EnsureStreams(t.Context(), js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	jsDrained(t, s, o)
	jsCheckMirror(t, s, js)
}

// TestOutboxGapEndsOnceTheMirrorIsWholeAgain: the stream lacking the
// site's first events is the outbox's problem until the stream is made
// again: at once when it is found empty, and when it is found holding the
// ledger from seq 1, refilled meanwhile.
func TestOutboxGapEndsOnceTheMirrorIsWholeAgain(t *testing.T) {
	s, js := jsMirrored(t, 20)
	ctx := t.Context()
	o := NewOutbox(s, js, jsTestSite, nil) // not run: its checks are called here
	cutAndLook := func() {
		t.Helper()
		st, err := js.Stream(ctx, EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Purge(ctx, jetstream.WithPurgeSequence(11)); err != nil {
			t.Fatal(err)
		}
		o.checkFirst(ctx, js, streamTail{seq: 20})
		if p := o.gap.Load(); p == nil || !errors.Is(*p, ErrMismatch) {
			t.Fatal("the stream's first 10 events purged: no gap reported")
		}
	}
	remake := func() {
		t.Helper()
		if err := js.DeleteStream(ctx, EventsStream); err != nil {
			t.Fatal(err)
		}
		if err := EnsureStreams(ctx, js, jsTestSite, 1); err != nil {
			t.Fatal(err)
		}
	}
	refill := func() {
		t.Helper()
		o2, stop := jsOutbox(t, s, js)
		jsDrained(t, s, o2)
		stop()
	}

	cutAndLook()
	remake()
	o.checkFirst(ctx, js, streamTail{seq: 0})
	if p := o.gap.Load(); p != nil {
		t.Errorf("the stream made again, empty: gap %v", *p)
	}

	refill()
	cutAndLook()
	remake()
	refill()
	o.checkFirst(ctx, js, streamTail{seq: 20})
	if p := o.gap.Load(); p != nil {
		t.Errorf("the stream made again and refilled: gap %v", *p)
	}
}
