package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// plantAnswer has JetStream store its answer to a reading client's API
// request on subject, as a client may by naming it as the reply subject
// (docs/clients.md), and waits until the stream holds it.
func plantAnswer(t *testing.T, c *natsClient, own jetstream.JetStream, stream, subject string) {
	t.Helper()
	count := func() uint64 {
		s, err := own.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	before := count()
	// a direct get of a message that is not there: answered with a status
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, subject, []byte(`{"seq":999999}`)); err != nil {
		t.Fatal(err)
	}
	jsWait(t, 5*time.Second, "the planted answer", func() bool { return count() > before })
}

// externalServer stands for an external NATS: one account for every
// client, the streams among them (the embedded server keeps its clients
// in an account of their own, ClientsAccount).
func externalServer(t *testing.T) *Embedded {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: jsTestSite, Unguarded: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// TestForeignMessagesInTheStreams: streams taking the public subjects (as
// on an external NATS), a reading client has JetStream store its API
// answers among the site's events and on a day's manifest subject. The
// readers step over them and count them, the outbox resumes after its
// last event and removes those after it, and the day's manifest replaces
// the one on its subject.
func TestForeignMessagesInTheStreams(t *testing.T) {
	srv := externalServer(t)
	_, js := jsConnect(t, srv)
	c, err := dialClient(t, srv) // a reader: no token, no tokens file
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	s := jsStore(t)
	jsAppend(t, s, 50)
	o, stop := jsOutbox(t, s, js)
	jsDrained(t, s, o)
	plantAnswer(t, c, js, EventsStream, EventSubject(jsTestSite, TypeCommand))
	jsAppend(t, s, 50)
	jsDrained(t, s, o)
	stop()
	plantAnswer(t, c, js, EventsStream, EventSubject(jsTestSite, "x"))
	plantAnswer(t, c, js, EventsStream, EventSubject(jsTestSite, TypeCommand))

	var foreign int
	all := jsCollect(t, func(fn func(Envelope) error) error {
		return ScanJetStreamNoting(ctx, js, jsTestSite, 0, fn, func(uint64) { foreign++ })
	})
	if len(all) != 100 || foreign != 3 {
		t.Errorf("scan: %d events and %d foreign messages, want 100 and 3", len(all), foreign)
	}
	if got := jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, js, jsTestSite, 49, fn) }); len(got) != 51 {
		t.Errorf("scan after seq 49, beside a foreign message: %d events, want 51", len(got))
	}
	rep, err := CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil || !rep.OK || rep.Events != 100 || rep.Foreign != 3 {
		t.Errorf("compare: %+v, %v; want ok, 100 events, 3 foreign", rep, err)
	}

	// The outbox resumes after seq 100, not at a foreign message, and
	// removes the two after it; the one between events stays.
	jsAppend(t, s, 10)
	o, _ = jsOutbox(t, s, js)
	jsDrained(t, s, o)
	if got := o.Published(); got != 10 {
		t.Errorf("outbox published %d after the restart, want 10", got)
	}
	rep, err = CompareJetStream(ctx, s, js, jsTestSite)
	if err != nil || !rep.OK || rep.Events != 110 || rep.Foreign != 1 {
		t.Errorf("compare after the restart: %+v, %v; want ok, 110 events, 1 foreign", rep, err)
	}

	// A day's manifest subject taken before the day is sealed.
	day := "2026-12-05"
	plantAnswer(t, c, js, ManifestsStream, ManifestSubject(jsTestSite, day))
	src := &memManifests{}
	mo := NewManifestOutbox(js, jsTestSite, src, nil)
	stopMO := runOutbox(t, mo)
	src.seal(day)
	mo.Wake()
	jsWait(t, 10*time.Second, "the day's manifest", func() bool {
		msgs := manifestMsgs(t, js)
		return len(msgs) == 1 && msgs[0].Header.Get(jetstream.MsgIDHeader) == jsTestSite+"."+day
	})
	stopMO()
	checkManifests(t, js, src, day)
}

// A message on a day's subject that is not its manifest does not stop the
// day's publication; a different manifest of the day still does.
func TestPublishManifestReplacesForeignMessage(t *testing.T) {
	srv := externalServer(t)
	_, js := jsConnect(t, srv)
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plantAnswer(t, c, js, ManifestsStream, ManifestSubject(jsTestSite, "2026-12-06"))
	body := []byte(`{"day":"2026-12-06"}`)
	if err := publishManifest(ctx, js, jsTestSite, "2026-12-06", body, ""); err != nil {
		t.Fatal(err)
	}
	msgs := manifestMsgs(t, js)
	if len(msgs) != 1 || string(msgs[0].Data) != string(body) {
		t.Fatalf("stream holds %d messages, want the manifest alone", len(msgs))
	}
	if err := publishManifest(ctx, js, jsTestSite, "2026-12-06", []byte(`{"day":"other"}`), ""); err == nil {
		t.Error("a different manifest for a published day was taken")
	}
	// A foreign message after the published manifest: only it goes; the
	// manifest stays where it was (published again, it would fall in the
	// deduplication window and be lost).
	published := msgs[0].Sequence
	plantAnswer(t, c, js, ManifestsStream, ManifestSubject(jsTestSite, "2026-12-06"))
	if err := publishManifest(ctx, js, jsTestSite, "2026-12-06", body, ""); err != nil {
		t.Fatal(err)
	}
	if msgs = manifestMsgs(t, js); len(msgs) != 1 || msgs[0].Sequence != published {
		t.Fatalf("after a foreign message behind the manifest: %d messages, first at %d, want the manifest alone at %d", len(msgs), msgs[0].Sequence, published)
	}
}

