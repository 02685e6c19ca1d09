package ledger

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsClient is a client of the embedded server as an operator's tool or
// a stranger would be: no own token. It records the permission violations
// the server reports.
type natsClient struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu         sync.Mutex
	violations []string
}

func dialClient(t *testing.T, srv *Embedded, opts ...nats.Option) (*natsClient, error) {
	t.Helper()
	c := &natsClient{}
	// a third party's client: the default inbox prefix, unless opts say
	// otherwise
	opts = append([]nats.Option{nats.CustomInboxPrefix("_INBOX")}, opts...)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.violations = append(c.violations, err.Error())
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	nc, js, err := Connect(ctx, srv.ClientURL(), "test-client", nil, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.nc, c.js = nc, js
	return c, nil
}

// denied reports whether the server refused a publish to subject.
func (c *natsClient) denied(subject string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.violations {
		if strings.Contains(v, "Permissions Violation for Publish to \""+subject) {
			return true
		}
	}
	return false
}

// canRead reports whether the client reads the events stream's message
// at stream seq want, with a direct get as recledger's readers do.
func (c *natsClient) canRead(t *testing.T, want int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	m, err := getDirect(ctx, c.js, directOne{Seq: uint64(want)})
	return err == nil && m != nil && m.Seq == uint64(want)
}

// canSignal reports whether a call signal sent by the client on the CTI
// subject is answered.
func (c *natsClient) canSignal(t *testing.T) bool {
	t.Helper()
	_, err := c.nc.Request(CTISubject(jsTestSite), []byte(`{}`), 500*time.Millisecond)
	return err == nil
}

// natsGuardFixture is an embedded server with the streams, five events
// in them written by the own connection, and a responder on the CTI
// uploadOnly admits the token up-a alone, with the upload role.
func uploadOnly(token string, _ netip.Addr) (string, NATSAccess, bool) {
	return token, NATSUpload, token == "up-a"
}

// dialUploader connects to srv as an upload worker does, with token up-a.
func dialUploader(t *testing.T, srv *Embedded) (*natsClient, error) {
	t.Helper()
	return dialClient(t, srv, nats.Token("up-a"), nats.CustomInboxPrefix(UploadInboxPrefix))
}

// subject.
func natsGuardFixture(t *testing.T, authorize NATSAuthorizer) (*Embedded, jetstream.JetStream) {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: jsTestSite, Authorize: authorize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, js := jsConnect(t, srv)
	for i := range 5 {
		if _, err := js.Publish(t.Context(), EventSubject(jsTestSite, TypeCommand), []byte{'0' + byte(i)}); err != nil {
			t.Fatalf("own connection: %v", err)
		}
	}
	sub, err := nc.Subscribe(CTISubject(jsTestSite), func(m *nats.Msg) { _ = m.Respond([]byte(`{"accepted":0}`)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return srv, js
}

// tryWrites attempts what no client may do: publish into both streams,
// purge and delete the events stream. It returns after the server had
// time to answer.
func (c *natsClient) tryWrites(t *testing.T) {
	t.Helper()
	// a plain publish to a stream's subject is stored as a JetStream one is
	_ = c.nc.Publish(EventSubject(jsTestSite, TypeCommand), []byte("forged"))
	_ = c.nc.Publish(ManifestSubject(jsTestSite, "2026-11-23"), []byte("forged"))
	for _, api := range []string{"$JS.API.STREAM.PURGE.", "$JS.API.STREAM.DELETE."} {
		_, _ = c.nc.Request(api+EventsStream, nil, 200*time.Millisecond)
	}
	_ = c.nc.Flush()
}

// TestEmbeddedNATSWritesOnlyItsOwn: without a tokens file, any client may
// send call signals and read the streams, as anyone may use the open HTTP
// API; no client but the server's own connection may write, purge or
// delete a stream, so a stray publish cannot break the mirror's chain.
func TestEmbeddedNATSWritesOnlyItsOwn(t *testing.T) {
	srv, own := natsGuardFixture(t, nil)
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	if !c.canSignal(t) {
		t.Error("an open server refused a call signal")
	}
	if !c.canRead(t, 5) {
		t.Error("an open server refused a read of the events stream")
	}
	c.tryWrites(t)
	for _, subj := range []string{EventSubject(jsTestSite, TypeCommand), ManifestSubject(jsTestSite, "2026-11-23"),
		"$JS.API.STREAM.PURGE." + EventsStream, "$JS.API.STREAM.DELETE." + EventsStream} {
		if !c.denied(subj) {
			t.Errorf("a client's publish to %s was not refused", subj)
		}
	}
	info, err := own.Stream(t.Context(), EventsStream)
	if err != nil {
		t.Fatalf("the events stream is gone: %v", err)
	}
	if n := info.CachedInfo().State.Msgs; n != 5 {
		t.Errorf("the events stream holds %d messages, want the own connection's 5", n)
	}
}

// TestEmbeddedNATSFollowsTheTokens: with a tokens file, a client is let in
// by its token, or by its address when it has none, and does what its
// role allows: the command role sends call signals, the auditor reads.
func TestEmbeddedNATSFollowsTheTokens(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	authorize := func(token string, addr netip.Addr) (string, NATSAccess, bool) {
		switch {
		case token == "cmd-token":
			return "cti", NATSSignals, true
		case token == "aud-token":
			return "audit", NATSRead, true
		case token == "up-token":
			return "upload", NATSUpload, true
		case token == "" && loopback.Contains(addr):
			return "net:local", NATSSignals, true
		}
		return "", 0, false
	}
	srv, own := natsGuardFixture(t, authorize)

	if _, err := dialClient(t, srv, nats.Token("wrong-token")); !errors.Is(err, ErrRefused) {
		t.Errorf("an unknown token: %v, want ErrRefused", err)
	}
	cmd, err := dialClient(t, srv, nats.Token("cmd-token"))
	if err != nil {
		t.Fatal(err)
	}
	if !cmd.canSignal(t) {
		t.Error("the command role cannot send a call signal")
	}
	if cmd.canRead(t, 5) {
		t.Error("the command role reads the stream")
	}
	aud, err := dialClient(t, srv, nats.Token("aud-token"))
	if err != nil {
		t.Fatal(err)
	}
	if !aud.canRead(t, 5) {
		t.Error("the auditor role cannot read the stream")
	}
	if aud.canSignal(t) {
		t.Error("the auditor role sends call signals")
	}
	local, err := dialClient(t, srv) // no token: by address
	if err != nil {
		t.Fatalf("a client of a granted network: %v", err)
	}
	if !local.canSignal(t) {
		t.Error("the granted network cannot send a call signal")
	}
	aud.tryWrites(t)
	if !aud.denied(EventSubject(jsTestSite, TypeCommand)) {
		t.Error("the auditor role may write the events stream")
	}
	// The upload workers' consumers are not the readers' to remove.
	_, _ = aud.nc.Request("$JS.API.CONSUMER.DELETE."+ManifestsStream+".upload-"+jsTestSite, nil, 200*time.Millisecond)
	if !aud.denied("$JS.API.CONSUMER.DELETE." + ManifestsStream) {
		t.Error("the auditor role may delete an upload worker's consumer")
	}
	_, _ = aud.nc.Request("$JS.API.CONSUMER.RESET."+ManifestsStream+".upload-"+jsTestSite, []byte(`{"seq":5}`), 200*time.Millisecond)
	if !aud.denied("$JS.API.CONSUMER.RESET." + ManifestsStream) {
		t.Error("the auditor role may move an upload worker's consumer")
	}
	// recledger's own readers' replies are out of the command role's reach.
	if _, err := cmd.nc.SubscribeSync(ReaderInboxPrefix + ".>"); err == nil {
		_ = cmd.nc.Flush()
		time.Sleep(100 * time.Millisecond)
		cmd.mu.Lock()
		seen := strings.Join(cmd.violations, "\n")
		cmd.mu.Unlock()
		if !strings.Contains(seen, "Permissions Violation for Subscription to \""+ReaderInboxPrefix) {
			t.Errorf("the command role may listen to recledger's readers' replies: %q", seen)
		}
	}

	// The upload workers' consumer, deliveries and acks are the upload
	// role's alone.
	up, err := dialClient(t, srv, nats.Token("up-token"), nats.CustomInboxPrefix(UploadInboxPrefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	// The site's own consumer is the server's to make (EnsureStreamsCapturing):
	// the upload role uses it as it is, and may make others of its own.
	if err := ensureUploadConsumer(ctx, own, jsTestSite); err != nil {
		t.Fatal(err)
	}
	if _, err := up.js.Consumer(ctx, ManifestsStream, UploadDurable(jsTestSite)); err != nil {
		t.Errorf("the upload role cannot bind the site's consumer: %v", err)
	}
	if _, err := up.js.CreateOrUpdateConsumer(ctx, ManifestsStream, UploadConsumerConfig(jsTestSite, "upload-mine", time.Minute)); err != nil {
		t.Errorf("the upload role cannot make a consumer of its own: %v", err)
	}
	changed := UploadConsumerConfig(jsTestSite, UploadDurable(jsTestSite), UploadAckWait)
	changed.MaxDeliver, changed.InactiveThreshold = 1, time.Second
	dctx, dcancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, _ = up.js.CreateOrUpdateConsumer(dctx, ManifestsStream, changed)
	dcancel()
	_, _ = up.nc.Request("$JS.API.CONSUMER.DURABLE.CREATE."+ManifestsStream+"."+UploadDurable(jsTestSite), []byte(`{}`), 200*time.Millisecond)
	_ = up.nc.Flush()
	time.Sleep(100 * time.Millisecond)
	up.mu.Lock()
	upSeen := strings.Join(up.violations, "\n")
	up.mu.Unlock()
	for _, api := range []string{"CONSUMER.CREATE.", "CONSUMER.DURABLE.CREATE."} {
		if !strings.Contains(upSeen, "Permissions Violation for Publish to \"$JS.API."+api+ManifestsStream+"."+UploadDurable(jsTestSite)) {
			t.Errorf("the upload role may %s the site's consumer: %s", api, upSeen)
		}
	}
	if info, err := own.Consumer(t.Context(), ManifestsStream, UploadDurable(jsTestSite)); err != nil || info.CachedInfo().Config.MaxDeliver != -1 {
		t.Errorf("the site's consumer after the upload role's attempts: %v", err)
	}
	_, _ = aud.nc.Request("$JS.API.CONSUMER.CREATE."+ManifestsStream+".upload-"+jsTestSite, []byte(`{}`), 200*time.Millisecond)
	_ = aud.nc.Publish("$JS.ACK."+ManifestsStream+".upload-"+jsTestSite+".1.1.1.1.0", []byte("+TERM"))
	_, _ = aud.nc.SubscribeSync(UploadInboxPrefix + ".>")
	_ = aud.nc.Flush()
	time.Sleep(100 * time.Millisecond)
	aud.mu.Lock()
	seen := strings.Join(aud.violations, "\n")
	aud.mu.Unlock()
	for _, v := range []string{"Publish to \"$JS.API.CONSUMER.CREATE." + ManifestsStream, "Publish to \"$JS.ACK." + ManifestsStream,
		"Subscription to \"" + UploadInboxPrefix} {
		if !strings.Contains(seen, "Permissions Violation for "+v) {
			t.Errorf("the auditor role was not refused %s", v)
		}
	}
}

// The server answers on a client's reply subject only outside the streams,
// NATS's own subjects and recledger's readers' inboxes.
func TestSafeReplySubject(t *testing.T) {
	for reply, want := range map[string]bool{
		"":                                  true,
		"_INBOX.abc.1":                      true,
		"feed.replies.7":                    true,
		"recledger.events.s1.command":       false,
		"recledger.manifests.s1.2026-11-30": false,
		"$JS.API.STREAM.PURGE.X":            false,
		ReaderInboxPrefix + ".victim.1":     false,
		UploadInboxPrefix + ".victim.1":     false,
		CapturePrefix + ".abc.events.s1":    false,
	} {
		if got := SafeReplySubject(reply); got != want {
			t.Errorf("SafeReplySubject(%q) = %v, want %v", reply, got, want)
		}
	}
	for _, site := range []string{"a/b", "a.b", "", "é", "a b"} {
		if err := CheckSite(site); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckSite(%q) = %v", site, err)
		}
	}
	if err := CheckSite("north-1_b"); err != nil {
		t.Errorf("CheckSite(north-1_b) = %v", err)
	}
}

// TestClientsCannotRemoveByReply: JetStream answers a request on the reply
// subject its client names, and an empty "not found" answer sent on one
// of JetStream's API subjects would be carried out as a request of its
// own. Clients of the embedded server live in an account of their own,
// which reaches the streams through the services recledger exports: the
// answers come back into the clients' account, where JetStream's API
// reaches nothing. Neither stream nor the upload workers' consumer can
// be removed that way, by any role.
func TestClientsCannotRemoveByReply(t *testing.T) {
	srv, own := natsGuardFixture(t, nil) // open: every client may read, send signals and upload
	ctx := t.Context()
	consumer := "upload-" + jsTestSite
	if _, err := own.CreateOrUpdateConsumer(ctx, ManifestsStream, jetstream.ConsumerConfig{Durable: consumer, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	c, err := dialClient(t, srv, nats.CustomInboxPrefix(UploadInboxPrefix))
	if err != nil {
		t.Fatal(err)
	}
	removals := []string{
		"$JS.API.STREAM.DELETE." + EventsStream, "$JS.API.STREAM.DELETE." + ManifestsStream,
		"$JS.API.CONSUMER.DELETE." + ManifestsStream + "." + consumer,
	}
	for _, reply := range removals {
		for _, req := range []struct{ api, body string }{
			{"$JS.API.DIRECT.GET." + EventsStream, `{"seq":999999}`},
			{"$JS.API.DIRECT.GET." + ManifestsStream, `{"seq":999999}`},
			{"$JS.API.CONSUMER.INFO." + ManifestsStream + ".nothing", ``},
			{"$JS.API.CONSUMER.MSG.NEXT." + ManifestsStream + "." + consumer, `{"batch":1,"no_wait":true}`},
			{CTISubject(jsTestSite), `{}`},
		} {
			if err := c.nc.PublishRequest(req.api, reply, []byte(req.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = c.nc.Flush()
	time.Sleep(300 * time.Millisecond)
	for _, name := range []string{EventsStream, ManifestsStream} {
		if _, err := own.Stream(ctx, name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	if _, err := own.Consumer(ctx, ManifestsStream, consumer); err != nil {
		t.Errorf("the upload workers' consumer: %v", err)
	}
	// and the client still reads, sends signals and uses the consumer
	if !c.canRead(t, 5) {
		t.Error("the client cannot read the events stream")
	}
	if !c.canSignal(t) {
		t.Error("the client cannot send a call signal")
	}
	// An upload worker's pull and acknowledgement cross the boundary.
	if _, err := own.Publish(ctx, ManifestSubject(jsTestSite, "2026-11-30"), []byte(`{"day":"2026-11-30"}`)); err != nil {
		t.Fatal(err)
	}
	cons, err := c.js.Consumer(ctx, ManifestsStream, consumer)
	if err != nil {
		t.Fatalf("the client cannot see its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for m := range batch.Messages() {
		got++
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if got != 1 || batch.Error() != nil {
		t.Fatalf("fetched %d manifests: %v", got, batch.Error())
	}
	info, err := own.Consumer(ctx, ManifestsStream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	if ci := info.CachedInfo(); ci.AckFloor.Stream != 1 || ci.NumAckPending != 0 {
		t.Errorf("after the ack: ack floor %d, %d pending", ci.AckFloor.Stream, ci.NumAckPending)
	}
}

// TestReadersListenOnlyToTheirOwnReplies: each token's readers get their
// replies under their own inbox prefix (InboxFor), where readers of
// another token may not listen, so they can neither watch another's reads
// nor learn the reply subjects they would need to slip a message into
// one.
func TestReadersListenOnlyToTheirOwnReplies(t *testing.T) {
	authorize := func(token string, _ netip.Addr) (string, NATSAccess, bool) {
		switch token {
		case "aud-a", "aud-b":
			return token, NATSRead, true
		case "up-a":
			return token, NATSUpload, true
		}
		return "", 0, false
	}
	srv, _ := natsGuardFixture(t, authorize)
	a, err := dialClient(t, srv, nats.Token("aud-a"), nats.CustomInboxPrefix(ReaderInboxPrefix))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.nc.Opts.InboxPrefix, InboxFor(ReaderInboxPrefix, "aud-a"); got != want || want == InboxFor(ReaderInboxPrefix, "aud-b") {
		t.Fatalf("inbox prefix %q, want %q, distinct from another token's", got, want)
	}
	if !a.canRead(t, 5) {
		t.Fatal("a reader cannot read under its own inbox prefix")
	}
	b, err := dialClient(t, srv, nats.Token("aud-b"))
	if err != nil {
		t.Fatal(err)
	}
	up, err := dialClient(t, srv, nats.Token("up-a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{ReaderInboxPrefix + ".>", InboxFor(ReaderInboxPrefix, "aud-a") + ".>", UploadInboxPrefix + ".>"} {
		if _, err := b.nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := up.nc.SubscribeSync(ReaderInboxPrefix + ".>"); err != nil {
		t.Fatal(err)
	}
	_ = b.nc.Flush()
	_ = up.nc.Flush()
	time.Sleep(100 * time.Millisecond)
	for _, c := range []struct {
		*natsClient
		tried int
	}{{b, 3}, {up, 1}} {
		c.mu.Lock()
		seen := strings.Join(c.violations, "\n")
		c.mu.Unlock()
		if n := strings.Count(seen, "Permissions Violation for Subscription to"); n != c.tried {
			t.Errorf("refused %d of %d subscriptions outside its own inbox:\n%s", n, c.tried, seen)
		}
	}
}

// ownPublish has the own connection publish n small messages on the
// events stream, 1,000 at a time (more at once stall the publisher).
func ownPublish(t *testing.T, own jetstream.JetStream, n int) {
	t.Helper()
	for i := 0; i < n; {
		for end := min(n, i+1000); i < end; i++ {
			if _, err := own.PublishAsync(EventSubject(jsTestSite, TypeCommand), []byte{'x', byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-own.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			t.Fatal("publishing timed out")
		}
	}
}

// TestDirectGetsAreCapped: a client's direct gets reach the stream through
// the relay, which caps a batch (relayMaxBatch) and passes the answers on
// as the stream sends them: a batch asking for more ends early with the
// stream's end-of-batch, and single gets, gets by subject and a missing
// stream are answered as JetStream answers them.
func TestDirectGetsAreCapped(t *testing.T) {
	srv, own := natsGuardFixture(t, nil)
	ownPublish(t, own, relayMaxBatch+50)
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, inbox, []byte(`{"seq":1,"batch":50000,"max_bytes":1073741824,"no_hdr":true}`)); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if m.Header.Get("Status") != "" {
			if m.Header.Get("Status") != "204" || m.Header.Get("Nats-Last-Sequence") != strconv.Itoa(relayMaxBatch) {
				t.Errorf("the batch ended with status %q, last sequence %q", m.Header.Get("Status"), m.Header.Get("Nats-Last-Sequence"))
			}
			break
		}
		got++
	}
	if got != relayMaxBatch {
		t.Errorf("a batch of 50,000 gave %d messages, want %d", got, relayMaxBatch)
	}
	m, err := c.nc.Request("$JS.API.DIRECT.GET."+EventsStream, []byte(`{"seq":7}`), 2*time.Second)
	if err != nil || m.Header.Get("Nats-Sequence") != "7" {
		t.Errorf("single get: %v %v", err, m)
	}
	m, err = c.nc.Request("$JS.API.DIRECT.GET."+EventsStream+"."+EventSubject(jsTestSite, TypeCommand), nil, 2*time.Second)
	if err != nil || m.Header.Get("Nats-Sequence") != strconv.Itoa(relayMaxBatch+55) {
		t.Errorf("last by subject: %v %v", err, m)
	}
	m, err = c.nc.Request("$JS.API.DIRECT.GET."+EventsStream, []byte(`{"seq":999999}`), 2*time.Second)
	if err != nil || m.Header.Get("Status") != "404" {
		t.Errorf("missing message: %v %v", err, m)
	}
	if _, err = c.nc.Request("$JS.API.DIRECT.GET.NO_SUCH_STREAM", []byte(`{"seq":1}`), 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("missing stream: %v, want no responders", err)
	}
}

// twoReaders connects two readers of two tokens, each with its token's
// inbox prefix, to a guarded server whose events stream holds
// relayMaxBatch messages.
func twoReaders(t *testing.T) (a, b *natsClient) {
	t.Helper()
	authorize := func(token string, _ netip.Addr) (string, NATSAccess, bool) {
		return token, NATSRead, token == "aud-a" || token == "aud-b"
	}
	srv, own := natsGuardFixture(t, authorize)
	ownPublish(t, own, relayMaxBatch)
	var err error
	if a, err = dialClient(t, srv, nats.Token("aud-a"), nats.CustomInboxPrefix(ReaderInboxPrefix)); err != nil {
		t.Fatal(err)
	}
	if b, err = dialClient(t, srv, nats.Token("aud-b"), nats.CustomInboxPrefix(ReaderInboxPrefix)); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestDirectGetsTakeTurns: the relay takes each reader's direct gets in
// turn, so a reader asking for batch after batch delays another's get by
// about one batch (a few, counted on a loaded machine), not by all it
// asked for; and it answers the requests
// beyond a reader's share at once with 429 Too Many Requests.
func TestDirectGetsTakeTurns(t *testing.T) {
	a, b := twoReaders(t)
	var msgs, ends, busy atomic.Int64
	inbox := a.nc.NewInbox()
	sub, err := a.nc.Subscribe(inbox, func(m *nats.Msg) {
		switch m.Header.Get("Status") {
		case "":
			msgs.Add(1)
		case "204":
			ends.Add(1)
		case "429":
			busy.Add(1)
		default:
			t.Errorf("status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	const asked = 40
	for range asked {
		if err := a.nc.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, inbox, []byte(`{"seq":1,"batch":10000,"no_hdr":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.nc.Flush()
	jsWait(t, 10*time.Second, "the first batch", func() bool { return msgs.Load() > 0 })
	m, err := b.nc.Request("$JS.API.DIRECT.GET."+EventsStream, []byte(`{"seq":7}`), 10*time.Second)
	endsBefore := ends.Load()
	if err != nil || m.Header.Get("Nats-Sequence") != "7" {
		t.Fatalf("another reader's single get: %v %v", err, m)
	}
	jsWait(t, 60*time.Second, "every batch answered", func() bool { return ends.Load()+busy.Load() == asked })
	// The count is read once b's answer is in, while a's client goes on
	// counting the batches relayed after it: on a loaded machine a few
	// more. Without turns b would wait behind all a's share (16).
	if endsBefore > relayPerOwner/2 {
		t.Errorf("another reader's get waited for %d of the first reader's batches", endsBefore)
	}
	if busy.Load() == 0 || ends.Load() > relayPerOwner+2 {
		t.Errorf("%d batches sent, %d refused: want those beyond the reader's share (%d) refused", ends.Load(), busy.Load(), relayPerOwner)
	}
}

// TestReplyOwner: the relay answers only on the inbox prefixes the clients'
// account gets back, each token's inbox a requester of its own; every
// other reply subject (JetStream's API, the streams', a wildcard, an
// overlong one) is none it may publish on.
func TestReplyOwner(t *testing.T) {
	a := InboxFor(ReaderInboxPrefix, "aud-a")
	for _, c := range []struct {
		reply, owner string
		ok           bool
	}{
		{a + ".x1.7", a, true},
		{InboxFor(UploadInboxPrefix, "up") + ".x", InboxFor(UploadInboxPrefix, "up"), true},
		{"_INBOX.abc.1", "_INBOX", true},
		{"_INBOX", "", false},
		{a, "", false},
		{ReaderInboxPrefix + ".open", "", false},
		{a + ".*", "", false},
		{a + ".>", "", false},
		{"_INBOX..x", "", false},
		{"_INBOX.a b", "", false},
		{"$JS.API.STREAM.DELETE." + EventsStream, "", false},
		{"recledger.events.s1.command", "", false},
		{CapturePrefix + ".abc.events", "", false},
		{"_INBOXX.a", "", false},
		{"_INBOX." + strings.Repeat("x", relayMaxReply), "", false},
		{"", "", false},
	} {
		owner, ok := replyOwner(c.reply)
		if owner != c.owner && c.ok || ok != c.ok {
			t.Errorf("replyOwner(%q) = %q, %v; want %q, %v", c.reply, owner, ok, c.owner, c.ok)
		}
	}
}

// TestEmbeddedLimitsConnectionsPerHolder: one token holds at most
// embeddedConnsPerHolder connections, and another token still connects
// while it does; once some of its connections close, it may open as
// many again.
func TestEmbeddedLimitsConnectionsPerHolder(t *testing.T) {
	authorize := func(token string, _ netip.Addr) (string, NATSAccess, bool) {
		return token, NATSRead, token == "aud-a" || token == "aud-b"
	}
	srv, _ := natsGuardFixture(t, authorize)
	dial := func(token string) (*nats.Conn, error) {
		nc, err := nats.Connect(srv.ClientURL(), nats.Token(token), nats.NoReconnect())
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return nc, err
	}
	var held []*nats.Conn
	for i := range embeddedConnsPerHolder {
		nc, err := dial("aud-a")
		if err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, embeddedConnsPerHolder, err)
		}
		held = append(held, nc)
	}
	if _, err := dial("aud-a"); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a connection beyond the holder's %d: %v, want refused", embeddedConnsPerHolder, err)
	}
	if _, err := dial("aud-b"); err != nil {
		t.Fatalf("another token, while the first holds its all: %v", err)
	}
	for _, nc := range held[:10] {
		nc.Close()
	}
	jsWait(t, 5*time.Second, "closed", func() bool { return srv.NumClients() <= embeddedConnsPerHolder-10+4 })
	for i := range 10 {
		if _, err := dial("aud-a"); err != nil {
			t.Fatalf("after 10 closed, connection %d: %v", i+1, err)
		}
	}
	if _, err := dial("aud-a"); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("beyond the holder's %d again: %v, want refused", embeddedConnsPerHolder, err)
	}
}

// TestRelayTakesOnlyKnownInboxes: a reader naming inboxes of tokens that
// never connected, each a requester of its own to the relay, gets no
// turns with them, so another reader's get is answered at once.
func TestRelayTakesOnlyKnownInboxes(t *testing.T) {
	a, b := twoReaders(t)
	for i := range relayPending + 100 {
		reply := InboxFor(ReaderInboxPrefix, "made-up-"+strconv.Itoa(i)) + ".x"
		if err := a.nc.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, reply, []byte(`{"seq":1,"batch":10000}`)); err != nil {
			t.Fatal(err)
		}
	}
	_ = a.nc.Flush()
	m, err := b.nc.Request("$JS.API.DIRECT.GET."+EventsStream, []byte(`{"seq":7}`), 5*time.Second)
	if err != nil || m.Header.Get("Nats-Sequence") != "7" {
		t.Fatalf("another reader's single get: %v %v", err, m)
	}
}

// TestRelayComesBack: the server closes a connection that cannot keep up
// with what it is sent, the relay's too under a flood; it reconnects, and
// readers' direct gets are answered again.
func TestRelayComesBack(t *testing.T) {
	srv, _ := natsGuardFixture(t, nil)
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		m, err := c.nc.Request("$JS.API.DIRECT.GET."+EventsStream, []byte(`{"seq":2}`), time.Second)
		if err == nil && m.Header.Get("Nats-Sequence") != "2" {
			err = fmt.Errorf("answer %v", m.Header)
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	z, err := srv.Connz(&server.ConnzOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	kicked := false
	for _, ci := range z.Conns {
		if ci.Name == "recledger-relay" {
			kicked = srv.DisconnectClientByID(ci.Cid) == nil
		}
	}
	if !kicked {
		t.Fatal("no relay connection to close")
	}
	jsWait(t, 10*time.Second, "a direct get answered again", func() bool { return get() == nil })
}

// TestClientsMakeOnlyPullConsumers: a client of the upload role makes
// pull consumers on the manifests stream, but no push consumer, whose
// deliver subject (a JetStream API subject, say) would get the stream's
// messages in the streams' account.
func TestClientsMakeOnlyPullConsumers(t *testing.T) {
	srv, own := natsGuardFixture(t, uploadOnly)
	c, err := dialUploader(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.js.CreateOrUpdateConsumer(ctx, ManifestsStream, jetstream.ConsumerConfig{Durable: "w2", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatalf("a pull consumer: %v", err)
	}
	if _, err := own.Consumer(ctx, ManifestsStream, "w2"); err != nil {
		t.Fatalf("the pull consumer made: %v", err)
	}
	push := `{"stream_name":"` + ManifestsStream + `","config":{"durable_name":"evil","deliver_subject":"$JS.API.STREAM.DELETE.` + EventsStream + `","ack_policy":"none"}}`
	for _, api := range []string{"$JS.API.CONSUMER.CREATE." + ManifestsStream + ".evil", "$JS.API.CONSUMER.DURABLE.CREATE." + ManifestsStream + ".evil"} {
		m, err := c.nc.Request(api, []byte(push), 5*time.Second)
		if err != nil || !strings.Contains(string(m.Data), "only pull consumers") {
			t.Errorf("%s, a push consumer: %v %s", api, err, m.Data)
		}
	}
	if _, err := own.Consumer(ctx, ManifestsStream, "evil"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the push consumer: %v, want none", err)
	}
}

// The goroutines the embedded server's in-process connections run on (the
// direct-get relay, the consumer gate) have an owner: WaitForShutdown
// returns once they have ended, not only the server.
func TestEmbeddedWaitsForItsConnections(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: jsTestSite,
		Authorize: func(string, netip.Addr) (string, NATSAccess, bool) { return "", 0, false }})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	var buf [1 << 20]byte
	stacks := string(buf[:runtime.Stack(buf[:], true)])
	for _, f := range []string{"ledger.(*directRelay).run", "ledger.connectInProcess.func"} {
		if strings.Contains(stacks, f) {
			t.Errorf("%s still runs after WaitForShutdown", f)
		}
	}
}

// TestUploadWorkersReadTheManifestsThroughTheRelay: a client of the
// upload role alone reads the manifests stream with direct gets, its
// replies arriving on its own upload inbox, which the relay must know
// for the token: an upload worker looks a manifest up so.
func TestUploadWorkersReadTheManifestsThroughTheRelay(t *testing.T) {
	srv, own := natsGuardFixture(t, uploadOnly)
	if _, err := own.Publish(t.Context(), ManifestSubject(jsTestSite, "2026-11-23"), []byte(`{"day":"2026-11-23"}`)); err != nil {
		t.Fatal(err)
	}
	c, err := dialUploader(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.nc.Request("$JS.API.DIRECT.GET."+ManifestsStream, []byte(`{"seq":1}`), 5*time.Second)
	if err != nil || m.Header.Get("Nats-Sequence") != "1" {
		t.Fatalf("an upload worker's direct get of a manifest: %v %v", err, m)
	}
}

// TestGuardRemembersABoundedNumberOfInboxes: without a tokens file any
// token connects; the inbox prefixes the guard keeps for the relay stay
// bounded however many tokens come (guardMaxInboxes).
func TestGuardRemembersABoundedNumberOfInboxes(t *testing.T) {
	g := &streamGuard{}
	for i := range guardMaxInboxes + 100 {
		g.noteInboxes("token-"+strconv.Itoa(i), NATSRead|NATSUpload)
	}
	if len(g.inboxes) > guardMaxInboxes {
		t.Errorf("%d inbox prefixes kept, want at most %d", len(g.inboxes), guardMaxInboxes)
	}
	if !g.knownInbox(InboxFor(UploadInboxPrefix, "token-0")) {
		t.Error("the first token's upload inbox is forgotten")
	}
}

// TestClientsAdmittedByNetworkAreCountedPerAddress: clients admitted
// without a token (by their network) are held to embeddedConnsPerHolder
// connections per address, not all together: one host opening all it
// may does not keep another host of the same network out.
func TestClientsAdmittedByNetworkAreCountedPerAddress(t *testing.T) {
	authorize := func(token string, _ netip.Addr) (string, NATSAccess, bool) {
		return "lan", NATSRead, token == ""
	}
	srv, _ := natsGuardFixture(t, authorize)
	dial := func(from string) error {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		nc, err := nats.Connect(srv.ClientURL(), nats.SetCustomDialer(d), nats.NoReconnect())
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return err
	}
	for i := range embeddedConnsPerHolder {
		if err := dial("127.0.0.1"); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, embeddedConnsPerHolder, err)
		}
	}
	if err := dial("127.0.0.1"); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a connection beyond the address's %d: %v, want refused", embeddedConnsPerHolder, err)
	}
	if err := dial("127.0.0.2"); err != nil {
		t.Fatalf("another address, while the first holds its all: %v", err)
	}
}

// TestUploadWorkersListenOnlyToTheirOwnDeliveries: each upload token's
// manifests are delivered under its own upload inbox prefix, where a
// worker of another token may not listen, and the upload role reads the
// manifests stream alone, not the events.
func TestUploadWorkersListenOnlyToTheirOwnDeliveries(t *testing.T) {
	authorize := func(token string, _ netip.Addr) (string, NATSAccess, bool) {
		return token, NATSUpload, token == "up-a" || token == "up-b"
	}
	srv, _ := natsGuardFixture(t, authorize)
	b, err := dialClient(t, srv, nats.Token("up-b"), nats.CustomInboxPrefix(UploadInboxPrefix))
	if err != nil {
		t.Fatal(err)
	}
	refused := []string{UploadInboxPrefix + ".>", InboxFor(UploadInboxPrefix, "up-a") + ".>"}
	for _, subj := range refused {
		if _, err := b.nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	_ = b.nc.PublishRequest("$JS.API.DIRECT.GET."+EventsStream, b.nc.NewInbox(), []byte(`{"seq":1}`))
	_ = b.nc.Flush()
	jsWait(t, 10*time.Second, "the refusals", func() bool {
		b.mu.Lock()
		seen := strings.Join(b.violations, "\n")
		b.mu.Unlock()
		return strings.Count(seen, "Permissions Violation for Subscription to") == len(refused) &&
			b.denied("$JS.API.DIRECT.GET."+EventsStream)
	})
}
