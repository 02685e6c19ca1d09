package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// Beside a running server, whose bbolt lock keeps every other reader out,
// `replay --data DIR` replays the server's JetStream mirror and gives the
// digest the server gives; the other offline commands name the server.
// Once it has stopped, the ledger is read again.
func TestReplayBesideRunningServer(t *testing.T) {
	ctx := context.Background()
	data, srv, base := startSimulatedServer(t, simulator.Config{Agents: 6, CallsPerAgent: 4, Seed: 3, Day: testDay})
	var live digestReply
	getJSON(t, base+"/v1/digest", &live)
	info, ok := readServing(data)
	if !ok || info.HTTP != base || info.PID != os.Getpid() || info.Site != "default" {
		t.Fatalf("serving file: %+v %v", info, ok)
	}
	// No wait for the outbox here: the replay waits for the mirror to hold
	// the server's head itself (catchUp).

	// A reading client asks JetStream for something, and names a stream
	// subject as the reply: the streams take messages on subjects of their
	// own (ledger.Embedded.Capture), so nothing is stored.
	plantAnswer(t, info.NATS, ledger.EventSubject(info.Site, ledger.TypeCommand))

	notice := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(notice)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := runCmd(t, &ReplayCommand{Stderr: f}, "--data", data, "--digest")
	if err != nil {
		t.Fatalf("replay beside the server: %v", err)
	}
	if want := fmt.Sprintf("%d %s\n", live.Seq, live.Digest); out != want {
		t.Fatalf("replay beside the server printed %q, the server's digest is %q", out, want)
	}
	if b, _ := os.ReadFile(notice); !strings.Contains(string(b), "JetStream mirror") {
		t.Fatalf("no notice that the mirror was read: %q", b)
	}
	// Asked for by name, without --nats, the mirror is the running server's.
	out, err = runCmd(t, &ReplayCommand{Stderr: f}, "--data", data, "--source", "jetstream", "--digest")
	if want := fmt.Sprintf("%d %s\n", live.Seq, live.Digest); err != nil || out != want {
		t.Fatalf("replay --source jetstream beside the server: %v %q, want %q", err, out, want)
	}

	// pauses and manifest ask the server, and print what it answers:
	// the same bytes they print from the ledger.
	for _, c := range []struct{ format, path string }{
		{"csv", "/v1/pauses?format=csv&from=2026-11-23"},
		{"json", "/v1/pauses?from=2026-11-23"},
	} {
		out, err := runCmd(t, &PausesCommand{Stderr: f}, "--data", data, "--from", "2026-11-23", "--format", c.format)
		if want := getBody(t, base+c.path); err != nil || out != want || !strings.Contains(out, "agent0000") {
			t.Fatalf("pauses --format %s beside the server: %v\n%s\nthe server answers\n%s", c.format, err, out, want)
		}
	}
	// Each filter goes to the server as the query's.
	out, err = runCmd(t, &PausesCommand{Stderr: f}, "--data", data, "--format", "json")
	var all struct{ Pauses []ledger.PauseRow }
	if err != nil || json.Unmarshal([]byte(out), &all) != nil || len(all.Pauses) < 2 {
		t.Fatalf("pauses beside the server: %v\n%s", err, out)
	}
	p := all.Pauses[len(all.Pauses)-1]
	for _, c := range []struct {
		args  []string
		query string
	}{
		{[]string{"--call", p.CallID}, "call_id=" + p.CallID},
		{[]string{"--contact", p.ContactID}, "contact_id=" + p.ContactID},
		{[]string{"--user", p.UserID, "--to", "2026-11-23T08:00:00Z"}, "user_id=" + p.UserID + "&to=2026-11-23T08:00:00Z"},
		{[]string{"--from", p.Start.UTC().Format(time.RFC3339Nano)}, "from=" + p.Start.UTC().Format(time.RFC3339Nano)},
	} {
		out, err := runCmd(t, &PausesCommand{Stderr: f}, append([]string{"--data", data, "--format", "json"}, c.args...)...)
		if want := getBody(t, base+"/v1/pauses?"+c.query); err != nil || out != want || len(out) >= len(getBody(t, base+"/v1/pauses")) {
			t.Fatalf("pauses %q beside the server: %v\n%s\nthe server answers\n%s", c.args, err, out, want)
		}
	}
	if out, err := runCmd(t, &PausesCommand{Stderr: f}, "--data", data); err != nil || !strings.HasPrefix(out, "contact_id  ") {
		t.Fatalf("pauses table beside the server: %v\n%s", err, out)
	}
	if _, err := runCmd(t, &ManifestCommand{Stderr: f}, "--data", data, "2026-11-23"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("manifest of a day not sealed, beside the server: %v", err)
	}
	if resp, err := http.Post(base+"/v1/manifests/2026-11-23/close", "", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("close day: %v %v", resp, err)
	}
	if out, err := runCmd(t, &ManifestCommand{Stderr: f}, "--data", data, "2026-11-23"); err != nil ||
		strings.TrimSuffix(out, "\n") != strings.TrimSuffix(getBody(t, base+"/v1/manifests/2026-11-23"), "\n") {
		t.Fatalf("manifest beside the server: %v\n%s", err, out)
	}
	getJSON(t, base+"/v1/digest", &live) // the seal is an event

	// Asked for bbolt by name, or for what only the ledger file holds:
	// refused, naming the server.
	for _, c := range []struct {
		cmd interface {
			Run(context.Context, []string) error
		}
		args []string
	}{
		{&ReplayCommand{}, []string{"--data", data, "--source", "bbolt"}},
	} {
		_, err := runCmd(t, c.cmd, c.args...)
		if !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), base) {
			t.Fatalf("%T %v beside the server: %v", c.cmd, c.args, err)
		}
	}

	// verify asks the server to check its chain, and compares the mirror.
	var ver ledger.VerifyReport
	getJSON(t, base+"/v1/verify", &ver)
	out, err = runCmd(t, &VerifyCommand{Stderr: f}, "--data", data)
	if want := fmt.Sprintf("jetstream  ok: %d events, head %s", ver.Events, ver.Head); err != nil ||
		!strings.Contains(out, want) || !strings.Contains(out, "chain      ok") ||
		strings.Contains(out, "note:") {
		t.Fatalf("verify beside the server: %v\n%s\nwant %q", err, out, want)
	}

	// Another site's --site is refused: the server checks its own (a
	// walk's verify printed the served site's ok for it). Its own is fine.
	if _, err := runCmd(t, &VerifyCommand{Stderr: f}, "--data", data, "--site", "elsewhere"); !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), "served as site") {
		t.Fatalf("verify --site of another site beside the server: %v", err)
	}
	if _, err := runCmd(t, &VerifyCommand{Stderr: f}, "--data", data, "--site", "default"); err != nil {
		t.Fatalf("verify --site of the server's own site: %v", err)
	}

	// A --nats given beside the server is the one used (serving.json
	// holds the URL without credentials): here one where nothing listens.
	begin := time.Now()
	if _, err := runCmd(t, &VerifyCommand{Stderr: f}, "--data", data, "--nats", "nats://u:pw@127.0.0.1:1"); err == nil ||
		!strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "pw") {
		t.Fatalf("verify beside the server with --nats: %v", err)
	}
	t.Logf("verify with an unreachable --nats failed after %v", time.Since(begin))

	// A second server on the same data dir names the first.
	if second, err := StartServer(ctx, testServeConfig(data)); err == nil {
		second.Stop()
		_ = second.Wait()
		t.Fatal("a second server started on a data dir in use")
	} else if !strings.Contains(err.Error(), base) {
		t.Fatalf("second server: %v", err)
	}

	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, ServingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("serving file after stop: %v", err)
	}
	if out, err := runCmd(t, &ReplayCommand{}, "--data", data, "--digest"); err != nil || out != fmt.Sprintf("%d %s\n", live.Seq, live.Digest) {
		t.Fatalf("replay after stop: %q %v", out, err)
	}
}

