package uploadworker

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/recledger/recledger/ledger"

	"github.com/recledger/recledger/ledger/ledgertest"
)

const testSite = "s1"

// Environment of a child worker process (see TestWorkerChild).
const (
	envChild    = "RECLEDGER_UPLOADWORKER_CHILD"
	envURL      = "RECLEDGER_UPLOADWORKER_URL"
	envDest     = "RECLEDGER_UPLOADWORKER_DEST"
	envThrottle = "RECLEDGER_UPLOADWORKER_THROTTLE"
)

// testConfig is the worker configuration of the tests: short AckWait so a
// killed worker's manifest comes back quickly.
func testConfig(dest string, log *slog.Logger) Config {
	return Config{
		Site: testSite, Dest: dest,
		AckWait: 2 * time.Second, NakDelay: 200 * time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond,
		StaleTemp: 300 * time.Millisecond, FetchMaxWait: 300 * time.Millisecond,
		Logger: log,
	}
}

// TestWorkerChild is the body of a worker child process; it does nothing in
// a normal test run. The parent kills it with SIGKILL or stops it with SIGTERM.
func TestWorkerChild(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("child process only")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg := testConfig(os.Getenv(envDest), slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if d, err := time.ParseDuration(os.Getenv(envThrottle)); err == nil && d > 0 {
		cfg.OnFile = func(string) { time.Sleep(d) }
	}
	if err := Run(ctx, os.Getenv(envURL), cfg); err != nil {
		t.Fatal(err)
	}
}

func startNATS(t *testing.T) (*ledger.Embedded, jetstream.JetStream) {
	t.Helper()
	j := ledgertest.StartJetStream(t, testSite)
	return j.Server, j.JS
}

// testManifest builds a manifest of day with n contacts and a metadata
// update for every tenth; it returns the bytes and the file names expected.
func testManifest(t *testing.T, day string, n int) ([]byte, []string) {
	t.Helper()
	type contact struct {
		ContactID string            `json:"contact_id"`
		CallID    string            `json:"call_id"`
		Day       string            `json:"day"`
		Metadata  map[string]string `json:"metadata"`
	}
	type update struct {
		ContactID string            `json:"contact_id"`
		Seq       uint64            `json:"seq"`
		Metadata  map[string]string `json:"metadata"`
	}
	var m struct {
		Format          string         `json:"format"`
		Day             string         `json:"day"`
		Contacts        []contact      `json:"contacts"`
		MetadataUpdates []update       `json:"metadata_updates"`
		Counts          map[string]int `json:"counts"`
		ChainHead       string         `json:"chain_head"`
	}
	m.Format, m.Day, m.ChainHead = Format, day, strings.Repeat("ab", 32)
	var names []string
	for i := range n {
		id := fmt.Sprintf("01K%s%05d", strings.ReplaceAll(day, "-", ""), i)
		m.Contacts = append(m.Contacts, contact{ContactID: id, CallID: fmt.Sprintf("c-%d", i), Day: day,
			Metadata: map[string]string{"account": fmt.Sprint(1000 + i), "note": strings.Repeat("x", 200)}})
		names = append(names, id+".json")
		if i%10 == 0 {
			seq := uint64(1000 + i)
			m.MetadataUpdates = append(m.MetadataUpdates, update{ContactID: id, Seq: seq, Metadata: map[string]string{"account": "1"}})
			names = append(names, fmt.Sprintf("%s.metadata.%d.json", id, seq))
		}
	}
	m.Counts = map[string]int{"contacts": n}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b, names
}

func publishManifests(t *testing.T, js jetstream.JetStream, days []string, n int) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for _, day := range days {
		body, names := testManifest(t, day, n)
		want[day] = names
		_, err := js.Publish(context.Background(), "recledger.manifests."+testSite+"."+day, body, jetstream.WithMsgID(testSite+"."+day))
		if err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// countFiles returns the final files and the temp files under dest.
func countFiles(t *testing.T, dest string) (finals map[string]int, temps []string) {
	t.Helper()
	finals = map[string]int{}
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			temps = append(temps, p)
			return nil
		}
		rel, _ := filepath.Rel(dest, p)
		finals[rel]++
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return finals, temps
}

type child struct {
	cmd    *exec.Cmd
	stderr *ledgertest.Buffer
	done   chan error
}

func startChild(t *testing.T, url, dest string, throttle time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerChild$", "-test.v")
	cmd.Env = append(os.Environ(), envChild+"=1", envURL+"="+url, envDest+"="+dest, envThrottle+"="+throttle.String())
	c := &child{cmd: cmd, stderr: &ledgertest.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = c.stderr
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child %d output:\n%s", cmd.Process.Pid, c.stderr.String())
		}
	})
	return c
}

