package ledger

import (
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The two ends of a scan of the JetStream copy (ScanJetStreamNoting):
// where its chain check starts, at seq 1 or at the event it seeks, and
// where it stops, at the stream's last event when the scan began.

// relayedReads returns js seen through a relay of the test's, on another
// API prefix, that calls before with each direct get and then passes it
// on to JetStream: the test changes the stream at a chosen point of a read.
func relayedReads(t *testing.T, js jetstream.JetStream, before func(directGetRequest)) jetstream.JetStream {
	t.Helper()
	nc := js.Conn()
	sub, err := nc.Subscribe("relayed.API.DIRECT.GET.>", func(m *nats.Msg) {
		var req directGetRequest
		if json.Unmarshal(m.Data, &req) == nil {
			before(req)
		}
		_ = nc.PublishRequest("$JS.API.DIRECT.GET."+strings.TrimPrefix(m.Subject, "relayed.API.DIRECT.GET."), m.Reply, m.Data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	relayed, err := jetstream.NewWithAPIPrefix(nc, "relayed.API")
	if err != nil {
		t.Fatal(err)
	}
	return relayed
}

// TestScanJetStreamStopsAtTheTailItFound: events the stream takes while a
// scan reads it (the outbox goes on publishing) are not handed to the
// scan's caller, though a batch of direct gets brings them along: the
// scan ends at the last event the stream held when it began. Five more
// events are published before the first batched direct get.
func TestScanJetStreamStopsAtTheTailItFound(t *testing.T) {
	s, js := jsMirrored(t, 10)
	ctx := t.Context()
	jsAppend(t, s, 5) // in the ledger, not yet in the stream
	var appended atomic.Bool
	published := make(chan error, 1)
	late := relayedReads(t, js, func(req directGetRequest) {
		if req.Batch > 0 && !appended.Swap(true) {
			published <- s.Scan(ctx, 10, func(e Envelope) error {
				_, err := js.PublishMsg(ctx, &nats.Msg{Subject: EventSubject(jsTestSite, e.Type), Data: e.Raw,
					Header: nats.Header{jetstream.MsgIDHeader: []string{e.ID.String()}}})
				return err
			})
		}
	})

	var got []uint64
	if err := ScanJetStream(ctx, late, jsTestSite, 0, func(e Envelope) error { got = append(got, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if !appended.Load() {
		t.Fatal("no batched direct get: the test did not test")
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || got[0] != 1 || got[9] != 10 {
		t.Errorf("scan begun at seq 10 handed over seqs %v, want 1 to 10", got)
	}
	// The stream holds the five: a scan begun now reads them.
	n := 0
	if err := ScanJetStream(ctx, late, jsTestSite, 0, func(Envelope) error { n++; return nil }); err != nil || n != 15 {
		t.Errorf("a later scan: %d events, %v; want 15", n, err)
	}
}

// TestScanJetStreamNamesItsStartGoneWhileItReads: the event a scan after
// seq 5 found by seeking, removed from the stream before it is read
// (nats stream rmm, say), is a hole in the chain, not a reason to start
// from the next event unchecked: that would hand over seq 7 on as if 6
// were the event asked after.
func TestScanJetStreamNamesItsStartGoneWhileItReads(t *testing.T) {
	_, js := jsMirrored(t, 10) // stream seq = ledger seq
	ctx := t.Context()
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	var removed atomic.Bool
	deleted := make(chan error, 1)
	relayed := relayedReads(t, js, func(req directGetRequest) {
		if req.Batch > 0 && !removed.Swap(true) {
			deleted <- st.DeleteMsg(ctx, 5)
		}
	})
	n := 0
	err = ScanJetStream(ctx, relayed, jsTestSite, 5, func(Envelope) error { n++; return nil })
	if !removed.Load() {
		t.Fatal("no batched direct get: the test did not test")
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, ErrChainBroken) || n != 0 {
		t.Errorf("scan after 5, gone: %d events, err %v; want none and the chain broken", n, err)
	}
}

// publishEvents publishes raw events as a client would, without message
// ids, so that an event may be published twice.
func publishEvents(t *testing.T, js jetstream.JetStream, evs ...Envelope) {
	t.Helper()
	for _, e := range evs {
		if _, err := js.Publish(t.Context(), EventSubject(jsTestSite, e.Type), e.Raw); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScanJetStreamRefusesAFirstEventThatNamesAPredecessor: the chain is
// checked from its first link: seq 1's prev must be empty. A stream whose
// events from seq 1 on are a chain hung on some earlier event is not a
// ledger: restore --from-jetstream refuses to import it, so a scan (and
// compare, which would call it a whole copy) must not take it.
func TestScanJetStreamRefusesAFirstEventThatNamesAPredecessor(t *testing.T) {
	ctx := t.Context()
	_, js := jsConnect(t, jsServer(t, t.TempDir(), "127.0.0.1:-1"))
	evs := storedEvents(t, 3)
	prev := strings.Repeat("ab", 32) // the hash of no event of the stream
	for i := range evs {
		if _, err := evs[i].Seal(prev); err != nil {
			t.Fatal(err)
		}
		prev = evs[i].Hash
	}
	publishEvents(t, js, evs...)

	n := 0
	err := ScanJetStream(ctx, js, jsTestSite, 0, func(Envelope) error { n++; return nil })
	if !errors.Is(err, ErrChainBroken) || !strings.Contains(err.Error(), "seq 1: ") || n != 0 {
		t.Errorf("scan: %d events, err %v; want none and the chain broken at seq 1", n, err)
	}
	if err := jsStore(t).Import(ctx, evs); !errors.Is(err, ErrChainBroken) {
		t.Errorf("import of the same events: %v, want ErrChainBroken", err)
	}
}

// TestScanJetStreamAfterAnEventNamesItsRepeat: an event the stream holds
// twice in a row (published again once the stream's duplicate window
// had passed) breaks the chain, also for a scan that starts after that
// event: the copy found by seeking is where the chain check begins, not
// a place to begin again at each copy.
func TestScanJetStreamAfterAnEventNamesItsRepeat(t *testing.T) {
	ctx := t.Context()
	_, js := jsConnect(t, jsServer(t, t.TempDir(), "127.0.0.1:-1"))
	src := jsStore(t)
	jsAppend(t, src, 8)
	if err := src.Scan(ctx, 0, func(e Envelope) error {
		publishEvents(t, js, e)
		if e.Seq == 5 {
			publishEvents(t, js, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	for _, after := range []uint64{0, 4, 5} {
		n := 0
		err := ScanJetStream(ctx, js, jsTestSite, after, func(Envelope) error { n++; return nil })
		if !errors.Is(err, ErrChainBroken) || !strings.Contains(err.Error(), "seq 5 after 5") || n != 5-int(after) {
			t.Errorf("after %d: %d events, err %v; want %d and seq 5 named twice", after, n, err, 5-after)
		}
	}
}

// TestScanJetStreamThatFindsNoStartChecksFromSeqOne: when the seek finds
// no event numbered after in its place (it is missing, or the site's
// events are out of ledger order), the scan reads from the stream's
// first event and names the first broken link from seq 1 on, not the
// sought place.
func TestScanJetStreamThatFindsNoStartChecksFromSeqOne(t *testing.T) {
	ctx := t.Context()
	evs := storedEvents(t, 8)
	for _, c := range []struct {
		name   string
		stream []Envelope
		want   string
	}{
		{"seq 5 missing", append(append([]Envelope{}, evs[:4]...), evs[5:]...), "seq 6 after 4"},
		{"seqs 5 to 7 first", append(append(append([]Envelope{}, evs[4:7]...), evs[:4]...), evs[7]), "seq 5 after 0"},
	} {
		_, js := jsConnect(t, jsServer(t, t.TempDir(), "127.0.0.1:-1"))
		publishEvents(t, js, c.stream...)
		n := 0
		err := ScanJetStream(ctx, js, jsTestSite, 5, func(Envelope) error { n++; return nil })
		if !errors.Is(err, ErrChainBroken) || !strings.Contains(err.Error(), c.want) || n != 0 {
			t.Errorf("%s: %d events, err %v; want none and %q", c.name, n, err, c.want)
		}
	}
}

// TestTheOrderedConsumerEndsAtUntil: the ordered consumer, which reads a
// stream without direct gets, ends the read at stream seq until, which
// holds an event: it would otherwise wait for messages to come, and a
// scan of a stream that takes no more would never end.
func TestTheOrderedConsumerEndsAtUntil(t *testing.T) {
	_, js := jsMirrored(t, 20)
	var got []uint64
	err := readSiteConsumer(t.Context(), js, jsTestSite, 4, 10, func(uint64) {}, func(seq uint64, e Envelope) error {
		got = append(got, seq)
		if seq > 10 {
			return errors.New("read past until")
		}
		return nil
	})
	if err != nil || len(got) != 7 || got[0] != 4 || got[6] != 10 {
		t.Errorf("stream seqs 4 to 10: read %v, %v", got, err)
	}
}

// TestScanJetStreamFindsItsStartBehindForeignMessages: the seek steps
// over messages that are not events (docs/clients.md) to the event after
// them, also when a run of them fills the stream before the event
// sought, and the scan starts there.
func TestScanJetStreamFindsItsStartBehindForeignMessages(t *testing.T) {
	ctx := t.Context()
	evs := storedEvents(t, 8)
	_, js := jsConnect(t, jsServer(t, t.TempDir(), "127.0.0.1:-1"))
	publishEvents(t, js, evs[:5]...)
	for range 10 {
		if _, err := js.Publish(ctx, EventSubject(jsTestSite, TypeCommand), []byte("not an event")); err != nil {
			t.Fatal(err)
		}
	}
	publishEvents(t, js, evs[5:]...)

	for _, after := range []uint64{5, 6, 7} {
		var got []uint64
		if err := ScanJetStream(ctx, js, jsTestSite, after, func(e Envelope) error { got = append(got, e.Seq); return nil }); err != nil {
			t.Fatalf("after %d: %v", after, err)
		}
		if len(got) != 8-int(after) || got[0] != after+1 {
			t.Errorf("after %d: seqs %v", after, got)
		}
	}
}

// storedEvents appends n events to a ledger of the test's site and
// returns them, to be published as a test's stream holds them.
func storedEvents(t *testing.T, n int) []Envelope {
	t.Helper()
	src := jsStore(t)
	jsAppend(t, src, n)
	var evs []Envelope
	if err := src.Scan(t.Context(), 0, func(e Envelope) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return evs
}
