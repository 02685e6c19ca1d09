package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsMirrored returns a store of n events mirrored to a fresh stream, with
// the outbox stopped.
func jsMirrored(t testing.TB, n int) (*Store, jetstream.JetStream) {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	s := jsStore(t)
	jsAppend(t, s, n)
	o, stop := jsOutbox(t, s, js)
	jsDrained(t, s, o)
	stop()
	return s, js
}

// jsCollect returns the raw bytes of every event fn is called with.
func jsCollect(t testing.TB, scan func(func(Envelope) error) error) [][]byte {
	t.Helper()
	var out [][]byte
	if err := scan(func(e Envelope) error { out = append(out, e.Raw); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestScanJetStreamMatchesScan(t *testing.T) {
	s, js := jsMirrored(t, 1500)
	ctx := context.Background()

	// Another site's events interleaved in the same stream are not ours.
	if err := EnsureStreams(ctx, js, "s2", 1); err != nil {
		t.Fatal(err)
	}
	other := jsStore(t)
	jsAppend(t, other, 30)
	o2 := NewOutbox(other, js, "s2", nil)
	octx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o2.Run(octx) }()
	jsWait(t, 10*time.Second, "site s2 mirrored", func() bool { return o2.Lag() == 0 && o2.Confirmed() == 30 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	jsAppend(t, s, 20)
	o, stop := jsOutbox(t, s, js)
	jsDrained(t, s, o)
	stop()

	for _, after := range []uint64{0, 1, 777, 1519, 1520, 5000} {
		want := jsCollect(t, func(fn func(Envelope) error) error { return s.Scan(ctx, after, fn) })
		got := jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, js, jsTestSite, after, fn) })
		if len(got) != len(want) {
			t.Fatalf("after %d: %d events from JetStream, %d from bbolt", after, len(got), len(want))
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("after %d: event %d differs:\n%s\n%s", after, i, got[i], want[i])
			}
		}
	}
	if got := jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, js, "s2", 0, fn) }); len(got) != 30 {
		t.Errorf("site s2: %d events, want 30", len(got))
	}
	if got := jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, js, "s3", 0, fn) }); len(got) != 0 {
		t.Errorf("site s3: %d events, want none", len(got))
	}

	// Both ways of reading the stream give the same events: batched direct
	// gets, here in batches of 7 (many batches, the other site's events
	// between), and the ordered consumer.
	tail, err := readTail(ctx, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	want := jsCollect(t, func(fn func(Envelope) error) error { return s.Scan(ctx, 0, fn) })
	ways := []struct {
		name string
		read func(func(uint64, Envelope) error) error
	}{
		{"direct gets", func(fn func(uint64, Envelope) error) error {
			next := uint64(0)
			return readSiteDirect(ctx, js, jsTestSite, &next, tail.streamSeq, directPace{batch: 7, wait: jsDirectWait}, nil, fn)
		}},
		{"ordered consumer", func(fn func(uint64, Envelope) error) error {
			return readSiteConsumer(ctx, js, jsTestSite, 0, tail.streamSeq, func(uint64) {}, fn)
		}},
	}
	for _, w := range ways {
		got := jsCollect(t, func(fn func(Envelope) error) error {
			return w.read(func(_ uint64, e Envelope) error { return fn(e) })
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %d events, differing from bbolt's %d", w.name, len(got), len(want))
		}
	}

	// fn's error stops the scan and comes back as is.
	stopErr := errors.New("enough")
	calls := 0
	err = ScanJetStream(ctx, js, jsTestSite, 0, func(Envelope) error {
		if calls++; calls == 10 {
			return stopErr
		}
		return nil
	})
	if err != stopErr || calls != 10 {
		t.Errorf("err = %v after %d calls, want the callback's error after 10", err, calls)
	}

	// A cancelled context ends it too.
	cctx, ccancel := context.WithCancel(ctx)
	calls = 0
	err = ScanJetStream(cctx, js, jsTestSite, 0, func(Envelope) error {
		if calls++; calls == 5 {
			ccancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 5 {
		t.Errorf("cancelled: err = %v after %d calls", err, calls)
	}

	// A stream that does not answer direct gets is read with the consumer.
	editStream(t, js, EventsStream, func(cfg *jetstream.StreamConfig) { cfg.AllowDirect = false })
	next := uint64(0)
	if err := readSiteDirect(ctx, js, jsTestSite, &next, tail.streamSeq, directPace{batch: 7, wait: jsDirectWait}, nil, func(uint64, Envelope) error { return nil }); !errors.Is(err, errNoDirect) || next != 0 {
		t.Errorf("direct get without AllowDirect: %v, next %d", err, next)
	}
	got := jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, js, jsTestSite, 0, fn) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("without direct gets: %d events, differing from bbolt's %d", len(got), len(want))
	}
	// Its tail is read through the stream API, stepping back over foreign
	// messages after the last event as with direct gets.
	for range 2 {
		if _, err := js.Publish(ctx, EventSubject(jsTestSite, TypeCommand), []byte("not an event")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, EventSubject("s2", TypeCommand), []byte("another site's")); err != nil {
		t.Fatal(err)
	}
	if got, err := readTail(ctx, js, jsTestSite); err != nil || got.seq != tail.seq || got.streamSeq != tail.streamSeq ||
		len(got.foreign) != 2 || got.foreign[0] != got.last || got.last != got.foreign[1]+1 {
		t.Errorf("tail without direct gets: %+v (%v), want seq %d at stream seq %d after 2 foreign", got, err, tail.seq, tail.streamSeq)
	}

	// A start (EnsureStreams) turns direct gets on again.
	if err := EnsureStreams(ctx, js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	if st, err := js.Stream(ctx, EventsStream); err != nil || !st.CachedInfo().Config.AllowDirect {
		t.Errorf("after EnsureStreams: AllowDirect off (%v)", err)
	}
}

func TestCompareJetStream(t *testing.T) {
	s, js := jsMirrored(t, 400)
	ctx := context.Background()
	headSeq, headHash := s.Head()

	rep, err := CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Events != headSeq || rep.Head != headHash || rep.FirstBad != 0 {
		t.Fatalf("equal copies: %+v", rep)
	}

	// The ledger has an event the stream lacks (the outbox is not running).
	jsAppend(t, s, 1)
	rep, err = CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || !rep.Behind || rep.FirstBad != 401 || rep.Events != 400 || !strings.Contains(rep.Problem, "stream ends") {
		t.Errorf("stream one short: %+v", rep)
	}

	// An event missing in the middle of the stream.
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 123); err != nil {
		t.Fatal(err)
	}
	rep, err = CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.FirstBad != 123 || rep.Events != 122 || !strings.Contains(rep.Problem, "seq 124 after 122") || rep.LedgerDamaged || rep.Restorable {
		t.Errorf("stream lacks seq 123: %+v", rep)
	}
	// Reading after the missing event: the seek finds no seq 123, reads
	// from the start, and the chain check names the hole.
	err = ScanJetStream(ctx, js, jsTestSite, 123, func(Envelope) error { return nil })
	if !errors.Is(err, ErrChainBroken) {
		t.Errorf("scan after the hole's seq: err = %v, want ErrChainBroken", err)
	}
	// Reading after a later event starts there and is fine.
	n := 0
	if err := ScanJetStream(ctx, js, jsTestSite, 300, func(Envelope) error { n++; return nil }); err != nil || n != 100 {
		t.Errorf("scan after 300: %d events, err %v", n, err)
	}
}

func TestCompareJetStreamOtherLedger(t *testing.T) {
	_, js := jsMirrored(t, 50)
	ctx := context.Background()

	// A different ledger of the same length: ids and bytes differ at seq 1.
	other := jsStore(t)
	jsAppend(t, other, 50)
	rep, err := CompareJetStream(ctx, other, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.FirstBad != 1 || !strings.Contains(rep.Problem, "stream id") {
		t.Errorf("other ledger: %+v", rep)
	}

	// The same ledger resealed from seq 20 on with other data: the same
	// ids, and a chain of its own. Only the bytes tell them apart.
	var mirrored []Envelope
	if err := ScanJetStream(ctx, js, jsTestSite, 0, func(e Envelope) error { mirrored = append(mirrored, e); return nil }); err != nil {
		t.Fatal(err)
	}
	resealed := jsStore(t)
	if err := resealed.Import(ctx, mirrored[:19]); err != nil {
		t.Fatal(err)
	}
	prev := mirrored[18].Hash
	for _, e := range mirrored[19:] {
		e.Data = json.RawMessage(`{"command":"tag","extension":"1002","transport":"CAD"}`)
		if _, err := e.Seal(prev); err != nil {
			t.Fatal(err)
		}
		if err := resealed.Import(ctx, []Envelope{e}); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
	rep, err = CompareJetStream(ctx, resealed, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.FirstBad != 20 || rep.Events != 19 || !strings.Contains(rep.Problem, "bytes differ") {
		t.Errorf("resealed ledger with the mirror's ids: %+v", rep)
	}

	// A shorter ledger: the stream has more.
	short := jsStore(t)
	rep, err = CompareJetStream(ctx, short, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.FirstBad != 1 || !strings.Contains(rep.Problem, "beyond the ledger's head") {
		t.Errorf("empty ledger against a stream of 50: %+v", rep)
	}
}

// TestCompareJetStreamNamesAStreamThatIsNotAChain: events numbered on
// from the ledger's, whose prev is not the hash before them (another
// ledger's events published after this one's), are a broken chain in the
// stream, not a different ledger.
func TestCompareJetStreamNamesAStreamThatIsNotAChain(t *testing.T) {
	s, js := jsMirrored(t, 30)
	ctx := context.Background()
	jsAppend(t, s, 10) // not mirrored
	other := jsStore(t)
	jsAppend(t, other, 40)
	if err := other.Scan(ctx, 30, func(e Envelope) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{
			Subject: EventSubject(jsTestSite, e.Type),
			Data:    e.Raw,
			Header:  nats.Header{jetstream.MsgIDHeader: []string{e.ID.String()}},
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	n := 0
	err := ScanJetStream(ctx, js, jsTestSite, 0, func(Envelope) error { n++; return nil })
	if !errors.Is(err, ErrChainBroken) || !strings.Contains(err.Error(), "prev is not the hash of seq 30") || n != 30 {
		t.Errorf("scan: %d events, err %v; want 30 and the chain broken at seq 31", n, err)
	}
	rep, err := CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.FirstBad != 31 || rep.Events != 30 || !strings.Contains(rep.Problem, "prev is not the hash") || rep.LedgerDamaged {
		t.Errorf("compare: %+v", rep)
	}
}

// jsSealed returns the stored bytes of a few sealed events of every shape.
func jsSealed(t testing.TB) [][]byte {
	t.Helper()
	s := jsStore(t)
	evs := append(jsEvents(0, 3),
		Event{Type: TypeCommand, Data: Command{Command: "metadata", Params: []Param{{Key: "note", Value: "<b>&\u2028 é \"q\""}}, Transport: TransportFinesse}},
		Event{Type: TypeDayClosed, Data: DayClosed{Day: "2026-11-23", By: "admin"}},
	)
	envs, err := s.Append(context.Background(), evs...)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(envs))
	for i, e := range envs {
		out[i] = e.Raw
	}
	return out
}

func TestDecodeFastTakesSealedEvents(t *testing.T) {
	for _, raw := range jsSealed(t) {
		got, ok := decodeFast(raw)
		if !ok {
			t.Fatalf("fast path refused a sealed event: %s", raw)
		}
		want, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast %+v\nDecode %+v", got, want)
		}
		// One flipped byte anywhere: refused, or (in data) a hash mismatch.
		for i := range raw {
			bad := bytes.Clone(raw)
			bad[i] ^= 0x01
			if _, ok := decodeFast(bad); ok {
				t.Fatalf("fast path took %s with byte %d flipped", bad, i)
			}
		}
	}
}

// FuzzDecodeFast checks that the fast path never accepts what the
// encoding/json path of Decode rejects, and agrees with it on what it
// accepts.
func FuzzDecodeFast(f *testing.F) {
	for _, raw := range jsSealed(f) {
		f.Add(raw)
	}
	f.Add([]byte(`{"seq":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := decodeFast(raw)
		if !ok {
			return
		}
		want, err := decodeSlow(raw)
		if err != nil {
			t.Fatalf("fast path took what Decode refuses (%v): %q", err, raw)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast %+v\nDecode %+v", got, want)
		}
	})
}

// FuzzParseCanonicalTime holds the hand-written time parser to time.Parse.
func FuzzParseCanonicalTime(f *testing.F) {
	for _, s := range []string{"2026-11-23T18:59:37.290Z", "2024-02-29T23:59:59.999Z", "2023-02-29T00:00:00.000Z", "0001-01-01T00:00:00.000Z", "2026-11-23T24:00:00.000Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseCanonicalTime([]byte(s))
		if !ok {
			return
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("took %q, which time.Parse refuses: %v", s, err)
		}
		if want := T(p); got != want || got.Format(TimeLayout) != s {
			t.Fatalf("%q: got %v, want %v", s, got, want)
		}
	})
}

// FuzzCanonicalTimeRoundTrip: every time the ledger can write (years 0 to
// 9999, not the zero time) is read back by ParseCanonicalTime, equal.
func FuzzCanonicalTimeRoundTrip(f *testing.F) {
	for _, ms := range []int64{0, -1, 1, 951782399999, 951782400000, 1795000000123, -62167219200000, 253402300799999} {
		f.Add(ms)
	}
	f.Fuzz(func(t *testing.T, ms int64) {
		tm := T(time.UnixMilli(ms))
		if y := tm.Year(); y < 0 || y > 9999 || tm.IsZero() {
			return
		}
		s := tm.Format(TimeLayout)
		got, ok := ParseCanonicalTime([]byte(s))
		if !ok || got != tm {
			t.Fatalf("%s (%d ms): got %v, %v", s, ms, got, ok)
		}
	})
}

// TestReadersWaitOutABusyServer: a server that answers a direct get with
// 429 Too Many Requests (the embedded server's relay, when it holds its
// share of a reader's requests) is asked again after a wait, and the read
// is whole. The stream is read through a relay of the test's on another
// API prefix that answers two requests of three with 429 and hands the
// third to JetStream.
func TestReadersWaitOutABusyServer(t *testing.T) {
	s, js := jsMirrored(t, 3000)
	ctx := t.Context()
	nc := js.Conn()
	var asked, refused atomic.Int64
	sub, err := nc.Subscribe("busy.API.DIRECT.GET.>", func(m *nats.Msg) {
		if asked.Add(1)%3 != 0 {
			refused.Add(1)
			h := nats.Header{}
			h.Set("Status", "429")
			h.Set("Description", "Too Many Requests")
			_ = nc.PublishMsg(&nats.Msg{Subject: m.Reply, Header: h})
			return
		}
		_ = nc.PublishRequest("$JS.API.DIRECT.GET."+strings.TrimPrefix(m.Subject, "busy.API.DIRECT.GET."), m.Reply, m.Data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	busy, err := jetstream.NewWithAPIPrefix(nc, "busy.API")
	if err != nil {
		t.Fatal(err)
	}
	want := jsCollect(t, func(fn func(Envelope) error) error { return s.Scan(ctx, 0, fn) })
	var got [][]byte
	err = readSitePaced(ctx, busy, jsTestSite, 0, 3000, directPace{batch: 500, wait: jsDirectWait}, nil, func(_ uint64, e Envelope) error {
		got = append(got, e.Raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d events read, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("event %d differs", i)
		}
	}
	if head, err := JetStreamHead(ctx, busy, jsTestSite); err != nil || head != 3000 {
		t.Errorf("head through a busy server: %d, %v", head, err)
	}
	if refused.Load() < 10 {
		t.Errorf("only %d requests refused: the test did not test", refused.Load())
	}
}