// TestAForeignMessageThatCannotBeRemovedIsAConflict: a message on a day's
// subject that is not its manifest, in a stream that denies deleting
// messages, keeps the day from being published: a conflict for an
// operator to look at, not an unavailable stream to retry forever.
func TestAForeignMessageThatCannotBeRemovedIsAConflict(t *testing.T) {
	srv := externalServer(t)
	_, js := jsConnect(t, srv)
	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	plantAnswer(t, c, js, ManifestsStream, ManifestSubject(jsTestSite, "2026-12-06"))
	editStream(t, js, ManifestsStream, func(cfg *jetstream.StreamConfig) { cfg.DenyDelete = true })
	err = publishManifest(t.Context(), js, jsTestSite, "2026-12-06", []byte(`{"day":"2026-12-06"}`), "")
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish beside a foreign message that cannot be removed: %v, want ErrConflict", err)
	}
}

// TestEmbeddedStreamsTakeOnlyTheirOwn: with the streams taking messages
// under the embedded server's capture prefix, a reading client that names
// a stream's public subject as the reply of its API requests has nothing
// stored; it reads the events under the public subjects with direct gets,
// and may read neither the streams' configuration nor publish under the
// prefix.
func TestEmbeddedStreamsTakeOnlyTheirOwn(t *testing.T) {
	srv, js := jsCapturing(t)
	ctx := t.Context()
	// The site's upload consumer is made with the streams, and set back to
	// its configuration at each start.
	changed := UploadConsumerConfig(jsTestSite, UploadDurable(jsTestSite), time.Second)
	changed.MaxDeliver = 1
	if _, err := js.CreateOrUpdateConsumer(ctx, ManifestsStream, changed); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreamsCapturing(ctx, js, jsTestSite, 1, srv.Capture()); err != nil {
		t.Fatal(err)
	}
	if c, err := js.Consumer(ctx, ManifestsStream, UploadDurable(jsTestSite)); err != nil || c.CachedInfo().Config.MaxDeliver != -1 || c.CachedInfo().Config.AckWait != UploadAckWait {
		t.Errorf("the upload consumer after a start: %v", err)
	}
	s := jsStore(t)
	jsAppend(t, s, 50)
	o, _ := jsOutboxUnder(t, s, js, srv.Capture())
	jsDrained(t, s, o)
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-29", []byte(`{"day":"2026-11-29"}`), srv.Capture()); err != nil {
		t.Fatal(err)
	}

	c, err := dialClient(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	// The server's own requests are answered where no reader listens:
	// their answers name the capture subjects.
	sniff, err := c.nc.SubscribeSync(ReaderInboxPrefix + ".>")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.nc.Flush()
	if _, err := js.Stream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	if m, err := sniff.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("a reader saw the server's own answer: %.200s", m.Data)
	}
	for _, req := range []struct{ api, reply, body string }{
		{"$JS.API.DIRECT.GET." + EventsStream, EventSubject(jsTestSite, TypeCommand), `{"seq":999999}`},
		{"$JS.API.DIRECT.GET." + ManifestsStream, ManifestSubject(jsTestSite, "2026-11-30"), `{"seq":999999}`},
		// JetStream's empty "not found" answer, sent on an API subject, is
		// carried out as a request of JetStream's own: the streams deny
		// purges.
		{"$JS.API.DIRECT.GET." + ManifestsStream, "$JS.API.STREAM.PURGE." + EventsStream, `{"seq":999999}`},
		{"$JS.API.DIRECT.GET." + EventsStream, "$JS.API.STREAM.PURGE." + ManifestsStream, `{"seq":999999}`},
		{"$JS.API.DIRECT.GET." + EventsStream, EventSubject(jsTestSite, TypeCommand), `{"seq":1}`},
	} {
		if err := c.nc.PublishRequest(req.api, req.reply, []byte(req.body)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.nc.Publish(srv.Capture()+".events."+jsTestSite+".command", []byte("forged"))
	_, _ = c.nc.Request("$JS.API.STREAM.INFO."+EventsStream, nil, 200*time.Millisecond)
	_ = c.nc.Flush()
	time.Sleep(200 * time.Millisecond)

	jsCheckMirror(t, s, js) // the events alone, under the public subjects
	if msgs := manifestMsgs(t, js); len(msgs) != 1 || msgs[0].Subject != ManifestSubject(jsTestSite, "2026-11-29") {
		t.Errorf("manifests stream: %d messages", len(msgs))
	}
	if got := jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, c.js, jsTestSite, 0, fn) }); len(got) != 50 {
		t.Errorf("a reader read %d events, want 50", len(got))
	}
	if got := jsCollect(t, func(fn func(Envelope) error) error { return ScanJetStream(ctx, c.js, jsTestSite, 20, fn) }); len(got) != 30 {
		t.Errorf("a reader read %d events after seq 20, want 30", len(got))
	}
	for _, subj := range []string{srv.Capture() + ".events." + jsTestSite + ".command", "$JS.API.STREAM.INFO." + EventsStream} {
		if !c.denied(subj) {
			t.Errorf("a reader's publish to %s was not refused", subj)
		}
	}

	// A stream missing (deleted, about to be created again) is said so to
	// a reader, not blamed on its role.
	if err := js.DeleteStream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	err = Refused(c.nc, ScanJetStream(sctx, c.js, jsTestSite, 0, func(Envelope) error { return nil }))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a reader's scan of a missing stream: %v", err)
	}
}
