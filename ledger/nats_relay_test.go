package ledger

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestRelayQueuesHoldAShareAndTakeTurns: the relay's queues, filled
// while its worker is busy, hold relayPerOwner requests of one requester
// and relayPending of all; each request beyond is answered at once with
// 429 (and counted for the log), and the waiting ones are taken one
// requester after the other, oldest first. This is what keeps one reader
// asking without pause from holding every other reader back, and the
// server's memory bounded however many requests clients send.
func TestRelayQueuesHoldAShareAndTakeTurns(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	nc, _ := jsConnect(t, srv)
	answers, err := nc.SubscribeSync(ReaderInboxPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	r := &directRelay{nc: nc, prefix: "relay.", known: func(string) bool { return true },
		log: slog.New(slog.DiscardHandler), wake: make(chan struct{}, 1), waiting: make(map[string][]*nats.Msg)}
	reply := func(owner, n int) string {
		return InboxFor(ReaderInboxPrefix, "reader-"+strconv.Itoa(owner)) + "." + strconv.Itoa(n)
	}
	take := func(owner, n int) {
		r.take(&nats.Msg{Subject: "relay." + EventsStream, Reply: reply(owner, n), Data: []byte(`{"seq":1}`)})
	}
	refusedOn := func() string {
		t.Helper()
		m, err := answers.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("no 429 answer: %v", err)
		}
		if m.Header.Get("Status") != "429" {
			t.Fatalf("answer on %s: status %q, want 429", m.Subject, m.Header.Get("Status"))
		}
		return m.Subject
	}

	// Reader 0 asks one more than its share, reader 1 three times.
	for n := range relayPerOwner + 1 {
		take(0, n)
	}
	for n := range 3 {
		take(1, n)
	}
	if got := refusedOn(); got != reply(0, relayPerOwner) {
		t.Errorf("refused %s, want the request beyond reader 0's share, %s", got, reply(0, relayPerOwner))
	}
	if r.queued != relayPerOwner+3 || r.refused.Load() != 1 {
		t.Errorf("%d waiting, %d refused; want %d, 1", r.queued, r.refused.Load(), relayPerOwner+3)
	}
	var want []string
	for n := range 3 {
		want = append(want, reply(0, n), reply(1, n))
	}
	for n := 3; n < relayPerOwner; n++ {
		want = append(want, reply(0, n))
	}
	var got []string
	for m := r.next(); m != nil; m = r.next() {
		got = append(got, m.Reply)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("taken in the order\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.queued != 0 || len(r.turns) != 0 || len(r.waiting) != 0 {
		t.Errorf("emptied: %d waiting, turns %v, queues %d", r.queued, r.turns, len(r.waiting))
	}

	// Every requester within its share, all of them together at the
	// relay's bound: the next one is refused.
	for owner := range relayPending / relayPerOwner {
		for n := range relayPerOwner {
			take(10+owner, n)
		}
	}
	if r.queued != relayPending {
		t.Fatalf("%d waiting, want %d", r.queued, relayPending)
	}
	take(9, 0)
	if got := refusedOn(); got != reply(9, 0) {
		t.Errorf("refused %s, want the request beyond the relay's bound, %s", got, reply(9, 0))
	}
	if r.queued != relayPending || r.refused.Load() != 2 {
		t.Errorf("%d waiting, %d refused; want %d, 2", r.queued, r.refused.Load(), relayPending)
	}
}

// TestRelayRefusesOverlongRequests: a direct get request longer than
// relayMaxRequest (a batch naming subject after subject) is answered
// with JetStream's "bad request" status without reaching the stream,
// while one of exactly that length is relayed as any other.
func TestRelayRefusesOverlongRequests(t *testing.T) {
	srv, _ := natsGuardFixture(t, nil)
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	padded := func(n int) []byte {
		b := []byte(`{"seq":2` + strings.Repeat(" ", n) + `}`)
		return b[:n:n]
	}
	body := padded(relayMaxRequest)
	body[len(body)-1] = '}'
	m, err := c.nc.Request("$JS.API.DIRECT.GET."+EventsStream, body, 5*time.Second)
	if err != nil || m.Header.Get("Nats-Sequence") != "2" {
		t.Errorf("a request of %d bytes: %v %v", len(body), err, m)
	}
	body = padded(relayMaxRequest + 1)
	body[len(body)-1] = '}'
	m, err = c.nc.Request("$JS.API.DIRECT.GET."+EventsStream, body, 5*time.Second)
	if err != nil || m.Header.Get("Status") != "408" {
		t.Errorf("a request of %d bytes: %v %v, want status 408", len(body), err, m)
	}
}

// TestRelayPassesOnEveryAnswerOfAMultiLastGet: a direct get asking for
// the last message of several subjects at once (multi_last) is answered,
// like a batch, with one message a subject and an end of batch; the relay
// passes them all on, not the first alone.
func TestRelayPassesOnEveryAnswerOfAMultiLastGet(t *testing.T) {
	srv, own := natsGuardFixture(t, nil)
	if _, err := own.Publish(t.Context(), EventSubject(jsTestSite, TypeCallSignal), []byte("s")); err != nil {
		t.Fatal(err)
	}
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	req := `{"multi_last":["` + EventSubject(jsTestSite, TypeCommand) + `","` + EventSubject(jsTestSite, TypeCallSignal) + `"]}`
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, inbox, []byte(req)); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", seqs, err)
		}
		if s := m.Header.Get("Status"); s != "" {
			if s != "204" {
				t.Errorf("ended with status %s %s", s, m.Header.Get("Description"))
			}
			break
		}
		seqs = append(seqs, m.Header.Get("Nats-Sequence"))
	}
	if strings.Join(seqs, " ") != "5 6" {
		t.Errorf("the last messages of two subjects: stream seqs %v, want 5 6", seqs)
	}
}

// TestRelayCapsTheBytesOfABatch: a batch asking for no byte limit, or
// for more than relayMaxBytes, ends once about relayMaxBytes have been
// sent: JetStream would otherwise queue up to 64 MiB for one request of
// large messages (manifests, say) at once.
func TestRelayCapsTheBytesOfABatch(t *testing.T) {
	srv, own := natsGuardFixture(t, nil)
	const size, n = 512 << 10, 12 // 6 MiB in all
	big := bytes.Repeat([]byte{'x'}, size)
	for range n {
		if _, err := own.Publish(t.Context(), EventSubject(jsTestSite, TypeCallSignal), big); err != nil {
			t.Fatal(err)
		}
	}
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []string{``, `,"max_bytes":1073741824`} {
		inbox := c.nc.NewInbox()
		sub, err := c.nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		req := `{"seq":6,"batch":100,"no_hdr":true` + limit + `}`
		if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, inbox, []byte(req)); err != nil {
			t.Fatal(err)
		}
		sent := 0
		for {
			m, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("%s: after %d bytes: %v", req, sent, err)
			}
			if m.Header.Get("Status") != "" {
				break
			}
			sent += len(m.Data)
		}
		if sent == 0 || sent > relayMaxBytes+size {
			t.Errorf("%s: %d bytes sent, want at most about %d", req, sent, relayMaxBytes)
		}
		_ = sub.Unsubscribe()
	}
}