// runLogged runs a worker on js with cfg, its log captured in the returned
// writer, until the returned stop, which checks that it ended cleanly.
func runLogged(t *testing.T, js jetstream.JetStream, cfg Config) (log *ledgertest.Buffer, stop func()) {
	t.Helper()
	log = &ledgertest.Buffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(js, cfg).Run(ctx) }()
	return log, func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKilledWorkerEveryContactOnce runs two worker processes on three
// manifests, SIGKILLs one in the middle of a manifest, restarts it, and
// checks that every contact file exists exactly once, whole, with no temp
// file left and nothing left unacked.
func TestKilledWorkerEveryContactOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes")
	}
	ns, js := startNATS(t)
	dest := t.TempDir()
	days := []string{"2026-11-21", "2026-11-22", "2026-11-23"}
	want := publishManifests(t, js, days, 200)
	total := 0
	for _, names := range want {
		total += len(names)
	}

	// A temp file as an earlier killed worker would have left it.
	stale := filepath.Join(dest, days[1], tempPrefix+"01KSTALE.json.123")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte(`{"contact_id":"01KST`), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	a := startChild(t, ns.ClientURL(), dest, 10*time.Millisecond)
	// Let A take a manifest and write part of it before B starts, so the kill lands mid-manifest.
	waitFor(t, "worker A to start writing", 30*time.Second, func() bool {
		f, _ := countFiles(t, dest)
		return len(f) >= 20
	})
	b := startChild(t, ns.ClientURL(), dest, time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	a.done <- nil // for the cleanup
	killedAt, _ := countFiles(t, dest)
	if len(killedAt) >= total {
		t.Fatalf("worker A was killed after all %d files were written: the test did not kill mid-manifest", total)
	}
	a2 := startChild(t, ns.ClientURL(), dest, 0) // A restarted

	cons, err := js.Consumer(context.Background(), StreamName, "upload-"+testSite)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every manifest acked", 60*time.Second, func() bool {
		info, err := cons.Info(context.Background())
		if err != nil {
			return false
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == uint64(len(days))
	})

	// The manifest A held when it was killed came back to a worker.
	logs := func(c *child) string {
		return c.stderr.String()
	}
	// A worker acks a manifest before it logs it: wait for the line.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs(b)+logs(a2), "delivery=2") {
		if time.Now().After(deadline) {
			t.Fatalf("no manifest was redelivered after the kill:\n%s", logs(b)+logs(a2))
		}
		time.Sleep(50 * time.Millisecond)
	}

	finals, temps := countFiles(t, dest)
	if len(temps) > 0 {
		t.Errorf("temp files left behind: %v", temps)
	}
	for _, day := range days {
		for _, name := range want[day] {
			rel := filepath.Join(day, name)
			if finals[rel] != 1 {
				t.Errorf("%s: %d copies, want 1", rel, finals[rel])
			}
			body, err := os.ReadFile(filepath.Join(dest, rel))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				ContactID string `json:"contact_id"`
			}
			if err := json.Unmarshal(body, &c); err != nil {
				t.Errorf("%s does not parse: %v", rel, err)
			} else if !strings.HasPrefix(name, c.ContactID+".") {
				t.Errorf("%s holds contact %q", rel, c.ContactID)
			}
			delete(finals, rel)
		}
	}
	if len(finals) > 0 {
		t.Errorf("unexpected files: %v", finals)
	}
}

// parsedManifest is testManifest parsed.
func parsedManifest(t *testing.T, day string, n int) (Manifest, []string) {
	t.Helper()
	body, names := testManifest(t, day, n)
	m, err := ParseManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	return m, names
}