// A serving file left by a server that was killed is not believed, and
// credentials never reach it.
func TestServingFile(t *testing.T) {
	dir := t.TempDir()
	if err := writeServing(dir, servingInfo{PID: os.Getpid(), NATS: "nats://u:secret@a:4222,nats://b:4222", Site: "s"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ServingFile))
	if strings.Contains(string(b), "secret") {
		t.Fatalf("credentials written: %s", b)
	}
	if info, ok := readServing(dir); !ok || info.NATS != "nats://a:4222,nats://b:4222" {
		t.Fatalf("read %+v %v", info, ok)
	}
	// A pid no process has: the kernel's pid_max is below 1<<22.
	if err := writeServing(dir, servingInfo{PID: 1 << 22, Site: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := readServing(dir); ok {
		t.Fatal("a dead server's file was believed")
	}
	// No pid, or pid 0 (kill(0, 0) asks about this process group, which
	// is always there): no server.
	for _, doc := range []string{`{"pid":0,"http":"http://127.0.0.1:1"}`, `{}`} {
		if err := os.WriteFile(filepath.Join(dir, ServingFile), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok := readServing(dir); ok {
			t.Fatalf("%s was believed a live server", doc)
		}
	}
	removeServing(dir) // not ours: kept
	if _, err := os.Stat(filepath.Join(dir, ServingFile)); err != nil {
		t.Fatalf("another process's file removed: %v", err)
	}
}

// getBody is the body of a 200 answer to GET url.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", url, resp.StatusCode, b, err)
	}
	return string(b)
}

// Beside a running server, a mirror named by RECLEDGER_NATS that is
// another node's (longer or shorter than the server's ledger) is not
// replayed as the server's: its last hash is checked against the
// server's event at that seq.
func TestReplayBesideServerRefusesAnotherMirror(t *testing.T) {
	small, _, _ := startSimulatedServer(t, simulator.Config{Agents: 2, CallsPerAgent: 2, Seed: 5})
	big, _, _ := startSimulatedServer(t, simulator.Config{Agents: 4, CallsPerAgent: 3, Seed: 6})
	for _, c := range []struct{ data, other string }{{small, big}, {big, small}} {
		info, ok := readServing(c.other)
		if !ok {
			t.Fatal("no serving file")
		}
		// Named by --nats, with --source too (a walk's was replayed with
		// no word), or by RECLEDGER_NATS. A shorter mirror is waited for
		// as if it lagged: not long here.
		t.Setenv("RECLEDGER_NATS", "")
		for _, args := range [][]string{{"--nats", info.NATS}, {"--source", "jetstream", "--nats", info.NATS}, nil} {
			if args == nil {
				t.Setenv("RECLEDGER_NATS", info.NATS)
			}
			_, err := runCmd(t, &ReplayCommand{Stderr: devNull(t), MirrorWait: 200 * time.Millisecond}, append([]string{"--data", c.data, "--digest"}, args...)...)
			if !errors.Is(err, ledger.ErrMismatch) || !strings.Contains(err.Error(), "the server on "+c.data) {
				t.Errorf("replay %v of %s with the other server's mirror: %v", args, c.data, err)
			}
		}
	}
}

// Beside a running server whose ledger holds no event yet, the empty
// mirror of the site it serves is right: replay, whether --source is given
// or not, gives the empty state's digest, as the server.
func TestReplayBesideAServerWithNoEvents(t *testing.T) {
	t.Setenv("RECLEDGER_SITE", "")
	data := t.TempDir()
	cfg := testServeConfig(data)
	cfg.Site = "east"
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(); _ = srv.Wait() })
	var live digestReply
	getJSON(t, "http://"+srv.Addr()+"/v1/digest", &live)
	for _, args := range [][]string{nil, {"--source", "jetstream"}} {
		out, err := runCmd(t, &ReplayCommand{Stderr: devNull(t), MirrorWait: 200 * time.Millisecond}, append([]string{"--data", data, "--digest"}, args...)...)
		if want := fmt.Sprintf("0 %s\n", live.Digest); live.Seq != 0 || err != nil || out != want {
			t.Errorf("replay %v beside a server of site east with no events: %v %q, the server's digest %+v", args, err, out, live)
		}
	}
}

