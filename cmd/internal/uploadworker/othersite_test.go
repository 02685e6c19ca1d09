package uploadworker

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// otherSite is the site of the other site's workers in these tests.
const otherSite = "Elsewhere"

// publishSiteManifest publishes a manifest of site and day as the
// server does (its message id {site}.{day}) and returns its files.
func publishSiteManifest(t *testing.T, js jetstream.JetStream, site, day string, n int) []string {
	t.Helper()
	body, names := testManifest(t, day, n)
	if _, err := js.Publish(context.Background(), "recledger.manifests."+site+"."+day, body, jetstream.WithMsgID(site+"."+day)); err != nil {
		t.Fatal(err)
	}
	return names
}

// runErr runs a worker on js with cfg until it returns, for at most
// timeout; it returns the worker's log and Run's error.
func runErr(t *testing.T, js jetstream.JetStream, cfg Config, timeout time.Duration) (string, error) {
	t.Helper()
	log := &ledgertest.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- New(js, cfg).Run(ctx) }()
	select {
	case err := <-done:
		return log.String(), err
	case <-time.After(timeout):
		cancel()
		<-done
		t.Fatalf("the worker did not stop in %s; its log:\n%s", timeout, log.String())
		return "", nil
	}
}

// D1: a worker given the --durable of another site's consumer refuses it
// at start, and takes nothing from it: the other site's manifest is left
// whole for that site's workers. It used to work with the consumer, log
// that it was bound to its own subject, and terminate the other site's
// manifest as "not a manifest" (a walk against an external NATS).
func TestWorkerRefusesAnotherSitesConsumer(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite, otherSite).JS
	ctx := context.Background()
	if _, err := js.CreateConsumer(ctx, StreamName, ledger.UploadConsumerConfig(otherSite, "uploaders", 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	day := "2026-12-02"
	names := publishSiteManifest(t, js, otherSite, day, 3)

	dest := t.TempDir()
	cfg := testConfig(dest, nil)
	cfg.Durable = "uploaders"
	out, err := runErr(t, js, cfg, 15*time.Second)
	if err == nil {
		t.Fatalf("the worker of %s bound %s's consumer; its log:\n%s", testSite, otherSite, out)
	}
	for _, want := range []string{`"uploaders"`, "recledger.manifests." + otherSite + ".*", testSite, "--durable", "remove"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if strings.Contains(out, "upload worker bound") || strings.Contains(out, "not a manifest") {
		t.Errorf("the refused worker's log:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dest, day)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused worker wrote for %s's day: %v", otherSite, err)
	}
	cons, err := js.Consumer(ctx, StreamName, "uploaders")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Never delivered (a consumer's pending count may lag the publish,
	// so it is not asked; the other site's worker below takes it).
	if info.NumAckPending != 0 || info.Delivered.Stream != 0 {
		t.Errorf("the other site's manifest was touched: ack pending %d, delivered %d",
			info.NumAckPending, info.Delivered.Stream)
	}

	// The other site's worker then takes its manifest.
	other := testConfig(t.TempDir(), nil)
	other.Site, other.Durable = otherSite, "uploaders"
	_, stop := runLogged(t, js, other)
	waitFor(t, "the other site's uploads", 20*time.Second, uploaded(other.Dest, day, names))
	stop()
}

// D1: a manifest of another site that still arrives (here the consumer's
// filter is changed under a bound worker) is neither taken nor
// terminated: the worker nak's it for that site's workers, says so at
// ERROR, and stops. It used to call it "not a manifest", checking its
// message id against the worker's own site, and terminate it.
func TestAnotherSitesManifestIsNotTaken(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite, otherSite).JS
	ctx := context.Background()
	dest := t.TempDir()
	cfg := testConfig(dest, nil)
	cfg.AckWait = time.Minute // within the test, only a nak delivers it again
	log := &ledgertest.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- New(js, cfg).Run(wctx) }()
	waitFor(t, "the worker bound", 10*time.Second, func() bool { return strings.Contains(log.String(), "upload worker bound") })

	changed := ledger.UploadConsumerConfig(otherSite, ledger.UploadDurable(testSite), cfg.AckWait)
	if _, err := js.UpdateConsumer(ctx, StreamName, changed); err != nil {
		t.Fatal(err)
	}
	day := "2026-12-02"
	publishSiteManifest(t, js, otherSite, day, 3)

	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		cancel()
		<-done
		t.Fatalf("the worker went on after another site's manifest; its log:\n%s", log.String())
	}
	out := log.String()
	if err == nil || !strings.Contains(err.Error(), otherSite) {
		t.Errorf("the worker's error does not name the other site: %v", err)
	}
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "subject=recledger.manifests."+otherSite+"."+day) {
		t.Errorf("no ERROR naming the manifest:\n%s", out)
	}
	if strings.Contains(out, "not a manifest") {
		t.Errorf("the other site's manifest was called not a manifest:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dest, day)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the worker wrote for %s's day: %v", otherSite, err)
	}
	// Nak'd, not terminated: it is delivered again.
	cons, err := js.Consumer(ctx, StreamName, ledger.UploadDurable(testSite))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("the other site's manifest is not delivered again: %v", err)
	}
	if md, _ := msg.Metadata(); msg.Subject() != "recledger.manifests."+otherSite+"."+day || md == nil || md.NumDelivered != 2 {
		t.Errorf("delivered again: %s %+v", msg.Subject(), md)
	}
}

