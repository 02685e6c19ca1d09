package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ingest"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// startNATS runs an in-process nats-server with JetStream and connects to it.
func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	return ledgertest.StartJetStream(t).Conn
}

// ctiRun is a call-signal intake a test runs (runningCTI).
type ctiRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // RunCTI's, once done is closed
}

// stop stops the intake, waits for RunCTI and returns its error.
func (r *ctiRun) stop() error { r.cancel(); <-r.done; return r.err }

// returned reports whether RunCTI has returned.
func (r *ctiRun) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// runningCTI runs s's call-signal intake on nc for site ("" for the
// server's own, "test") and returns once it answers: its first signal,
// c-1 ringing, is sent until the subscription is in place. The test's
// end stops it.
func runningCTI(t *testing.T, s *stack, nc *nats.Conn, site string) *ctiRun {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &ctiRun{cancel: cancel, done: make(chan struct{})}
	go func() { r.err = s.api.RunCTI(ctx, nc, site); close(r.done) }()
	t.Cleanup(func() { r.stop() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := nc.Request(ledger.CTISubject("test"), []byte(`{"call_id":"c-1","extension":"3420","type":"ringing"}`), 10*time.Second)
		if err == nil {
			return r
		}
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			t.Fatalf("the call signals' intake does not answer: %v", err)
		}
	}
}