// Beside a running server, the mirror read is checked against the server's
// event at the mirror's last seq. A server that cannot answer leaves the
// replay done, saying it was not checked; a server whose event differs
// refuses it, naming the mirror without the credentials in its URL.
func TestReplayBesideServerChecksTheMirrorsLastEvent(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	store, err := openLedgerReadOnly(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.Get(t.Context(), d.seq)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	var hash atomic.Value // the server's hash at the last seq; "" fails
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			fmt.Fprintf(w, `{"ready":true,"head_seq":%d}`, d.seq)
		case "/v1/events":
			h, _ := hash.Load().(string)
			if h == "" {
				http.Error(w, `{"message":"not now"}`, http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, `{"events":[{"seq":%d,"hash":%q}]}`, d.seq, h)
		default:
			http.NotFound(w, r)
		}
	}))
	defer hs.Close()
	data := t.TempDir()
	if err := writeServing(data, servingInfo{PID: os.Getpid(), HTTP: hs.URL, NATS: d.natsURL, Site: replaytest.Site}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d %s\n", d.seq, d.digest)
	for _, h := range []string{last.Hash, ""} {
		hash.Store(h)
		out, notes, err := replayNotes(t, "--data", data, "--source", "jetstream", "--digest")
		if err != nil || out != want || (h == "") != strings.Contains(notes, "could not check the mirror against the server's ledger") {
			t.Errorf("replay beside a server answering hash %q: %v %q, said:\n%s", h, err, out, notes)
		}
	}
	// A server that does not answer at all: an empty mirror of the site
	// asked for is not taken for an empty ledger.
	silent := t.TempDir()
	if err := writeServing(silent, servingInfo{PID: os.Getpid(), HTTP: "http://127.0.0.1:1", NATS: d.natsURL}); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, &ReplayCommand{Stderr: devNull(t)}, "--data", silent, "--source", "jetstream", "--site", "elsewhere", "--digest"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("replay of an empty mirror beside a server that does not answer: %v %q", err, out)
	}
	hash.Store(strings.Repeat("0", len(last.Hash)))
	withPassword := strings.Replace(d.natsURL, "nats://", "nats://reader:s3cret@", 1)
	_, err = runCmd(t, &ReplayCommand{Stderr: devNull(t)}, "--data", data, "--source", "jetstream", "--nats", withPassword, "--digest")
	if !errors.Is(err, ledger.ErrMismatch) || !strings.Contains(err.Error(), "the server on "+data) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("replay beside a server whose event differs: %v", err)
	}
}