// TestRedeliveryWritesNothingTwice handles the same manifest twice in
// process: the second pass skips every file.
func TestRedeliveryWritesNothingTwice(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	m, names := parsedManifest(t, "2026-11-23", 30)
	var synced []string
	cfg := testConfig(dest, nil)
	cfg.OnSync = func(dir string) { synced = append(synced, dir) }
	w := New(js, cfg)
	st, failed := w.writeManifest(context.Background(), m, func() {})
	if len(failed) > 0 || st.written != len(names) || st.skipped != 0 {
		t.Fatalf("first pass: %+v failed=%v, want %d written", st, failed, len(names))
	}
	// The second pass finds every file in place, as after a worker
	// killed between its renames and its fsyncs: it syncs the day's
	// directory and its parent all the same before the manifest is acked.
	synced = nil
	st, failed = w.writeManifest(context.Background(), m, func() {})
	if len(failed) > 0 || st.written != 0 || st.skipped != len(names) {
		t.Fatalf("second pass: %+v failed=%v, want %d skipped", st, failed, len(names))
	}
	if day := filepath.Join(dest, m.Day); !slices.Equal(synced, []string{dest, day}) {
		t.Fatalf("second pass synced %q, want %q then %q", synced, dest, day)
	}
}

// A temp file that a delivery killed moments ago left (younger than
// StaleTemp, as when a short AckWait redelivers soon) is removed once the
// manifest is all written: it held a contact's data, and stayed for good
// after the ack (a walk).
func TestYoungTempOfAKilledDeliveryIsSwept(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	m, names := parsedManifest(t, "2026-11-23", 5)
	left := filepath.Join(dest, "2026-11-23", tempPrefix+strings.TrimSuffix(names[0], ".json")+".json.674406664")
	if err := os.MkdirAll(filepath.Dir(left), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte(`{"contact_id":"`), 0o644); err != nil {
		t.Fatal(err)
	}
	ago := time.Now().Add(-time.Second)
	if err := os.Chtimes(left, ago, ago); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dest, nil)
	cfg.StaleTemp = time.Minute
	if st, failed := New(js, cfg).writeManifest(context.Background(), m, func() {}); len(failed) > 0 || st.written != len(names) {
		t.Fatalf("%+v failed=%v", st, failed)
	}
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the killed delivery's temp file is still there: %v", err)
	}
}

// TestUnwritableContactNaks makes the day directory impossible to create: the
// manifest is nak'd (not acked, not dropped) and redelivered. Its error
// line counts every contact that failed and names the first ten only.
func TestUnwritableContactNaks(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	day := "2026-11-23"
	// A plain file where the day directory should be: nothing can be written (even as root).
	if err := os.WriteFile(filepath.Join(dest, day), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	publishManifests(t, js, []string{day}, 12) // 14 files: 12 contacts, 2 updates
	cfg := testConfig(dest, nil)
	cfg.MaxTries = 2
	cfg.AckWait = time.Minute // within the wait below, only the nak (NakDelay) delivers it again
	log, stop := runLogged(t, js, cfg)
	waitFor(t, "a nak", 20*time.Second, func() bool { return strings.Count(log.String(), "MANIFEST NOT UPLOADED") >= 2 })
	stop()
	out := log.String()
	if !strings.Contains(out, day) || !strings.Contains(out, "01K2026112300000") {
		t.Fatalf("the error does not name the day and the contacts:\n%s", out)
	}
	// The line that says the manifest was not uploaded says why too (a
	// walk found the cause only in an earlier warning).
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "MANIFEST NOT UPLOADED") && !strings.Contains(line, " err=") {
			t.Fatalf("no cause on the error line: %s", line)
		}
	}
	shown := regexp.MustCompile(`failed=14 failed_contacts="\[([^\]]*)\]"`).FindStringSubmatch(out)
	if shown == nil || len(strings.Fields(shown[1])) != maxFailedShown {
		t.Errorf("the error line does not count 14 failed and name %d:\n%s", maxFailedShown, out)
	}
}

// freeAddr is a loopback address nothing listens on yet.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// uploaded reports whether dest holds the files names of day.
func uploaded(dest, day string, names []string) func() bool {
	return func() bool {
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(dest, day, n)); err != nil {
				return false
			}
		}
		return true
	}
}

// runWorker runs Run against addr until the test ends it with the returned
// stop, which checks that it ended cleanly.
func runWorker(t *testing.T, addr, dest string) (stop func()) {
	t.Helper()
	return runWorkerLogged(t, addr, dest, nil)
}

// runWorkerLogged is runWorker with the worker's log.
func runWorkerLogged(t *testing.T, addr, dest string, log *slog.Logger) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, "nats://"+addr, testConfig(dest, log)) }()
	return func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
}