// D1: the "bound" line names the consumer's own filter, not the one the
// worker would have made.
func TestBoundLineNamesTheConsumersFilter(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite).JS
	ctx := context.Background()
	made := ledger.UploadConsumerConfig(testSite, "split", 2*time.Second)
	made.FilterSubject, made.FilterSubjects = "", []string{Subject(testSite)}
	if _, err := js.CreateConsumer(ctx, StreamName, made); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir(), nil)
	cfg.Durable = "split"
	log, stop := runLogged(t, js, cfg)
	waitFor(t, "the worker bound", 10*time.Second, func() bool { return strings.Contains(log.String(), "upload worker bound") })
	stop()
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "upload worker bound") && !strings.Contains(line, "subject=recledger.manifests."+testSite+".*") {
			t.Errorf("the bound line: %s", line)
		}
	}
}

// Which consumers a worker takes: only one whose filter is exactly its
// site's manifests subject.
func TestConsumerFilterMustBeTheSites(t *testing.T) {
	own := Subject(testSite)
	for _, tc := range []struct {
		name    string
		subject string
		subjs   []string
		ok      bool
	}{
		{name: "own", subject: own, ok: true},
		{name: "own as a list", subjs: []string{own}, ok: true},
		{name: "another site", subject: Subject(otherSite)},
		{name: "every site", subject: "recledger.manifests.*.*"},
		{name: "no filter"},
		{name: "own and another", subjs: []string{own, Subject(otherSite)}},
		{name: "one day", subject: "recledger.manifests." + testSite + ".2026-12-02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkFilter(jetstream.ConsumerConfig{Durable: "d", FilterSubject: tc.subject, FilterSubjects: tc.subjs}, testSite)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrAnotherSitesConsumer) {
				t.Errorf("%v is not ErrAnotherSitesConsumer", err)
			}
		})
	}
}

// A worker that finds no consumer makes it, and never changes one that
// another site's worker made meanwhile (CreateOrUpdateConsumer would
// have set its filter to this site's).
func TestMakingTheConsumerChangesNoOtherSites(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite, otherSite).JS
	ctx := context.Background()
	if _, err := js.CreateConsumer(ctx, StreamName, ledger.UploadConsumerConfig(otherSite, "uploaders", 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir(), nil)
	cfg.Durable = "uploaders"
	if _, err := New(js, cfg).create(ctx); !errors.Is(err, jetstream.ErrConsumerExists) {
		t.Errorf("making a consumer that is there: %v", err)
	}
	cons, err := js.Consumer(ctx, StreamName, "uploaders")
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.FilterSubject; got != Subject(otherSite) {
		t.Errorf("the other site's consumer now filters %s", got)
	}
}

// Minor: a worker whose site has no manifests names every other site the
// stream holds, not only the last one's.
func TestWorkerNamesEveryOtherSite(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite, "siteA", "siteB", "siteC").JS
	for i, site := range []string{"siteB", "siteA", "siteC", "siteA"} {
		publishSiteManifest(t, js, site, "2026-11-2"+string(rune('0'+i)), 1)
	}
	log, stop := runLogged(t, js, testConfig(t.TempDir(), nil))
	waitFor(t, "the warning", 10*time.Second, func() bool { return strings.Contains(log.String(), "other_sites=") })
	stop()
	if out := log.String(); !strings.Contains(out, "other_sites=\"[siteA siteB siteC]\"") || strings.Contains(out, "e.g.") {
		t.Errorf("the warning does not name every other site:\n%s", out)
	}
}

// A worker whose site has manifests in the stream does not warn of the
// other sites' there: its --site is the server's.
func TestNoOtherSitesWarningWhenThisSiteHasManifests(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite, otherSite).JS
	names := publishSiteManifest(t, js, testSite, "2026-12-01", 1)
	publishSiteManifest(t, js, otherSite, "2026-12-02", 1) // the stream's last
	cfg := testConfig(t.TempDir(), nil)
	log, stop := runLogged(t, js, cfg)
	// Taken once the site was checked.
	waitFor(t, "the uploads", 20*time.Second, uploaded(cfg.Dest, "2026-12-01", names))
	stop()
	if out := log.String(); strings.Contains(out, "manifests of other sites") {
		t.Errorf("a worker of a site with manifests warned of the other sites:\n%s", out)
	}
}

