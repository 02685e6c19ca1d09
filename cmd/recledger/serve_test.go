package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// startTestServer runs the real server: bbolt in a temp dir, the embedded
// JetStream on a free port, HTTP on a free port.
func startTestServer(t *testing.T, data string) *Server {
	t.Helper()
	start := time.Now()
	srv, err := StartServer(context.Background(), testServeConfig(data))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("serving after %v", time.Since(start))
	t.Cleanup(func() { srv.Stop(); _ = srv.Wait() })
	return srv
}

// testServeConfig serves data on free ports, quietly.
func testServeConfig(data string) ServeConfig {
	cfg := DefaultServeConfig()
	cfg.Data = data
	cfg.HTTP = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:-1"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	// The simulated day is 2026-11-23: the scheduler's clock stays in its
	// evening, before that day's upload time, so a restart seals nothing
	// whatever day the test runs.
	cfg.Now = func() time.Time { return testNow }
	return cfg
}

// startSimulatedServer starts a test server on a fresh data dir and plays
// a simulated day through it; the server's counts must match.
func startSimulatedServer(t *testing.T, sim simulator.Config) (data string, srv *Server, base string) {
	t.Helper()
	data = t.TempDir()
	srv = startTestServer(t, data)
	base = "http://" + srv.Addr()
	sim.URL = base
	rep, err := simulator.Run(context.Background(), sim)
	if err != nil {
		t.Fatalf("simulate: %v", err)
	}
	if !rep.Check.Match {
		t.Fatalf("simulator totals do not match the server: %+v", rep.Check)
	}
	return data, srv, base
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	getJSONWith(t, url, "", v)
}

// getJSONWith is getJSON presenting a bearer token (none when empty).
func getJSONWith(t *testing.T, url, token string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// testNow is the test servers' scheduler clock.
var testNow = time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)

// testDay is the day of testNow, for a simulated day whose calls are
// sealed by hand: a close refuses a day before every contact waiting
// (before_contacts), and the server dates undated signals by the wall
// clock, not by testNow.
var testDay = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

type digestReply struct {
	Seq    uint64 `json:"seq"`
	Digest string `json:"digest"`
}

