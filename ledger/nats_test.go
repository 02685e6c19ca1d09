package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsTestSite is the site the JetStream tests publish as.
const jsTestSite = "s1"

// jsServer starts an embedded server with JetStream in dir, on listen
// ("127.0.0.1:-1" for any port), shut down at the end of the test.
func jsServer(t testing.TB, dir, listen string) *Embedded {
	t.Helper()
	return jsServerOwn(t, dir, listen, "")
}

// jsServerOwn is jsServer with the own token of an earlier server, so that
// that server's connections, reconnecting, are the new one's own.
func jsServerOwn(t testing.TB, dir, listen, own string) *Embedded {
	t.Helper()
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: dir, Listen: listen, Site: jsTestSite, own: own})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// jsCapturing starts an embedded server whose streams take messages under
// its capture prefix, as serve makes them, and connects to it as its own.
func jsCapturing(t testing.TB) (*Embedded, jetstream.JetStream) {
	t.Helper()
	return jsCapturingUnder(t, (*Embedded).Capture)
}

// jsCapturedByAnotherStart is jsCapturing with the streams left on
// another start's capture prefix, as a start that could not update them
// (a full disk) leaves them.
func jsCapturedByAnotherStart(t testing.TB) (*Embedded, jetstream.JetStream) {
	t.Helper()
	return jsCapturingUnder(t, func(*Embedded) string { return CapturePrefix + ".previousstart" })
}

// jsCapturingUnder starts an embedded server, connects as its own
// connection, and makes the streams of jsTestSite under capture(srv).
func jsCapturingUnder(t testing.TB, capture func(*Embedded) string) (*Embedded, jetstream.JetStream) {
	t.Helper()
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	ctx := context.Background()
	nc, js, err := Connect(ctx, srv.ClientURL(), "own", nil, srv.Own())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := EnsureStreamsCapturing(ctx, js, jsTestSite, 1, capture(srv)); err != nil {
		t.Fatal(err)
	}
	return srv, js
}

// jsConnect connects to srv as the server's own connection does, and
// ensures the streams of jsTestSite.
func jsConnect(t testing.TB, srv *Embedded) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := Connect(ctx, srv.ClientURL(), "test", nil, srv.Own())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := EnsureStreams(ctx, js, jsTestSite, 1); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// jsStore opens a store in a temporary directory, closed at the end of the test.
func jsStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "ledger.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// jsEvents returns n small events of two types, numbered from base.
func jsEvents(base, n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		k := strconv.Itoa(base + i)
		if i%3 == 2 {
			evs[i] = Event{Type: TypeCallSignal, Data: CallSignal{CallID: "c-" + k, Extension: "1001", Type: SignalRinging, Transport: TransportHTTP}}
			continue
		}
		evs[i] = Event{Type: TypeCommand, Data: Command{Command: "pauseurl", Extension: "1001", Params: []Param{{Key: "n", Value: k}}, Transport: TransportCAD}}
	}
	return evs
}

// jsAppend appends n events in batches of up to 100.
func jsAppend(t testing.TB, s *Store, n int) {
	t.Helper()
	for done := 0; done < n; {
		k := min(100, n-done)
		if _, err := s.Append(context.Background(), jsEvents(done, k)...); err != nil {
			t.Fatal(err)
		}
		done += k
	}
}