// Beside a running server, a --site whose mirror holds nothing is an
// error, not the empty state's digest with status 0 (a walk's).
func TestReplayBesideServerUnderAnotherSite(t *testing.T) {
	data, _, _ := startSimulatedServer(t, simulator.Config{Agents: 2, CallsPerAgent: 2, Seed: 5})
	notes, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	// Refused at once: not after waiting for the mirror to catch up with
	// a server of another site (a walk's waited 10 s).
	_, err = runCmd(t, &ReplayCommand{Stderr: notes, MirrorWait: 2 * time.Second}, "--data", data, "--digest", "--site", "other")
	if !errors.Is(err, ledger.ErrNotFound) || !strings.Contains(err.Error(), "serves site default") {
		t.Errorf("replay beside the server under another site: %v", err)
	}
	if b, _ := os.ReadFile(notes.Name()); strings.Contains(string(b), "going on with what the mirror has") {
		t.Errorf("it waited for the mirror first: %s", b)
	}
}

// devNull is a file that takes a command's stderr and is closed when the
// test ends.
func devNull(t *testing.T) *os.File {
	f, err := os.Create(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// startWithTokens starts a server on data with the tokens file holding
// tokens, stopped when the test ends.
func startWithTokens(t *testing.T, data, tokens string) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testServeConfig(data)
	cfg.TokensFile = path
	srv, err := StartServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2eStop(t, srv) })
	return srv
}