// A worker started before the server says it waits, keeps trying to
// connect, says when it has, binds once the server and its stream are
// up, and uploads.
func TestWorkerStartedBeforeTheServer(t *testing.T) {
	addr, dest := freeAddr(t), t.TempDir()
	logs := &ledgertest.Buffer{}
	stop := runWorkerLogged(t, addr, dest, slog.New(slog.NewTextHandler(logs, nil)))
	time.Sleep(300 * time.Millisecond) // the worker is trying, with nothing there
	if got := logs.String(); !strings.Contains(got, "upload worker waiting for the server's NATS") || strings.Contains(got, "upload worker connected") {
		t.Errorf("before the server, the log: %s", got)
	}
	j := ledgertest.StartJetStreamOn(t, addr, testSite)
	want := publishManifests(t, j.JS, []string{"2026-11-23"}, 3)["2026-11-23"]
	waitFor(t, "the uploads", 20*time.Second, uploaded(dest, "2026-11-23", want))
	stop()
	if got := logs.String(); !strings.Contains(got, "upload worker connected") {
		t.Errorf("after the server came, the log: %s", got)
	}
}

// A worker whose consumer is gone (the JetStream store behind its address
// lost, and a new one started) binds again and uploads from the new one.
func TestWorkerBindsAgainWhenItsConsumerIsGone(t *testing.T) {
	addr, dest := freeAddr(t), t.TempDir()
	first := ledgertest.StartJetStreamOn(t, addr, testSite)
	stop := runWorker(t, addr, dest)
	want := publishManifests(t, first.JS, []string{"2026-11-23"}, 2)["2026-11-23"]
	waitFor(t, "the first server's uploads", 20*time.Second, uploaded(dest, "2026-11-23", want))
	first.Server.Shutdown()
	first.Server.WaitForShutdown()

	second := ledgertest.StartJetStreamOn(t, addr, testSite) // a fresh store: no consumer in it
	want = publishManifests(t, second.JS, []string{"2026-11-24"}, 2)["2026-11-24"]
	waitFor(t, "the second server's uploads", 30*time.Second, uploaded(dest, "2026-11-24", want))
	stop()
}

// pastABadMessage publishes a message for 2026-11-22 with publish, then a
// manifest of 2026-11-23, runs a worker until the manifest is uploaded
// and for one and a half AckWaits more (a message not acked, nak'd or
// terminated would be delivered again meanwhile), and returns its log.
func pastABadMessage(t *testing.T, publish func(js jetstream.JetStream) error) (log, dest string) {
	t.Helper()
	_, js := startNATS(t)
	dest = t.TempDir()
	if err := publish(js); err != nil {
		t.Fatal(err)
	}
	want := publishManifests(t, js, []string{"2026-11-23"}, 3)["2026-11-23"]
	cfg := testConfig(dest, nil)
	buf, stop := runLogged(t, js, cfg)
	waitFor(t, "the uploads", 20*time.Second, uploaded(dest, "2026-11-23", want))
	time.Sleep(cfg.AckWait + cfg.AckWait/2)
	stop()
	return buf.String(), dest
}