// editStream changes the configuration of stream as an operator would
// (nats stream edit).
func editStream(t testing.TB, js jetstream.JetStream, stream string, edit func(*jetstream.StreamConfig)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	edit(&cfg)
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// jsStreamMsgs returns every message of the events stream.
func jsStreamMsgs(t testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	return streamMsgs(t, js, EventsStream)
}

// streamMsgs returns every message of a stream in stream order, skipping
// deleted ones.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// jsCheckMirror fails unless the stream holds exactly the store's events,
// in order, each once, byte for byte, with the ULID as message id.
func jsCheckMirror(t testing.TB, s *Store, js jetstream.JetStream) {
	t.Helper()
	msgs := jsStreamMsgs(t, js)
	head, _ := s.Head()
	if uint64(len(msgs)) != head {
		t.Fatalf("stream holds %d events, ledger %d", len(msgs), head)
	}
	i := 0
	err := s.Scan(context.Background(), 0, func(e Envelope) error {
		m := msgs[i]
		i++
		if string(m.Data) != string(e.Raw) {
			return fmt.Errorf("seq %d: stream bytes %q, ledger %q", e.Seq, m.Data, e.Raw)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != e.ID.String() {
			return fmt.Errorf("seq %d: msg id %q, want %s", e.Seq, got, e.ID)
		}
		if want := EventSubject(jsTestSite, e.Type); m.Subject != want {
			return fmt.Errorf("seq %d: subject %q, want %q", e.Seq, m.Subject, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// jsWait polls cond every 10ms until it holds or d passes.
func jsWait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartEmbeddedListen(t *testing.T) {
	if _, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: "nonsense"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad listen: err = %v, want ErrInvalid", err)
	}
	if _, err := StartEmbedded(EmbeddedOptions{Listen: "127.0.0.1:-1"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no store dir: err = %v, want ErrInvalid", err)
	}
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	if !srv.JetStreamEnabled() {
		t.Fatal("JetStream not enabled")
	}
	if addr := srv.Addr().String(); addr == "" || addr == "127.0.0.1:4222" {
		t.Fatalf("listening on %q, want a random port", addr)
	}
}

func TestEnsureStreamsKeepsOtherSites(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	ctx := context.Background()
	for _, site := range []string{"s2", jsTestSite} { // s1 again: nothing changes
		if err := EnsureStreams(ctx, js, site, 1); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string][]string{
		EventsStream:    {"recledger.events.s1.>", "recledger.events.s2.>"},
		ManifestsStream: {"recledger.manifests.s1.*", "recledger.manifests.s2.*"},
	} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		got := slices.Sorted(slices.Values(cfg.Subjects))
		if !slices.Equal(got, want) {
			t.Errorf("%s subjects %v, want %v", name, got, want)
		}
		if cfg.Storage != jetstream.FileStorage || cfg.Duplicates != DuplicateWindow {
			t.Errorf("%s: storage %v duplicates %v", name, cfg.Storage, cfg.Duplicates)
		}
	}
	if err := EnsureStreams(ctx, js, "a.b", 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("site with a dot: err = %v, want ErrInvalid", err)
	}
}

// A stream an operator made with limits that remove messages takes the
// site all the same, and EnsureStreams names the limits (a walk's 20 s
// max_age had the whole history refilled every 20 s, each time called a
// deleted stream, and nothing said why).
func TestEnsureStreamsNamesLimitsThatRemoveMessages(t *testing.T) {
	// An external server, which makes no stream of its own.
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	ctx := context.Background()
	nc, js, err := Connect(ctx, srv.ClientURL(), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: EventsStream, Subjects: []string{"legacy.>"}, Storage: jetstream.MemoryStorage, MaxAge: 20 * time.Second, MaxMsgs: 50}); err != nil {
		t.Fatal(err)
	}
	err = EnsureStreams(ctx, js, jsTestSite, 1)
	if !errors.Is(err, ErrStreamLimits) {
		t.Fatalf("err = %v, want ErrStreamLimits", err)
	}
	for _, want := range []string{"RECLEDGER_EVENTS", "max_age 20s", "max_msgs 50", "memory storage", "nats stream edit RECLEDGER_EVENTS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), ManifestsStream) {
		t.Errorf("the manifests stream, made by EnsureStreams, has no limits: %v", err)
	}
	st, serr := js.Stream(ctx, EventsStream)
	if serr != nil || !slices.Contains(st.CachedInfo().Config.Subjects, "recledger.events.s1.>") || st.CachedInfo().Config.MaxAge != 20*time.Second {
		t.Fatalf("the site's subject was not added, or the operator's limits changed: %v %+v", serr, st.CachedInfo().Config)
	}
	o := NewOutbox(jsStore(t), js, jsTestSite, nil)
	o.replicas = 1
	if err := o.ensureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	if p := o.Mismatch(); p == nil || !errors.Is(p, ErrStreamLimits) {
		t.Errorf("the outbox's problem (readyz) is %v, want the limits", p)
	}
}

func TestSubjects(t *testing.T) {
	if got := EventSubject("east", TypeCommand); got != "recledger.events.east.command" {
		t.Errorf("EventSubject = %q", got)
	}
	if got := ManifestSubject("east", "2026-11-23"); got != "recledger.manifests.east.2026-11-23" {
		t.Errorf("ManifestSubject = %q", got)
	}
}

func TestPublishManifestOnce(t *testing.T) {
	srv := jsServer(t, t.TempDir(), "127.0.0.1:-1")
	_, js := jsConnect(t, srv)
	ctx := context.Background()
	// A tiny deduplication window, long past at the re-publish: only the
	// look-before-publish keeps the stream from holding the day twice.
	shortDedupe(t, js)
	st, err := js.Stream(ctx, ManifestsStream)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"day":"2026-11-23","contacts":[]}`)
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-23", body, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-23", body, ""); err != nil {
		t.Fatalf("re-publish: %v", err)
	}
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-23", []byte(`{"other":1}`), ""); !errors.Is(err, ErrConflict) {
		t.Errorf("different bytes for a published day: err = %v, want ErrConflict", err)
	}
	if err := publishManifest(ctx, js, jsTestSite, "2026-11-24", body, ""); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d manifests, want 2", info.State.Msgs)
	}
	m, err := st.GetLastMsgForSubject(ctx, ManifestSubject(jsTestSite, "2026-11-23"))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != string(body) || m.Header.Get(jetstream.MsgIDHeader) != jsTestSite+".2026-11-23" {
		t.Errorf("stored %q with id %q", m.Data, m.Header.Get(jetstream.MsgIDHeader))
	}
	if err := publishManifest(ctx, js, jsTestSite, "a.b", body, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("day with a dot: err = %v, want ErrInvalid", err)
	}
}

// A NATS address already taken is said at once, with the reason.
func TestStartEmbeddedOnATakenAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := StartEmbedded(EmbeddedOptions{StoreDir: t.TempDir(), Listen: ln.Addr().String()})
	if err == nil {
		srv.Shutdown()
		t.Fatal("started on a taken address")
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("err = %v, want ErrUnavailable saying the address is in use", err)
	}
}

// Credentials in NATS URLs never reach a log or an error (RedactURLs)
// nor serving.json and replay's messages (StripURLCredentials), in every
// form nats.go takes.
func TestRedactURLs(t *testing.T) {
	for _, c := range []struct{ in, redacted, stripped string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://rl:secret@h:4222", "nats://rl:xxxxx@h:4222", "nats://h:4222"},
		{"nats://s3cr3t-token@h:4222, nats://u:p@h2:4222", "nats://xxxxx@h:4222,nats://u:xxxxx@h2:4222", "nats://h:4222,nats://h2:4222"},
		{"nats://h:4222,nats://h2:4222", "nats://h:4222,nats://h2:4222", "nats://h:4222,nats://h2:4222"},
		// nats.go takes a URL without a scheme; url.Parse read the user
		// as a scheme and left the password (a walk's serving.json).
		{"rl:S3cretPW@127.0.0.1:4222", "rl:xxxxx@127.0.0.1:4222", "127.0.0.1:4222"},
		{"tok3n@127.0.0.1:4222", "xxxxx@127.0.0.1:4222", "127.0.0.1:4222"},
		// url.Parse refuses these: they were shown whole.
		{"nats://rl:S3c ret@h:4222", "nats://rl:xxxxx@h:4222", "nats://h:4222"},
		{"nats://rl:p@ss#w/rd@h:4222", "nats://rl:xxxxx@h:4222", "nats://h:4222"},
		{"tls://h:4222", "tls://h:4222", "tls://h:4222"},
	} {
		if got := RedactURLs(c.in); got != c.redacted {
			t.Errorf("RedactURLs(%q) = %q, want %q", c.in, got, c.redacted)
		}
		if got := StripURLCredentials(c.in); got != c.stripped {
			t.Errorf("StripURLCredentials(%q) = %q, want %q", c.in, got, c.stripped)
		}
	}
}

// A URL nats.go cannot parse is quoted whole in its error: Connect's
// error names it without the password.
func TestConnectErrorHidesThePassword(t *testing.T) {
	for _, u := range []string{"nats://rl:S3c ret@127.0.0.1:1", "nats://rl:S3c%zzret@127.0.0.1:1"} {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, _, err := Connect(ctx, u, "test", nil)
		cancel()
		if err == nil || strings.Contains(err.Error(), "S3c") {
			t.Errorf("connect %q: %v", u, err)
		}
	}
}

// A connection made with KeepTrying outlasts a server that refuses its
// credentials, and connects once they are taken: serve's connection to
// an external NATS whose password is wrong at its start, or is changed
// and changed back while it runs (a walk's serve never mirrored again).
// The refusals, one each reconnect, are logged once a minute.
func TestKeepTryingOutlivesRefusedCredentials(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, Username: "rl", Password: "right", NoSigs: true, NoLog: true}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	password := func(pw string) {
		t.Helper()
		o := *opts
		o.Password = pw
		if err := srv.ReloadOptions(&o); err != nil {
			t.Fatal(err)
		}
	}
	var logged safeBuffer
	u := fmt.Sprintf("nats://rl:wrong@%s", srv.Addr())
	nc, _, err := Connect(t.Context(), u, "test", slog.New(slog.NewTextHandler(&logged, nil)), KeepTrying())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// Refused at the start: said (nats.go tells nothing of refusals while
	// it retries a first connect).
	if !strings.Contains(logged.String(), "refuses this connection's credentials") {
		t.Errorf("the refusal at the start is not said:\n%s", logged.String())
	}
	time.Sleep(time.Second) // several refused attempts
	if nc.IsClosed() || nc.IsConnected() {
		t.Fatalf("closed %v, connected %v: want still trying", nc.IsClosed(), nc.IsConnected())
	}
	password("wrong")
	jsWait(t, 10*time.Second, "the connection to be taken", nc.IsConnected)

	// Changed while connected, then changed back.
	password("other")
	jsWait(t, 10*time.Second, "the connection to be refused", func() bool { return !nc.IsConnected() })
	time.Sleep(1500 * time.Millisecond)
	if nc.IsClosed() {
		t.Fatal("the connection was closed for good")
	}
	if n := strings.Count(logged.String(), `msg="nats error"`); n != 1 {
		t.Errorf("%d refusals logged within 1.5 s, want 1:\n%s", n, logged.String())
	}
	password("wrong")
	jsWait(t, 10*time.Second, "the connection to be taken again", nc.IsConnected)
	if strings.Contains(logged.String(), "wrong") {
		t.Errorf("the log shows the password:\n%s", logged.String())
	}
}

// A JetStream store that exists but is not a directory, or cannot be
// read, is named with the cause (nats-server says "not a directory" for
// all of them).
func TestStartEmbeddedNamesAStoreItCannotUse(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jetstream")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := StartEmbedded(EmbeddedOptions{StoreDir: file, Listen: "127.0.0.1:-1"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("a file as the store: %v", err)
	}
	if os.Geteuid() == 0 {
		return // root reads every directory
	}
	dir := filepath.Join(t.TempDir(), "jetstream")
	if err := os.Mkdir(dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	_, err = StartEmbedded(EmbeddedOptions{StoreDir: dir, Listen: "127.0.0.1:-1"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("an unreadable store: %v", err)
	}
}

// TestNATSLogIsPaced: nats-server's lines beyond natsLogBurst at once are
// counted, not written; the count comes with the next line written.
func TestNATSLogIsPaced(t *testing.T) {
	var buf bytes.Buffer
	l := newNATSLogger(slog.New(slog.NewTextHandler(&buf, nil)), nil)
	for i := range 10 * natsLogBurst {
		l.Errorf("refused publish %d", i)
	}
	if n := strings.Count(buf.String(), "\n"); n != natsLogBurst {
		t.Errorf("%d lines written at once, want %d", n, natsLogBurst)
	}
	time.Sleep(2 * time.Second / natsLogRate)
	buf.Reset()
	l.Errorf("one more")
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "lines_not_written="+strconv.Itoa(9*natsLogBurst)) || !strings.Contains(got, "one more") {
		t.Errorf("after the burst: %q", buf.String())
	}
}

// TestNATSPayloadWarningIsInfo: the embedded server's warning about a
// max_payload over 8 MB (ours is raised on purpose) is written as info;
// its other warnings stay warnings.
func TestNATSPayloadWarningIsInfo(t *testing.T) {
	var buf bytes.Buffer
	l := newNATSLogger(slog.New(slog.NewTextHandler(&buf, nil)), nil)
	l.Warnf("Maximum payloads over %v are generally discouraged and could lead to poor performance", "8.00 MB")
	l.Warnf("Filestore [%s] %v", "x", "slow")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "8.00 MB") || !strings.Contains(lines[1], "level=WARN") {
		t.Errorf("logged:\n%s", buf.String())
	}
}

// TestNATSSlowConsumerNoticeIsAWarning: nats-server tells a slow
// consumer as a notice, which the log writes at debug (not shown); a
// client's fault, it is a warning, as its errors of that kind are.
func TestNATSSlowConsumerNoticeIsAWarning(t *testing.T) {
	var buf bytes.Buffer
	l := newNATSLogger(slog.New(slog.NewTextHandler(&buf, nil)), nil)
	l.Noticef("Slow Consumer Detected: MaxPending of %d Exceeded", 67108864)
	l.Noticef("Server is ready")
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "level=WARN") || !strings.Contains(got, "Slow Consumer Detected: MaxPending of 67108864") {
		t.Errorf("logged:\n%s", got)
	}
}

// TestEmbeddedForgetsClosedClients: the embedded server keeps the record
// of a few closed connections only (embeddedClosedClients), not of 10,000
// with each one's subscriptions, as nats-server does by default.
func TestEmbeddedForgetsClosedClients(t *testing.T) {
	srv, _ := natsGuardFixture(t, nil)
	for range 2 * embeddedClosedClients {
		c, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		for j := range 10 {
			if _, err := c.SubscribeSync("_INBOX.s" + strconv.Itoa(j)); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.Flush()
		c.Close()
	}
	jsWait(t, 10*time.Second, "the clients gone", func() bool { return srv.NumClients() <= 3 })
	z, err := srv.Connz(&server.ConnzOptions{State: server.ConnClosed, Limit: 10 * embeddedClosedClients})
	if err != nil {
		t.Fatal(err)
	}
	if z.Total > embeddedClosedClients || z.Total == 0 {
		t.Errorf("%d closed connections on record, want %d", z.Total, embeddedClosedClients)
	}
}

// TestEmbeddedStoreIsBoundByTheDiskOnly: the embedded JetStream's store
// limit does not depend on the room the disk had at start (nats-server's
// default: three quarters of it), which refused the mirror for good on a
// server started on a disk nearly full.
func TestEmbeddedStoreIsBoundByTheDiskOnly(t *testing.T) {
	dir := t.TempDir()
	srv := jsServer(t, dir, "127.0.0.1:-1")
	free, ok := FreeBytes(dir)
	if !ok {
		t.Skip("the free space cannot be told here")
	}
	if got := srv.JetStreamConfig().MaxStore; got < int64(free)*1000 || got != embeddedMaxStore {
		t.Errorf("JetStream may store %d bytes, the disk has %d free", got, free)
	}
	// And so it stays after a restart of JetStream.
	if err := srv.RestartJetStream(); err != nil {
		t.Fatal(err)
	}
	if got := srv.JetStreamConfig().MaxStore; got != embeddedMaxStore {
		t.Errorf("after a restart JetStream may store %d bytes", got)
	}
}

// TestClientFaultsAreWarnings: what a client did wrong is not the
// server's error; the operator's ERROR lines stay the server's own.
func TestClientFaultsAreWarnings(t *testing.T) {
	var b bytes.Buffer
	l := newNATSLogger(slog.New(slog.NewTextHandler(&b, nil)), nil)
	l.Errorf("%s - %s", `127.0.0.1:5555 - cid:7 - "v1.55.0:go:test" - "RECLEDGER_CLIENTS/user:finesse"`, `Publish Violation - User "finesse", Subject "recledger.events.x.command"`)
	l.Errorf("JetStream failed to store a msg on stream %q: %v", "RECLEDGER_EVENTS", "no space left on device")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[1], "level=ERROR") {
		t.Fatalf("levels:\n%s", b.String())
	}
}

// safeBuffer is a bytes.Buffer that a logger's goroutines and the test
// may use at once.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