// A server with --tokens is asked with the token given to the command,
// over HTTP and over its embedded NATS.
func TestCommandsBesideServerWithTokens(t *testing.T) {
	data := t.TempDir()
	const auditor = "auditor-token-0123456789"
	srv := startWithTokens(t, data, `{"tokens":[{"name":"audit","token":"`+auditor+`","roles":["auditor"]},`+
		`{"name":"desk","token":"command-token-0123456789","roles":["command"]}],`+
		`"networks":[{"name":"local","cidr":"127.0.0.0/8","roles":["command"]}]}`)
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	if _, err := runCmd(t, &PausesCommand{Stderr: stderr}, "--data", data, "--format", "csv"); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("without a token: %v", err)
	}
	out, err := runCmd(t, &PausesCommand{Stderr: stderr}, "--data", data, "--format", "csv", "--token", auditor)
	if err != nil || !strings.HasPrefix(out, "contact_id,") {
		t.Fatalf("with the auditor's token: %v %q", err, out)
	}

	// The embedded NATS server lets in what the tokens file lets in: the
	// mirror is read with the auditor's token, and not without one.
	if _, err := runCmd(t, &ReplayCommand{Stderr: stderr}, "--data", data, "--digest"); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("replay of the mirror without a token: %v", err)
	}
	if _, err := runCmd(t, &ReplayCommand{Stderr: stderr}, "--data", data, "--digest", "--token", "command-token-0123456789"); !errors.Is(err, ledger.ErrRefused) {
		t.Fatalf("replay of the mirror with the command role's token: %v", err)
	}
	// The first request its token may not make closes the connection, so
	// that the command fails at once rather than at its timeout.
	info, _ := readServing(data)
	nc, js, err := ledger.Connect(t.Context(), info.NATS, "test", nil, natsToken("command-token-0123456789")...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sctx, scancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer scancel()
	if _, err := js.Stream(sctx, ledger.EventsStream); err == nil {
		t.Fatal("the command role read the stream")
	}
	for deadline := time.Now().Add(30 * time.Second); !nc.IsClosed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a connection refused a request is still open")
		}
	}
	var live digestReply
	getJSONWith(t, "http://"+srv.Addr()+"/v1/digest", auditor, &live)
	out, err = runCmd(t, &ReplayCommand{Stderr: stderr}, "--data", data, "--digest", "--token", auditor)
	if want := fmt.Sprintf("%d %s\n", live.Seq, live.Digest); err != nil || out != want {
		t.Fatalf("replay of the mirror with the auditor's token: %v %q, want %q", err, out, want)
	}
	if out, err := runCmd(t, &VerifyCommand{Stderr: stderr}, "--data", data, "--token", auditor); err != nil {
		t.Fatalf("verify beside the server with the auditor's token: %v %s", err, out)
	}
}

// catchUp waits for a mirror behind the server's head, and goes on with
// what the mirror has when it stays behind.
func TestCatchUpWaitsForTheMirror(t *testing.T) {
	ctx := context.Background()
	d := writeOfflineDay(t, true, 0)
	nc, js, err := ledger.Connect(ctx, d.natsURL, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	src := replay.JetStreamSource{JS: js, Site: replaytest.Site}
	// A server whose /readyz gives head as its ledger's head.
	server := func(head uint64) servingInfo {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(http.StatusServiceUnavailable) // ready or not, it says its head
			fmt.Fprintf(w, `{"ready":false,"head_seq":%d}`, head)
		}))
		t.Cleanup(hs.Close)
		return servingInfo{PID: os.Getpid(), HTTP: hs.URL}
	}
	var notes strings.Builder
	// The mirror was read behind the server (seq-3) and has caught up since.
	if got := catchUp(ctx, server(d.seq), src, d.seq-3, time.Minute, &notes); got != d.seq || notes.Len() > 0 {
		t.Fatalf("caught up: head %d (want %d), notes %q", got, d.seq, notes.String())
	}
	// The mirror stays behind: after the wait, what it has, said.
	if got := catchUp(ctx, server(d.seq+5), src, d.seq, 100*time.Millisecond, &notes); got != d.seq ||
		!strings.Contains(notes.String(), fmt.Sprintf("the mirror holds seq %d, the server %d", d.seq, d.seq+5)) {
		t.Fatalf("behind: head %d, notes %q", got, notes.String())
	}
	// A server that does not say: no wait.
	if got := catchUp(ctx, servingInfo{HTTP: "http://127.0.0.1:1"}, src, 1, time.Minute, &notes); got != 1 {
		t.Fatalf("no server: head %d", got)
	}
	// One whose /readyz has no head (an older build): no wait either.
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ready":true}`) }))
	defer silent.Close()
	if got := catchUp(ctx, servingInfo{PID: os.Getpid(), HTTP: silent.URL}, src, 1, time.Minute, &notes); got != 1 {
		t.Fatalf("a server that gives no head: head %d", got)
	}
}