// TestServeRealisticDay plays a simulated day through the real server,
// stops it, and checks that nothing acknowledged was lost and that every
// way of rebuilding the state agrees with what the server showed: replay
// from bbolt, a restart from the checkpoint, replay from JetStream, and a
// data dir restored from the stream alone.
func TestServeRealisticDay(t *testing.T) {
	ctx := context.Background()
	data, srv, base := startSimulatedServer(t, simulator.Config{Agents: 6, CallsPerAgent: 4, Seed: 7, Day: testDay})
	if resp, err := http.Post(base+"/v1/manifests/2026-11-23/close", "", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("close day: %v %v", resp, err)
	}
	var live digestReply
	getJSON(t, base+"/v1/digest", &live)
	var ver ledger.VerifyReport
	getJSON(t, base+"/v1/verify", &ver)
	if !ver.OK || ver.Events != live.Seq {
		t.Fatalf("verify %+v, digest at seq %d", ver, live.Seq)
	}

	// Stop like SIGTERM does; every acknowledged event must be in bbolt.
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	store, err := ledger.Open(filepath.Join(data, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if head, _ := store.Head(); head != live.Seq {
		t.Fatalf("after stop the ledger holds %d events, the server acknowledged %d", head, live.Seq)
	}
	st, _, err := replay.Run(ctx, store, replay.Options{})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Digest(); d != live.Digest {
		t.Fatalf("replay from bbolt: digest %s, live %s", d, live.Digest)
	}

	// Restart: the checkpoint plus the tail give the same state.
	srv2 := startTestServer(t, data)
	var again digestReply
	getJSON(t, "http://"+srv2.Addr()+"/v1/digest", &again)
	if again != live {
		t.Fatalf("after restart %+v, before %+v", again, live)
	}

	// JetStream holds the same ledger; replay from it and restore from it.
	_, js, err := ledger.Connect(ctx, srv2.NATSURL(), "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	src := replay.JetStreamSource{JS: js, Site: "default"}
	waitStreamHead(t, src, live.Seq)
	st, _, err = replay.Run(ctx, src, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Digest(); d != live.Digest {
		t.Fatalf("replay from JetStream: digest %s, live %s", d, live.Digest)
	}
	restored, err := ledger.Open(filepath.Join(t.TempDir(), LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if _, err := replay.Restore(ctx, src, restored, 0, nil); err != nil {
		t.Fatal(err)
	}
	if rv, err := restored.Verify(ctx); err != nil || !rv.OK || rv.Head != ver.Head {
		t.Fatalf("restored verify %+v %v, want head %s", rv, err, ver.Head)
	}
	st, _, err = replay.Run(ctx, restored, replay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := st.Digest(); d != live.Digest {
		t.Fatalf("restore then replay: digest %s, live %s", d, live.Digest)
	}
}

// waitStreamHead waits until the outbox has mirrored seq events.
func waitStreamHead(t *testing.T, src replay.JetStreamSource, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := src.Head(context.Background())
		if err == nil && h >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream head %d (err %v), want %d", h, err, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A data dir is one site's: served under another name it is refused,
// since its mirror would start again under other subjects.
func TestServeRefusesAnotherSite(t *testing.T) {
	data := t.TempDir()
	cfg := testServeConfig(data)
	cfg.Site = "alpha"
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	cfg.Site = "beta"
	srv, err = StartServer(t.Context(), cfg)
	if err == nil {
		srv.Stop()
		_ = srv.Wait()
		t.Fatal("served alpha's ledger as site beta")
	}
	if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), `"alpha"`) {
		t.Errorf("err = %v, want a conflict naming alpha", err)
	}
	cfg.Site = "alpha"
	srv, err = StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatalf("served again as alpha: %v", err)
	}
	srv.Stop()
	_ = srv.Wait()
}

// A server stopped under load finishes its requests before its last
// checkpoint and mirror: the checkpoint is at the head, every answered
// command in it, and the stream holds the head too.
func TestStopUnderLoadCheckpointsTheHead(t *testing.T) {
	data := t.TempDir()
	cfg := testServeConfig(data)
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lastSeen uint64
	)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				body := fmt.Sprintf(`{"call_id":"c-%d-%d","extension":"%d","type":"ringing"}`, i, n, 1000+i)
				resp, err := http.Post(base+"/v1/calls/events", "application/json", strings.NewReader(body))
				if err != nil {
					return // stopped
				}
				var r struct {
					LastSeq uint64 `json:"last_seq"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return
				}
				mu.Lock()
				lastSeen = max(lastSeen, r.LastSeq)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	store, err := ledger.Open(filepath.Join(data, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	head, _ := store.Head()
	cp, _, err := store.LoadCheckpoint(t.Context(), projections.Version)
	if err != nil {
		t.Fatal(err)
	}
	if head < lastSeen || cp != head {
		t.Errorf("head %d, last answered seq %d, checkpoint at %d: want the checkpoint at the head", head, lastSeen, cp)
	}
}

// A data dir whose ledger file was lost, while its mirror was kept: serve
// refuses to start a second history under the site's subjects and says
// how to restore; restore reads the data dir's own mirror; then serve
// starts with the old state.
func TestServeRefusesALostLedger(t *testing.T) {
	data, live := stoppedSimulatedDir(t)
	if err := os.Remove(filepath.Join(data, LedgerFile)); err != nil {
		t.Fatal(err)
	}
	// Served under another name by mistake: refused, and nothing claimed.
	other := testServeConfig(data)
	other.Site = "elsewhere"
	_, err := StartServer(t.Context(), other)
	if !errors.Is(err, ledger.ErrMismatch) || !strings.Contains(err.Error(), "served as site default") {
		t.Fatalf("serve over a lost ledger as another site: %v", err)
	}
	_, err = StartServer(t.Context(), testServeConfig(data))
	if !errors.Is(err, ledger.ErrMismatch) || !strings.Contains(err.Error(), "recledger restore --from-jetstream --data "+data) {
		t.Fatalf("serve over a lost ledger: %v", err)
	}
	restoreAndServe(t, data, live)
}

// stoppedSimulatedDir is the data dir of a server that played a small
// simulated day and stopped, and the digest it served.
func stoppedSimulatedDir(t *testing.T) (data string, live digestReply) {
	t.Helper()
	data, srv, base := startSimulatedServer(t, simulator.Config{Agents: 3, CallsPerAgent: 2, Seed: 5})
	getJSON(t, base+"/v1/digest", &live)
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	return data, live
}

// restoreAndServe restores data's ledger from its own mirror, checks that
// restore printed live's digest (and each of want), then serves data and
// checks that the server's digest is live's.
func restoreAndServe(t *testing.T, data string, live digestReply, want ...string) {
	t.Helper()
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	out, err := runCmd(t, &RestoreCommand{Stderr: stderr}, "--from-jetstream", "--data", data)
	want = append(want, fmt.Sprintf("digest   %d %s", live.Seq, live.Digest))
	for _, w := range want {
		if err != nil || !strings.Contains(out, w) {
			t.Fatalf("restore from the data dir's mirror: %v\n%s\nwant %q", err, out, w)
		}
	}
	if again := servedDigest(t, data); again != live {
		t.Fatalf("served after the restore: %+v, before %+v", again, live)
	}
}

// servedDigest starts a test server on data and returns its /v1/digest.
func servedDigest(t *testing.T, data string) digestReply {
	t.Helper()
	srv := startTestServer(t, data)
	var d digestReply
	getJSON(t, "http://"+srv.Addr()+"/v1/digest", &d)
	return d
}

// TestCallSignalsHaveTheirOwnConnection: call signals arrive on a NATS
// connection of their own, so that NATS closing it (a slow consumer,
// under a client's huge signals) leaves the mirror's connection be; it
// reconnects and takes signals again.
func TestCallSignalsHaveTheirOwnConnection(t *testing.T) {
	srv := startTestServer(t, t.TempDir())
	subject := ledger.CTISubject(testServeConfig("").Site)
	takes := map[string]bool{} // connection name → holds the signals' subscription
	cids := func() map[string]uint64 {
		z, err := srv.nsrv.Connz(&server.ConnzOptions{Limit: 1000, Subscriptions: true})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint64{}
		for _, ci := range z.Conns {
			out[ci.Name] = ci.Cid
			takes[ci.Name] = slices.Contains(ci.Subs, subject)
		}
		return out
	}
	before := cids()
	for end := time.Now().Add(30 * time.Second); !takes["recledger-cti"] && time.Now().Before(end); before = cids() {
		time.Sleep(20 * time.Millisecond) // RunCTI subscribes as it starts
	}
	if before["recledger-serve"] == 0 || before["recledger-cti"] == 0 || !takes["recledger-cti"] || takes["recledger-serve"] {
		t.Fatalf("connections %v, taking call signals %v", before, takes)
	}
	if err := srv.nsrv.DisconnectClientByID(before["recledger-cti"]); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := nc.Request(subject, []byte(`{"call_id":"c-1","extension":"3420","type":"ended"}`), time.Second)
		if err == nil && strings.Contains(string(m.Data), "accepted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call signal answered after the connection was closed: %v %v", err, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after := cids(); after["recledger-serve"] != before["recledger-serve"] {
		t.Errorf("the mirror's connection went too: %v → %v", before, after)
	}
}

// TestServeRestartsAStuckJetStream: when the embedded server's JetStream
// stops taking events (as NATS does to a store whose write failed on a
// full disk) while the data dir has room, serve restarts it, and the
// mirror catches up without a restart of serve.
func TestServeRestartsAStuckJetStream(t *testing.T) {
	data := t.TempDir()
	cfg := testServeConfig(data)
	cfg.MendAfter = time.Second
	srv, err := StartServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(); _ = srv.Wait() })
	base := "http://" + srv.Addr()
	signal := func(i int) {
		t.Helper()
		postRinging(t, base, i)
	}
	type ready struct {
		Lag  uint64 `json:"outbox_lag"`
		Head uint64 `json:"head_seq"`
	}
	waitLag := func(what string, ok func(ready) bool) {
		t.Helper()
		var r ready
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if getJSON(t, base+"/readyz", &r); ok(r) {
				return
			}
		}
		t.Fatalf("%s: %+v", what, r)
	}
	signal(1)
	waitLag("mirrored", func(r ready) bool { return r.Head > 0 && r.Lag == 0 })

	if err := srv.nsrv.GlobalAccount().DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 20; i++ {
		signal(i)
	}
	waitLag("behind", func(r ready) bool { return r.Lag > 0 })
	waitLag("mirrored after JetStream was restarted", func(r ready) bool { return r.Head >= 20 && r.Lag == 0 })
}

// An environment variable of serve's that does not parse stops it before
// anything starts, naming the variable, unless the flag is given.
func TestServeRefusesAnEnvValueThatDoesNotParse(t *testing.T) {
	for env, want := range map[string]string{"RECLEDGER_REBUILD": "not true or false", "RECLEDGER_REPLICAS": "not an integer",
		"RECLEDGER_CHECKPOINT_EVENTS": "not an integer", "RECLEDGER_CHECKPOINT_EVERY": "not a duration"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "maybe")
			err := (&ServeCommand{Stderr: devNull(t)}).Run(t.Context(), []string{"--data", t.TempDir()})
			if !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), env+`="maybe"`) || !strings.Contains(err.Error(), want) {
				t.Errorf("serve with %s=maybe: %v", env, err)
			}
		})
	}
}

// An environment variable set to the empty string counts as not set, for
// serve as for the offline commands (an empty RECLEDGER_HTTP made serve
// listen on every interface at a random port, an empty RECLEDGER_SITE
// refused the start while replay took "default"); an empty flag given on
// the command line is refused, naming it.
func TestServeTakesAnEmptyEnvValueAsUnset(t *testing.T) {
	for _, env := range []string{"RECLEDGER_DATA", "RECLEDGER_HTTP", "RECLEDGER_NATS", "RECLEDGER_NATS_LISTEN", "RECLEDGER_SITE",
		"RECLEDGER_REPLICAS", "RECLEDGER_REBUILD", "RECLEDGER_CHECKPOINT_EVENTS", "RECLEDGER_CHECKPOINT_EVERY", "RECLEDGER_LOG_LEVEL"} {
		t.Setenv(env, "")
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	httpAddr, n, on, d := "127.0.0.1:8080", 1, true, time.Minute
	strFlag(fs, &httpAddr, "http", "RECLEDGER_HTTP", "")
	checks := []func() error{intFlag(fs, &n, "replicas", "RECLEDGER_REPLICAS", ""), boolFlag(fs, &on, "rebuild", "RECLEDGER_REBUILD", ""),
		durationFlag(fs, &d, "checkpoint-every", "RECLEDGER_CHECKPOINT_EVERY", "")}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	for _, check := range checks {
		if err := check(); err != nil {
			t.Errorf("an empty variable refused: %v", err)
		}
	}
	if httpAddr != "127.0.0.1:8080" || n != 1 || !on || d != time.Minute || envOr("RECLEDGER_SITE", "default") != "default" {
		t.Errorf("empty variables did not leave the defaults: %q %d %v %s", httpAddr, n, on, d)
	}

	t.Chdir(t.TempDir()) // the default --data, ./data, is made here
	var logs ledgertest.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- (&ServeCommand{Stderr: &logs}).Run(ctx, []string{"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1"})
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(logs.String(), "recledger serving") {
		select {
		case err := <-done:
			t.Fatalf("serve with empty variables: %v\n%s", err, logs.String())
		case <-deadline:
			t.Fatalf("not serving after 30 s:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"site=default", "data=./data"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the start's record lacks %s:\n%s", want, logs.String())
		}
	}

	for _, flag := range []string{"--data", "--http", "--nats-listen"} {
		args := []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1", flag, ""}
		err := (&ServeCommand{Stderr: devNull(t)}).Run(t.Context(), args)
		if !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), "serve: "+flag+": invalid input: empty") {
			t.Errorf("serve %s \"\": %v", flag, err)
		}
	}
}

// The checkpoint settings (a crash walk could not make saves more
// frequent) are bounded: a save after every few events would stall the
// server.
func TestServeCheckpointFlags(t *testing.T) {
	for _, args := range [][]string{{"--checkpoint-events", "10"}, {"--checkpoint-events", "20000000"},
		{"--checkpoint-every", "0s"}, {"--checkpoint-every", "48h"}, {"--http-max-connections", "0"}} {
		err := (&ServeCommand{Stderr: devNull(t)}).Run(t.Context(), append([]string{"--data", t.TempDir()}, args...))
		if !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("serve %v: %v", args, err)
		}
	}
	// Taken: the server starts (and stops at once, its context done).
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := (&ServeCommand{Stderr: devNull(t)}).Run(ctx, []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1",
		"--checkpoint-events", "5000", "--checkpoint-every", "10s", "--http-max-connections", "100"})
	if errors.Is(err, ledger.ErrInvalid) {
		t.Errorf("valid checkpoint settings refused: %v", err)
	}
}

// TestServeLogFlags: --log-format and --log-level are checked before
// anything starts; a start that fails is a log record of level ERROR in
// the format asked for (a walk's crash loop left only plain lines, which
// an alert on level=ERROR misses), and main does not print it again.
func TestServeLogFlags(t *testing.T) {
	for _, args := range [][]string{{"--log-format", "xml"}, {"--log-level", "loud"}} {
		err := (&ServeCommand{Stderr: devNull(t)}).Run(t.Context(), append([]string{"--data", t.TempDir()}, args...))
		if !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("serve %v: %v", args, err)
		}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var logs ledgertest.Buffer
	err = (&ServeCommand{Stderr: &logs}).Run(t.Context(), []string{"--data", t.TempDir(), "--http", busy.Addr().String(),
		"--nats-listen", "127.0.0.1:-1", "--log-format", "json", "--log-level", "warn"})
	if !errors.As(err, new(loggedError)) || !strings.Contains(err.Error(), "--http "+busy.Addr().String()) {
		t.Fatalf("serve on a port in use: %v", err)
	}
	var last struct{ Level, Msg, Err string }
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("not a JSON record: %q", l)
		}
		if last.Level == "INFO" || last.Level == "DEBUG" {
			t.Errorf("below --log-level warn: %q", l)
		}
	}
	if last.Level != "ERROR" || last.Msg != "recledger did not start" || !strings.Contains(last.Err, "address already in use") {
		t.Errorf("the failed start's record: %+v", last)
	}
}

// TestJSONLogsWriteDurationsAsText: "took":"1.5s", as the text format
// writes it, not nanoseconds a reader takes for another unit.
func TestJSONLogsWriteDurationsAsText(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("saved", logKeyTook, 1500*time.Millisecond)
	if !strings.Contains(buf.String(), `"took":"1.5s"`) {
		t.Errorf("logged %s", buf.String())
	}
}

// TestStopCutsAStalledClient: a client that never finishes its request
// does not turn a stop into a failure: it is cut off at the shutdown
// timeout, and the stop is clean (nothing it sent was acknowledged).
func TestStopCutsAStalledClient(t *testing.T) {
	cfg := testServeConfig(t.TempDir())
	cfg.ShutdownTimeout = 200 * time.Millisecond
	srv, err := StartServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/calls/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the request is being read
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatalf("a stop with a stalled client: %v", err)
	}
	// Cut off, not left to outlive the stop with the store closed.
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the stalled client's connection after the stop: %v, want it closed", err)
	}
}

// TestServesWhileAnExternalNATSIsAway: with --nats, a NATS server not
// reachable at start delays the mirror, not the agents' commands (the
// ledger is the durable copy); the mirror catches up once it comes.
func TestServesWhileAnExternalNATSIsAway(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testServeConfig(t.TempDir())
	cfg.NATS = "nats://" + addr
	srv, err := StartServer(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start with the NATS server away: %v", err)
	}
	t.Cleanup(func() { srv.Stop(); _ = srv.Wait() })
	base := "http://" + srv.Addr()
	resp, err := http.Post(base+"/v1/calls/events", "application/json", strings.NewReader(`{"call_id":"c-1","extension":"3420","type":"ringing"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a signal while NATS is away: %v %v", resp, err)
	}
	resp.Body.Close()

	ns, err := ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: t.TempDir(), Listen: addr, Unguarded: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var ready struct {
			Lag  uint64 `json:"outbox_lag"`
			Head uint64 `json:"head_seq"`
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&ready)
		resp.Body.Close()
		if err == nil && ready.Head >= 1 && ready.Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror did not catch up: %+v %v", ready, err)
		}
	}
	// and /metrics shows the connection up (followed by its handlers).
	if m := metricsText(t, base); !strings.Contains(m, `recledger_nats_connected{connection="mirror"} 1`) {
		t.Errorf("the mirror's connection is not shown up:\n%s", m)
	}
}

// metricsText is base's /metrics.
func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServesSoonWhenTheNATSServerDoesNotAnswer: with --nats naming an
// address that does not answer (a partition: connects neither succeed
// nor fail), serve starts without waiting each connection's dial timeout
// twice: a walk's serve took 8.8 s to answer /healthz.
func TestServesSoonWhenTheNATSServerDoesNotAnswer(t *testing.T) {
	cfg := testServeConfig(t.TempDir())
	cfg.NATS = "nats://" + ledgertest.SilentAddr(t)
	var logs ledgertest.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	start := time.Now()
	srv, err := StartServer(context.Background(), cfg)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("start with a NATS server that does not answer: %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("serve took %s to start (nats.go's dial timeout is 2 s)", took.Round(time.Millisecond))
	}
	postRinging(t, "http://"+srv.Addr(), 1)
	if m := metricsText(t, "http://"+srv.Addr()); !strings.Contains(m, `recledger_nats_connected{connection="mirror"} 0`) {
		t.Errorf("the mirror's connection is not shown down:\n%s", m)
	}
	// What the mirror may lack is said at the stop (nothing serves
	// /readyz then), as not known: the mirror was never reached.
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "stopped without having reached the mirror") || !strings.Contains(logs.String(), "outbox_lag=1") {
		t.Errorf("the stop does not say what the mirror may lack:\n%s", logs.String())
	}
}

// postRinging posts the ringing of call c-i on extension 3420 to the
// server at base.
func postRinging(t *testing.T, base string, i int) {
	t.Helper()
	body := fmt.Sprintf(`{"call_id":"c-%d","extension":"3420","type":"ringing"}`, i)
	resp, err := http.Post(base+"/v1/calls/events", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("call signal: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestDrainDelayKeepsServingWhileReadyzSaysStopping: told to stop with a
// drain delay, the server answers /readyz 503 (stopping) at once, goes on
// taking work until the delay ends (a load balancer has not yet moved
// every client), call signals on NATS included, and then stops with that
// work in its ledger.
func TestDrainDelayKeepsServingWhileReadyzSaysStopping(t *testing.T) {
	data := t.TempDir()
	cfg := testServeConfig(data)
	cfg.DrainDelay = 2 * time.Second
	srv, err := StartServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ready := func() (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("readyz: %v", err)
		}
		defer resp.Body.Close()
		var rep map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, rep
	}
	if code, rep := ready(); code != http.StatusOK || rep["stopping"] != nil {
		t.Fatalf("before the stop: readyz %d %v", code, rep)
	}
	postRinging(t, base, 1)
	stopped := make(chan error, 1)
	go func() { srv.Stop(); stopped <- srv.Wait() }()
	deadline := time.Now().Add(time.Second)
	for {
		code, rep := ready()
		if code == http.StatusServiceUnavailable {
			if rep["stopping"] != true || !strings.Contains(fmt.Sprint(rep["problem"]), "stopping") {
				t.Fatalf("while draining: readyz %v", rep)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d %v a second after the stop", code, rep)
		}
		time.Sleep(10 * time.Millisecond)
	}
	postRinging(t, base, 2) // still served during the delay
	// and call signals on NATS too
	if m, err := nc.Request(ledger.CTISubject(cfg.Site), []byte(`{"call_id":"c-3","extension":"3420","type":"ringing"}`), time.Second); err != nil || !strings.Contains(string(m.Data), `"accepted":1,`) {
		t.Fatalf("a NATS call signal while draining: %v %v", m, err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := http.Get(base + "/readyz"); err == nil {
		t.Fatal("the server still answers after its stop")
	}
	store, err := ledger.Open(filepath.Join(data, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var signals int
	if err := store.Scan(context.Background(), 0, func(e ledger.Envelope) error {
		if e.Type == ledger.TypeCallSignal {
			signals++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if signals != 3 {
		t.Fatalf("the ledger holds %d call signals, want 3 (two sent while draining)", signals)
	}
}

// TestDrainDelayFlag: --drain-delay (RECLEDGER_DRAIN_DELAY) is bounded.
func TestDrainDelayFlag(t *testing.T) {
	for _, args := range [][]string{{"--drain-delay", "-1s"}, {"--drain-delay", "6m"}} {
		err := (&ServeCommand{Stderr: io.Discard}).Run(context.Background(), append([]string{"--data", t.TempDir()}, args...))
		if !errors.Is(err, ledger.ErrInvalid) || !strings.Contains(err.Error(), "--drain-delay") {
			t.Errorf("%v: %v, want invalid --drain-delay", args, err)
		}
	}
}