func TestCTIOverNATS(t *testing.T) {
	nc := startNATS(t)
	s := newStack(t, nil)
	s.configure()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.api.RunCTI(ctx, nc, "test") }()

	request := func(body string) map[string]any {
		t.Helper()
		var msg *nats.Msg
		var err error
		for range 50 { // the subscription may not be in place yet
			msg, err = nc.Request(ledger.CTISubject("test"), []byte(body), 10*time.Second)
			if err != nats.ErrNoResponders {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(msg.Data, &out); err != nil {
			t.Fatalf("reply %q: %v", msg.Data, err)
		}
		return out
	}
	r := request(`[{"call_id":"c-9","extension":"3420","type":"ringing","direction":"inbound"},{"call_id":"c-9","extension":"3420","type":"answered"}]`)
	if r["accepted"] != 2.0 || r["first_seq"] != 2.0 || r["last_seq"] != 3.0 {
		t.Fatalf("reply %v", r)
	}
	r = request(`{"call_id":"c-9","extension":"3420","type":"hung_up"}`)
	if r["status"] != 400.0 || r["reason"] != "invalid_input" || r["field"] != "type" || r["index"] != 0.0 {
		t.Fatalf("bad signal reply %v", r)
	}
	// A batch over the size limit is refused as too large, unread.
	r = request(`[` + strings.Repeat(`{"call_id":"c-9","extension":"3420","type":"held"},`, 1<<20/40) + `{}]`)
	if r["status"] != 413.0 || r["reason"] != "too_large" {
		t.Fatalf("a batch over 1 MiB: reply %v", r)
	}
	a := s.must(200, "GET", "/v1/agents/jdoe", "", "")
	if calls, _ := a.JSON["active_calls"].([]any); len(calls) != 1 {
		t.Fatalf("agent: %s", a.Raw)
	}
	// A reply subject naming a stream's subject would have the server
	// write its answer there: such signals are refused whole, unanswered.
	stream, err := nc.SubscribeSync("recledger.events.test.call_signal")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest(ledger.CTISubject("test"), "recledger.events.test.call_signal",
		[]byte(`{"call_id":"c-10","extension":"3420","type":"ringing"}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := stream.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("the server answered on a stream's subject: %s", m.Data)
	}
	s.verified(3)
	ev := s.must(200, "GET", "/v1/events?after_seq=1", "", "")
	var page struct {
		Events []struct {
			Data struct {
				Transport string `json:"transport"`
			} `json:"data"`
		} `json:"events"`
	}
	json.Unmarshal([]byte(ev.Raw), &page)
	if len(page.Events) != 2 || page.Events[0].Data.Transport != "nats" {
		t.Fatalf("events: %s", ev.Raw)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunCTI did not stop")
	}
	if _, err := nc.Request(ledger.CTISubject("test"), []byte(`{}`), 200*time.Millisecond); err == nil {
		t.Fatal("still answering after stop")
	}
}

// TestOutboxLag: /readyz and the outbox-lag gauge follow the real outbox:
// events wait while it is stopped and drain once it runs.
func TestOutboxLag(t *testing.T) {
	nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.EnsureStreams(t.Context(), js, "test", 1); err != nil {
		t.Fatal(err)
	}
	var outbox *ledger.Outbox
	s := newStackWith(t, nil, func(o *ingest.Options, store *ledger.Store) {
		outbox = ledger.NewOutbox(store, js, "test", nil)
		o.Health = outbox
	})
	s.configure()
	s.signal(`[{"call_id":"c-1","extension":"3420","type":"ringing"},{"call_id":"c-1","extension":"3420","type":"ended"}]`)

	if r := s.must(200, "GET", "/readyz", "", ""); r.JSON["outbox_lag"] != 3.0 {
		t.Fatalf("readyz before the outbox runs: %s", r.Raw)
	}
	if m := s.must(200, "GET", "/metrics", "", ""); !strings.Contains(m.Raw, "recledger_outbox_lag 3") {
		t.Fatal("metrics lack the outbox lag")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- outbox.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for outbox.Lag() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := s.must(200, "GET", "/readyz", "", ""); r.JSON["outbox_lag"] != 0.0 || r.JSON["head_seq"] != 3.0 {
		t.Fatalf("readyz after the outbox ran: %s", r.Raw)
	}
	cancel()
	<-done
}

// stuckManifests is a manifest outbox whose days wait on failing publishes.
type stuckManifests struct{}

func (stuckManifests) Lag() uint64 { return 2 }
func (stuckManifests) Problem() error {
	return errors.New("manifest outbox: no manifest published for 31s")
}

// TestReadyzTellsManifestsWaiting: /readyz shows the manifest outbox's lag
// and, when its publishes keep failing, why; the server stays ready (the
// ledger takes writes). /metrics has the lag too.
func TestReadyzTellsManifestsWaiting(t *testing.T) {
	s := newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) { o.Manifests = stuckManifests{} })
	r := s.must(200, "GET", "/readyz", "", "")
	if r.JSON["manifest_lag"] != 2.0 || !strings.Contains(r.str("manifest_problem"), "no manifest published for 31s") {
		t.Fatalf("readyz: %s", r.Raw)
	}
	if m := s.must(200, "GET", "/metrics", "", ""); !strings.Contains(m.Raw, "recledger_manifest_lag 2") {
		t.Fatal("metrics lack the manifest lag")
	}
}

// Signals published with no reply subject: valid ones are taken, and a
// refusal, which has no one to go to, is logged (a walk's feed lost
// signals with no trace of why).
func TestCTIPublishedWithoutReply(t *testing.T) {
	nc := startNATS(t)
	s, logs := newLoggedStack(t)
	s.configure()
	runningCTI(t, s, nc, "") // the server's own site, "test"
	if err := nc.Publish(ledger.CTISubject("test"), []byte(`{"call_id":"c-1","extension":"3420","type":"nope 4111111111111111"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(ledger.CTISubject("test"), []byte(`{"call_id":"c-1","extension":"3420","type":"answered"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if seq, _ := s.store.Head(); seq >= 3 && strings.Contains(logs.String(), "nope") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.verified(3)
	if !strings.Contains(logs.String(), "call signals refused, and their sender asked for no answer") || !strings.Contains(logs.String(), "nope") {
		t.Errorf("no word of the refused signal:\n%s", logs.String())
	}
	// Nothing was dropped, and nothing answered: no one asked.
	if out := logs.String(); strings.Contains(out, "dropped") || strings.Contains(out, "cannot answer") {
		t.Errorf("a drop or an answer logged:\n%s", out)
	}
	// Said as its answer would say it: a card number masked (a security
	// walk's was logged in clear).
	if strings.Contains(logs.String(), "4111111111111111") {
		t.Errorf("a card number in the log:\n%s", logs.String())
	}
	// A signal that changed nothing is named in the answer and counted.
	msg, err := nc.Request(ledger.CTISubject("test"), []byte(`{"call_id":"zz","extension":"3420","type":"held"}`), 5*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"ignored":[{"index":0,"seq":4,"call_id":"zz","type":"held","reason":"unknown_call"}]`) {
		t.Fatalf("the answer to a held of no call: %v %s", err, msg.Data)
	}
	// The log paces itself; the count does not (a re-walk could not tell
	// how many refusals one line stood for).
	m := s.must(200, "GET", "/metrics", "", "")
	for _, want := range []string{`recledger_call_signal_batches_total{result="refused",source="cti_nats"} 1`,
		`recledger_call_signal_batches_total{result="accepted",source="cti_nats"} 3`,
		`recledger_call_signals_ignored_total{reason="unknown_call"} 1`} {
		if !strings.Contains(m.Raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// gatedAppender is the store whose appends wait while its gate is shut.
type gatedAppender struct {
	ingest.Appender
	gate    sync.RWMutex
	waiting atomic.Int32
}

func (g *gatedAppender) Append(ctx context.Context, evs ...ledger.Event) ([]ledger.Envelope, error) {
	g.waiting.Add(1)
	g.gate.RLock()
	g.waiting.Add(-1)
	defer g.gate.RUnlock()
	return g.Appender.Append(ctx, evs...)
}

// A flood of call signals arriving while every worker is busy is held up
// to a bound of bytes; beyond it messages are dropped unanswered, counted
// and logged, and the server answers the next ones (a walk's flood of
// 31 MB messages made it hold 1.45 GB); a second flood adds its own
// drops to the count.
func TestCTIFloodIsBounded(t *testing.T) {
	nc := startNATS(t)
	var logs ledgertest.Buffer
	gated := &gatedAppender{}
	s := newStackWith(t, nil, func(o *ingest.Options, store *ledger.Store) {
		gated.Appender = store
		o.Appender = gated
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	s.api.SetCTIBufferBytes(4 << 20)
	s.configure()
	runningCTI(t, s, nc, "test")
	signal := []byte(`{"call_id":"c-1","extension":"3420","type":"ringing"}`)

	answers, err := nc.SubscribeSync(nc.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	answers.SetPendingLimits(-1, -1)
	// floodWhileBusy sends n copies of msg while every worker waits in an
	// append of a batch of its own (during runs then too), and returns
	// how many of the four batches and n messages were answered.
	floodWhileBusy := func(msg []byte, n int, during func()) int {
		t.Helper()
		gated.gate.Lock()
		for range 4 { // every worker waits in an append
			if err := nc.PublishRequest(ledger.CTISubject("test"), answers.Subject, signal); err != nil {
				t.Fatal(err)
			}
		}
		for deadline := time.Now().Add(30 * time.Second); gated.waiting.Load() < 4; {
			if time.Now().After(deadline) {
				t.Fatalf("%d workers wait in an append, want 4", gated.waiting.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		during()
		in := nc.Stats().InMsgs
		for range n {
			if err := nc.PublishRequest(ledger.CTISubject("test"), answers.Subject, msg); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		// The connection reads what the server sent (its subscription
		// keeps or drops each message as it reads it).
		for deadline := time.Now().Add(30 * time.Second); nc.Stats().InMsgs < in+uint64(n); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				gated.gate.Unlock()
				t.Fatalf("the connection read %d of the %d messages sent", nc.Stats().InMsgs-in, n)
			}
		}
		gated.gate.Unlock()
		got := 0
		for {
			if _, err := answers.NextMsg(2 * time.Second); err != nil {
				break
			}
			got++
		}
		return got
	}

	junk := bytes.Repeat([]byte("x"), 1_000_000) // under the batch limit, refused once parsed
	const flood = 20
	got := floodWhileBusy(junk, flood, func() {
		// A message over a batch's bound is refused by the subscription's
		// handler itself: it is answered while every worker is busy.
		if r, err := nc.Request(ledger.CTISubject("test"), bytes.Repeat([]byte(" "), 1<<20+1), 10*time.Second); err != nil || !bytes.Contains(r.Data, []byte(`"too_large"`)) {
			gated.gate.Unlock() // the stop waits for the workers
			t.Fatalf("an oversize message while the workers are busy: %v", err)
		}
	})
	// The four batches, one message in the hand of the subscription's
	// handler, and at most 4 MB waiting are answered; the rest dropped.
	if got < 5 || got > 4+1+4 {
		t.Fatalf("%d answers to 4 batches and a flood of %d MB messages, want 5 to 9", got, flood)
	}
	dropped := 4 + flood - got
	m := s.must(200, "GET", "/metrics", "", "")
	if want := fmt.Sprintf("recledger_call_signal_messages_dropped_total %d\n", dropped); !strings.Contains(m.Raw, want) {
		t.Fatalf("metrics lack %q", want)
	}
	if !strings.Contains(logs.String(), "call signals dropped unanswered") {
		t.Fatalf("no drop logged:\n%s", logs.String())
	}
	// However small, at most 1024 messages wait; the drops of a second
	// flood are added to the first's.
	const small = 1100
	got = floodWhileBusy([]byte("x"), small, func() {})
	if got < 5 || got > 4+1+1024 {
		t.Fatalf("%d answers to 4 batches and a flood of %d one-byte messages, want 5 to 1029", got, small)
	}
	dropped += 4 + small - got
	m = s.must(200, "GET", "/metrics", "", "")
	if want := fmt.Sprintf("recledger_call_signal_messages_dropped_total %d\n", dropped); !strings.Contains(m.Raw, want) {
		t.Fatalf("after a second flood, metrics lack %q", want)
	}
	if r, err := nc.Request(ledger.CTISubject("test"), []byte(`{"call_id":"c-1","extension":"3420","type":"answered"}`), 5*time.Second); err != nil || !bytes.Contains(r.Data, []byte(`"accepted":1`)) {
		t.Fatalf("after the flood: %v %s", err, r.Data)
	}
	s.verified(11) // configuration, the first signal, twice four batches, the last
}

// A NATS server that refuses this server the call signals' subject (a
// walk served on another recledger's embedded NATS) is said at ERROR,
// not as "taking call signals".
func TestCTISubscriptionRefusedIsSaid(t *testing.T) {
	srv, err := ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL()) // not the embedded server's own connection
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	logs := &ledgertest.Buffer{}
	s := newStackWith(t, nil, func(o *ingest.Options, _ *ledger.Store) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.api.RunCTI(ctx, nc, "test") }()
	waitLogged(t, logs, "call signals")
	cancel()
	<-done
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "NO CALL SIGNAL IS TAKEN OVER NATS") || strings.Contains(out, "taking call signals") {
		t.Fatalf("a refused subscription:\n%s", out)
	}
}

// Two servers of a site on one NATS share its call signals' subject as a
// queue group: each signal is appended by one of them, not by both. A
// server given no site takes its own's subject.
func TestTwoServersAppendEachSignalOnce(t *testing.T) {
	nc := startNATS(t)
	a, alog := newLoggedStack(t)
	b, blog := newLoggedStack(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 2)
	go func() { done <- a.api.RunCTI(ctx, nc, "test") }()
	go func() { done <- b.api.RunCTI(ctx, nc, "") }()
	for end := time.Now().Add(20 * time.Second); !strings.Contains(alog.String(), "taking call signals") || !strings.Contains(blog.String(), "taking call signals"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the servers do not take call signals:\n%s\n%s", alog.String(), blog.String())
		}
	}
	const sent = 40
	for i := range sent {
		if _, err := nc.Request(ledger.CTISubject("test"), fmt.Appendf(nil, `{"call_id":"c-%d","extension":"3420","type":"ringing"}`, i), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// Each server took some (the queue group picks at random: all 40 to
	// one is a chance in 2^39).
	if got := head(a) + head(b); got != sent || head(a) == 0 || head(b) == 0 {
		t.Fatalf("%d signals sent, %d appended (%d and %d)", sent, got, head(a), head(b))
	}
}