// The listing of the other sites works with the embedded server's upload
// role, which may not read the stream's subjects, and leaves the worker
// working.
func TestWorkerNamesEveryOtherSiteWithAnUploadToken(t *testing.T) {
	srv, js := startWithUploadToken(t)
	ctx := context.Background()
	for _, site := range []string{testSite, "siteA", "siteB"} {
		if err := ledger.EnsureStreams(ctx, js, site, 1); err != nil {
			t.Fatal(err)
		}
	}
	publishSiteManifest(t, js, "siteB", "2026-12-01", 1)
	publishSiteManifest(t, js, "siteA", "2026-12-02", 1)
	cfg := testConfig(t.TempDir(), nil)
	cfg.Token, cfg.Durable = uploadToken, "uploaders" // upload-s1 is the server's to make
	log := runAtLogged(t, srv.ClientURL(), cfg)
	waitFor(t, "the warning", 10*time.Second, func() bool { return strings.Contains(log.String(), "other_sites=") })
	if out := log.String(); !strings.Contains(out, "other_sites=\"[siteA siteB]\"") || strings.Contains(out, "e.g.") {
		t.Errorf("the warning does not name every other site:\n%s", out)
	}
	names := publishSiteManifest(t, js, testSite, "2026-12-02", 2)
	waitFor(t, "the uploads", 20*time.Second, uploaded(cfg.Dest, "2026-12-02", names))
}

// The tokens startWithUploadToken's server takes: one with the upload
// role, one with the read role alone.
const (
	uploadToken = "up-a"
	readToken   = "read-a"
)

// startWithUploadToken starts an embedded server that gives uploadToken
// the upload role, readToken the read role, and refuses any other token,
// and returns it with a JetStream of its own connection, which may do
// anything.
func startWithUploadToken(t *testing.T) (*ledger.Embedded, jetstream.JetStream) {
	t.Helper()
	authorize := func(token string, _ netip.Addr) (string, ledger.NATSAccess, bool) {
		access := map[string]ledger.NATSAccess{uploadToken: ledger.NATSUpload, readToken: ledger.NATSRead}[token]
		return token, access, access != 0
	}
	srv, err := ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Site: testSite, Authorize: authorize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, js, err := ledger.Connect(context.Background(), srv.ClientURL(), "own", nil, srv.Own())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return srv, js
}

// D7: a worker refused by an external NATS server (a user and password,
// no recledger tokens file) is told both possible causes, not only
// recledger's tokens file.
func TestRefusedCredentialsHintTellsBothServers(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Username: "worker", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	addr := ns.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = Run(ctx, "nats://worker:wrong@"+addr, testConfig(t.TempDir(), nil))
	if err == nil {
		t.Fatal("a refused worker ran")
	}
	for _, want := range []string{"give a token with the upload role", "external NATS server", "user/password", "--nats"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "the server has a tokens file") {
		t.Errorf("the refusal claims a tokens file: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the refusal shows the password: %v", err)
	}
}

// A push consumer under the --durable name is refused at start: it
// never becomes a pull consumer, and a walk's worker retried it for good.
func TestWorkerRefusesAPushConsumer(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite).JS
	cc := ledger.UploadConsumerConfig(testSite, "pushed", 2*time.Second)
	cc.DeliverSubject = "somewhere.deliver"
	if _, err := js.CreateConsumer(context.Background(), StreamName, cc); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir(), nil)
	cfg.Durable = "pushed"
	out, err := runErr(t, js, cfg, 15*time.Second)
	if !errors.Is(err, jetstream.ErrNotPullConsumer) || !strings.Contains(err.Error(), "--durable") {
		t.Fatalf("a push consumer: %v; the worker's log:\n%s", err, out)
	}
}

// A --nats URL that does not parse is refused at once, without its
// password (a walk's worker waited for good, printing it).
func TestWorkerRefusesAnUnparsableURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var log ledgertest.Buffer
	cfg := testConfig(t.TempDir(), slog.New(slog.NewTextHandler(&log, nil)))
	for _, u := range []string{"nats://sp:Pa SECRETSP@127.0.0.1:1", "sp:Pa SECRETSP@127.0.0.1:1"} {
		err := Run(ctx, u, cfg)
		if err == nil || ctx.Err() != nil {
			t.Fatalf("%q: %v (ctx %v): want refused at once", u, err, ctx.Err())
		}
		if strings.Contains(err.Error()+log.String(), "SECRETSP") {
			t.Errorf("%q: the password is shown: %v\n%s", u, err, log.String())
		}
	}
}

// runAtLogged runs a worker connecting to url with cfg, its log kept,
// until the test ends; the worker's error then fails the test.
func runAtLogged(t *testing.T, url string, cfg Config) *ledgertest.Buffer {
	t.Helper()
	log := &ledgertest.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, url, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the worker: %v; its log:\n%s", err, log.String())
		}
	})
	return log
}