// A message on a day's subject without the day's message id is not a
// manifest (JetStream stored it for a client, docs/clients.md): it is
// terminated with a warning, once, and the manifests after it are
// uploaded.
func TestNotAManifestIsTerminated(t *testing.T) {
	out, dest := pastABadMessage(t, func(js jetstream.JetStream) error {
		_, err := js.Publish(context.Background(), "recledger.manifests."+testSite+".2026-11-22", []byte(`{"type":"io.nats.jetstream.api.v1.stream_info_response"}`))
		return err
	})
	if n := strings.Count(out, "msg=\"not a manifest"); n != 1 {
		t.Errorf("the foreign message handled %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "level=WARN msg=\"not a manifest") || strings.Contains(out, "MANIFEST REJECTED") {
		t.Errorf("the foreign message is not told apart:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dest, "2026-11-22")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("something was written for the foreign message's day: %v", err)
	}
}

// A manifest that cannot be parsed is rejected once, loudly, and
// terminated: no retry can fix it, and it is not delivered again every
// NakDelay or AckWait. The manifests after it are uploaded.
func TestUnparseableManifestIsRejectedOnce(t *testing.T) {
	out, _ := pastABadMessage(t, func(js jetstream.JetStream) error {
		_, err := js.Publish(context.Background(), "recledger.manifests."+testSite+".2026-11-22", []byte(`{"day":"2026-11-22","contacts":[{"contact_id":"../x"}]}`),
			jetstream.WithMsgID(testSite+".2026-11-22"))
		return err
	})
	if n := strings.Count(out, "MANIFEST REJECTED"); n != 1 {
		t.Errorf("the unparseable manifest rejected %d times, want once:\n%s", n, out)
	}
}

// A worker whose --site has no manifests while other sites have says so
// once bound: a misspelt site would otherwise wait forever in silence.
func TestWorkerWarnsOfAnotherSitesStream(t *testing.T) {
	js := ledgertest.StartJetStream(t, testSite, "Elsewhere").JS
	if _, err := js.Publish(context.Background(), "recledger.manifests.Elsewhere.2026-11-23", []byte(`{}`), jetstream.WithMsgID("Elsewhere.2026-11-23")); err != nil {
		t.Fatal(err)
	}
	log, stop := runLogged(t, js, testConfig(t.TempDir(), nil))
	waitFor(t, "the warning", 10*time.Second, func() bool { return strings.Contains(log.String(), "other_sites=[Elsewhere]") })
	stop()
}

// A manifest the server compressed (larger than the NATS server's
// max_payload) is uploaded as a plain one; one in an encoding this worker
// does not know is kept for a newer worker (nak'd, not terminated).
func TestCompressedManifestIsUploaded(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	body, names := testManifest(t, "2026-11-23", 20)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(body); err != nil || zw.Close() != nil {
		t.Fatal(err)
	}
	publish := func(day string, data []byte, enc string) {
		t.Helper()
		msg := &nats.Msg{Subject: "recledger.manifests." + testSite + "." + day, Data: data, Header: nats.Header{}}
		msg.Header.Set(ledger.ManifestEncodingHeader, enc)
		if _, err := js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(testSite+"."+day)); err != nil {
			t.Fatal(err)
		}
	}
	publish("2026-11-22", []byte("not brotli"), "br")
	publish("2026-11-23", z.Bytes(), ledger.ManifestGzip)
	log, stop := runLogged(t, js, testConfig(dest, nil))
	waitFor(t, "the uploads", 20*time.Second, uploaded(dest, "2026-11-23", names))
	// The manifest it cannot read is kept for a worker that can: nak'd
	// and delivered again, not terminated.
	waitFor(t, "the unknown manifest delivered again", 20*time.Second, func() bool {
		return strings.Count(log.String(), "unknown format; upgrade the upload worker") >= 2
	})
	stop()
	for _, n := range names[:3] {
		b, err := os.ReadFile(filepath.Join(dest, "2026-11-23", n))
		if err != nil || !bytes.Contains(body, b) {
			t.Errorf("%s: %q (%v), not the manifest's bytes", n, b, err)
		}
	}
	if out := log.String(); !strings.Contains(out, "unknown format; upgrade the upload worker") || !strings.Contains(out, `encoding \"br\"`) {
		t.Errorf("the unknown encoding is not told:\n%s", out)
	}
}

// One contact's file that cannot be written fails the manifest with that
// contact named (it is nak'd, not acked), while the others are written;
// one try is enough when it succeeds. A temp file older than StaleTemp,
// a worker's killed long ago, is swept all the same: it holds a
// contact's data, and the manifest may fail for long.
func TestOneUnwritableFileFailsTheManifest(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	m, names := parsedManifest(t, "2026-11-23", 5)
	// A directory where the first contact's file goes: its rename fails.
	blocked := filepath.Join(dest, m.Day, m.Files[0].Name)
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dest, m.Day, tempPrefix+m.Files[1].Name+".123")
	if err := os.WriteFile(stale, []byte(`{"contact_id":"`), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dest, nil)
	cfg.MaxTries = 1
	st, failed := New(js, cfg).writeManifest(context.Background(), m, func() {})
	if !slices.Equal(failed, []string{m.Files[0].ContactID}) || st.written != len(names)-1 {
		t.Fatalf("%+v, failed %v; want %s alone failed and the others written", st, failed, m.Files[0].ContactID)
	}
	for _, f := range m.Files[1:] {
		if _, err := os.Stat(filepath.Join(dest, m.Day, f.Name)); err != nil {
			t.Errorf("%s not written: %v", f.Name, err)
		}
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale temp file is still there: %v", err)
	}
}

// Every default docs/upload-worker.md names.
func TestConfigDefaults(t *testing.T) {
	c := Config{Site: "s1"}
	c.Defaults()
	if c.MaxTries != 5 || c.NakDelay != time.Minute || c.StaleTemp != time.Minute || c.BackoffBase != 50*time.Millisecond ||
		c.BackoffMax != 5*time.Second || c.AckWait <= 0 || c.Durable == "" || c.FetchMaxWait != 2*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}