// verify beside a server names a mirror that is behind the server's head
// or does not end in the server's hash.
func TestVerifyBesideServerComparesTheMirror(t *testing.T) {
	ctx := context.Background()
	d := writeOfflineDay(t, true, 0)
	store, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	truth, err := store.Verify(ctx)
	var beforeLast string // the hash of the event before the last
	if err == nil {
		err = store.Scan(ctx, truth.Events-2, func(e ledger.Envelope) error { beforeLast = e.Hash; return errors.ErrUnsupported })
		if errors.Is(err, errors.ErrUnsupported) {
			err = nil
		}
	}
	store.Close()
	if err != nil || !truth.OK || beforeLast == "" {
		t.Fatalf("the day's own chain: %+v %v", truth, err)
	}
	// A server whose /v1/verify and /readyz say rep, and whose event at
	// the mirror's last seq has the hash atLast.
	server := func(rep ledger.VerifyReport, atLast string) servingInfo {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/v1/verify":
				json.NewEncoder(w).Encode(rep)
			case "/readyz":
				fmt.Fprintf(w, `{"ready":true,"head_seq":%d}`, rep.Events)
			case "/v1/events":
				if r.URL.Query().Get("after_seq") != strconv.FormatUint(truth.Events-1, 10) {
					http.Error(w, "not the mirror's last event", http.StatusBadRequest)
					return
				}
				fmt.Fprintf(w, `{"events":[{"seq":%d,"hash":%q}],"next_after_seq":%d}`, truth.Events, atLast, truth.Events)
			default:
				http.NotFound(w, r)
			}
		}))
		t.Cleanup(hs.Close)
		return servingInfo{PID: os.Getpid(), HTTP: hs.URL, NATS: d.natsURL, Site: replaytest.Site}
	}
	var notes strings.Builder
	other := strings.Repeat("0", 64)
	for _, c := range []struct {
		name   string
		server ledger.VerifyReport
		atLast string
		ok     bool
		behind bool
		bad    uint64
		words  string
	}{
		{"the same", truth, truth.Head, true, false, 0, ""},
		// A busy server: the mirror has gone past the head its verify saw.
		{"the mirror ahead", ledger.VerifyReport{OK: true, Events: truth.Events - 1, Head: beforeLast}, truth.Head, true, false, 0, ""},
		{"another hash", ledger.VerifyReport{OK: true, Events: truth.Events, Head: other}, truth.Head, false, false, truth.Events, "differ at or before"},
		// Behind: a prefix of the server's ledger, or not.
		{"behind", ledger.VerifyReport{OK: true, Events: truth.Events + 2, Head: other}, truth.Head, false, true, truth.Events + 1, "the stream ends at seq"},
		{"behind and another", ledger.VerifyReport{OK: true, Events: truth.Events + 2, Head: other}, other, false, false, truth.Events, "differ at or before"},
	} {
		res, err := verifyBesideServer(ctx, server(c.server, c.atLast), "", 100*time.Millisecond, &notes)
		if err != nil || res.JetStream == nil {
			t.Fatalf("%s: %v %+v", c.name, err, res)
		}
		if j := res.JetStream; j.OK != c.ok || res.OK != c.ok || j.Behind != c.behind || j.FirstBad != c.bad || !strings.Contains(j.Problem, c.words) {
			t.Errorf("%s: %+v", c.name, *j)
		}
	}

	// A server whose chain breaks: no mirror is compared with it.
	if res, err := verifyBesideServer(ctx, server(ledger.VerifyReport{FirstBad: 7, Events: 6, Problem: "prev"}, truth.Head), "", 100*time.Millisecond, &notes); err != nil || res.OK || res.JetStream != nil {
		t.Errorf("a server whose chain breaks: %v %+v", err, res)
	}
	// A site the mirror holds no event of: behind from the first seq.
	elsewhere := server(truth, truth.Head)
	elsewhere.Site = "elsewhere"
	if res, err := verifyBesideServer(ctx, elsewhere, "", 100*time.Millisecond, &notes); err != nil || res.JetStream == nil || !res.JetStream.Behind || res.JetStream.FirstBad != 1 {
		t.Errorf("a mirror without the site's events: %v %+v", err, res.JetStream)
	}
	// A message that is not an event, read on the way: counted.
	plantAnswer(t, d.natsURL, ledger.EventSubject(replaytest.Site, ledger.TypeCommand))
	behind := ledger.VerifyReport{OK: true, Events: truth.Events + 2, Head: other}
	if res, err := verifyBesideServer(ctx, server(behind, truth.Head), "", 100*time.Millisecond, &notes); err != nil || res.JetStream == nil || res.JetStream.Foreign != 1 {
		t.Errorf("a mirror holding a message that is not an event: %v %+v", err, res.JetStream)
	}
	// A mirror that lost event 5: its chain breaks there.
	nc, js, err := ledger.Connect(ctx, d.natsURL, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if s, err := js.Stream(ctx, ledger.EventsStream); err != nil || s.DeleteMsg(ctx, 5) != nil {
		t.Fatalf("deleting event 5 from the mirror: %v", err)
	}
	if res, err := verifyBesideServer(ctx, server(truth, truth.Head), "", 100*time.Millisecond, &notes); err != nil || res.JetStream == nil || res.JetStream.FirstBad != 5 || res.OK {
		t.Errorf("a mirror that lost event 5: %v %+v", err, res.JetStream)
	}
}

// plantAnswer asks the JetStream of the server at natsURL, as a client
// allowed to read, for a message that is not there, with subject as the
// reply subject: a stream taking that subject would store the answer.
func plantAnswer(t *testing.T, natsURL, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, _, err := ledger.Connect(ctx, natsURL, "test-reader", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+ledger.EventsStream, subject, []byte(`{"seq":999999}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the answer is sent by then
}

// A serving file that cannot be written at the start (a full disk, here
// a directory in the way) is written once it can, so that offline
// commands find the server.
func TestServingFileWrittenOnceItCan(t *testing.T) {
	data := t.TempDir()
	blocker := filepath.Join(data, ServingFile+".tmp", "x")
	if err := os.MkdirAll(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startTestServer(t, data)
	if _, ok := readServing(data); ok {
		t.Fatal("a serving file was written through a directory in the way")
	}
	if err := os.RemoveAll(filepath.Dir(blocker)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * servingRetry)
	for {
		if info, ok := readServing(data); ok && info.HTTP == "http://"+srv.Addr() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the serving file was not written once it could be")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restore into a served data dir names the server holding it (a walk's
// read "a running server?", while serving.json named it).
func TestRestoreIntoAServedDirNamesTheServer(t *testing.T) {
	data, _, _ := startSimulatedServer(t, simulator.Config{Agents: 2, CallsPerAgent: 1, Seed: 5})
	_, err := runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", data)
	if err == nil || !strings.Contains(err.Error(), "is held by the server running on it (pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("restore into a served dir: %v", err)
	}
}

// What the embedded NATS server logs of what a client sent (a refused
// subject, a user name) is masked and redacted as answers are: a
// security walk found a card number and a token in those lines.
func TestNATSLogLinesHideCardsAndTokens(t *testing.T) {
	const desk = "command-token-0123456789"
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, []byte(`{"tokens":[{"name":"desk","token":"`+desk+`","roles":["command"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &ledgertest.Buffer{}
	cfg := testServeConfig(t.TempDir())
	cfg.TokensFile = path
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e2eStop(t, srv)
	nc, err := nats.Connect(srv.NATSURL(), nats.Token(desk))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("pan.4111111111111111."+strings.ToUpper(desk), []byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	for end := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "Publish Violation"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no violation logged:\n%s", logs.String())
		}
	}
	if got := strings.ToLower(logs.String()); strings.Contains(got, "4111111111111111") || strings.Contains(got, desk) {
		t.Fatalf("a card number or a token in the log:\n%s", logs.String())
	}
}
