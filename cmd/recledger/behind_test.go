package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
)

// prefixLedger replaces data's ledger with a copy of its first n events
// (and, with other, one event of its own after them), as an interrupted
// restore, or a ledger file copied before its mirror, leaves it.
func prefixLedger(t *testing.T, data string, n uint64, other bool) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(data, LedgerFile)
	src, err := ledger.Open(path, ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var envs []ledger.Envelope
	errEnough := errors.New("enough")
	err = src.Scan(ctx, 0, func(e ledger.Envelope) error {
		if e.Seq > n {
			return errEnough
		}
		envs = append(envs, e)
		return nil
	})
	src.Close()
	if err != nil && !errors.Is(err, errEnough) {
		t.Fatal(err)
	}
	tmp := path + ".prefix"
	dst, err := ledger.Open(tmp, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(ctx, envs); err != nil {
		t.Fatal(err)
	}
	if other {
		if _, err := dst.Append(ctx, ledger.Event{Type: ledger.TypeCommand, Data: ledger.Command{Command: "tag", SenderID: "someone"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// A ledger behind its own mirror (here, its first half): serve refuses
// it, since it would give seqs the mirror holds to other events, and says
// how to complete it; restore continues it from the mirror; then serve
// starts with the state of before. A ledger that is not the mirror's
// start is not continued.
func TestServeRefusesALedgerBehindItsMirror(t *testing.T) {
	data, live := stoppedSimulatedDir(t)
	half := live.Seq / 2

	// Not the mirror's start: refused by restore.
	saved, err := os.ReadFile(filepath.Join(data, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	for _, n := range []uint64{half - 1, 0} { // n of its events, then one of another ledger: one alone is compared too
		prefixLedger(t, data, n, true)
		if out, err := runCmd(t, &RestoreCommand{Stderr: stderr}, "--from-jetstream", "--data", data); !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "not the mirror's") {
			t.Fatalf("restore over %d events that are not the mirror's start: %v\n%s", n+1, err, out)
		}
		if err := os.WriteFile(filepath.Join(data, LedgerFile), saved, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	prefixLedger(t, data, half, false)
	// verify of the stopped dir compares its own mirror, which holds more.
	if out, err := runCmd(t, &VerifyCommand{Stderr: stderr}, "--data", data); !errors.Is(err, ledger.ErrMismatch) ||
		!strings.Contains(out, fmt.Sprintf("stream has seq %d beyond the ledger's head %d", half+1, half)) ||
		!strings.Contains(out, fmt.Sprintf("--data %s --site default`: the ledger's %d events are the mirror's first, and restore continues it", data, half)) {
		t.Fatalf("verify of a ledger behind its mirror: %v\n%s", err, out)
	}
	_, err = StartServer(t.Context(), testServeConfig(data))
	if want := fmt.Sprintf("ends at seq %d, but the mirror holds %d events", half, live.Seq); !errors.Is(err, ledger.ErrMismatch) ||
		!strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "recledger restore --from-jetstream --data "+data) {
		t.Fatalf("serve over a ledger behind its mirror: %v", err)
	}
	restoreAndServe(t, data, live, fmt.Sprintf("restored %d events", live.Seq-half))
}

// Restarted on a ledger its mirror holds whole, the server's first
// /readyz says no lag: the outbox is told what the start saw in the
// mirror (Outbox.Holds), not left to report the whole ledger as lag
// until its first look at the stream.
func TestReadyzKnowsTheMirrorFromTheStart(t *testing.T) {
	data, srv, base := startSimulatedServer(t, simulator.Config{Agents: 2, CallsPerAgent: 2, Seed: 3})
	var r struct {
		Lag  uint64 `json:"outbox_lag"`
		Head uint64 `json:"head_seq"`
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if getJSON(t, base+"/readyz", &r); r.Lag == 0 || time.Now().After(end) {
			break
		}
	}
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		srv = startTestServer(t, data)
		getJSON(t, "http://"+srv.Addr()+"/readyz", &r)
		srv.Stop()
		if err := srv.Wait(); err != nil {
			t.Fatal(err)
		}
		if r.Head == 0 || r.Lag != 0 {
			t.Fatalf("first /readyz after a restart: lag %d of %d events", r.Lag, r.Head)
		}
	}
	// verify of the stopped dir compares its own mirror too.
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	out, err := runCmd(t, &VerifyCommand{Stderr: stderr}, "--data", data)
	if err != nil || !strings.Contains(out, "jetstream  ok: ") {
		t.Fatalf("verify of the stopped dir: %v\n%s", err, out)
	}
	// A mirror store without the events stream lags, it does not differ.
	js := filepath.Join(data, JetStreamDir)
	if err := os.Rename(js, js+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(js, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, &VerifyCommand{Stderr: stderr}, "--data", data)
	if !errors.Is(err, errMirrorBehind) || !strings.Contains(out, "jetstream  BEHIND: the mirror holds no events stream") {
		t.Fatalf("verify of a dir whose mirror has no stream: %v\n%s", err, out)
	}
}

// replay --source jetstream of a stopped server's data dir reads the
// dir's own mirror, as verify and restore do (it tried the default
// nats://127.0.0.1:4222 and failed: a walk), and says when the mirror read
// holds more than the dir's ledger.
func TestReplayReadsTheStoppedDirsOwnMirror(t *testing.T) {
	data, live := stoppedSimulatedDir(t)
	stderrPath := filepath.Join(t.TempDir(), "stderr")
	replayJS := func() (string, string, error) {
		t.Helper()
		stderr, err := os.Create(stderrPath)
		if err != nil {
			t.Fatal(err)
		}
		defer stderr.Close()
		out, err := runCmd(t, &ReplayCommand{Stderr: stderr}, "--data", data, "--source", "jetstream", "--digest")
		msg, _ := os.ReadFile(stderrPath)
		return out, string(msg), err
	}
	out, msg, err := replayJS()
	if want := fmt.Sprintf("%d %s\n", live.Seq, live.Digest); err != nil || out != want ||
		!strings.Contains(msg, "reading the mirror in "+filepath.Join(data, JetStreamDir)) || strings.Contains(msg, "note:") {
		t.Fatalf("replay --source jetstream of a stopped dir: %v %q, want %q\n%s", err, out, want, msg)
	}
	prefixLedger(t, data, live.Seq/2, false)
	if _, msg, err = replayJS(); err != nil || !strings.Contains(msg, fmt.Sprintf("holds seq %d, which the ledger in %s does not", live.Seq, data)) {
		t.Fatalf("replay of a mirror ahead of the dir's ledger: %v\n%s", err, msg)
	}
}

// A data dir served as site "east" whose ledger file was lost: the
// refused start leaves an empty ledger.db that records no site, and verify
// compared it with the mirror of the default site (empty): "ok". It now
// compares the site the dir's own mirror holds, fails, and says to
// restore, which continues the empty ledger; verify then passes.
func TestVerifyOfALostLedgerComparesTheMirrorsSite(t *testing.T) {
	data := t.TempDir()
	cfg := testServeConfig(data)
	cfg.Site = "east"
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+srv.Addr()+"/v1/calls/events", "application/json", strings.NewReader(`{"call_id":"c-1","extension":"3420","type":"ringing"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e2eStop(t, srv) // the outbox drains before the stop returns
	if err := os.Remove(filepath.Join(data, LedgerFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := StartServer(t.Context(), cfg); !errors.Is(err, ledger.ErrMismatch) {
		t.Fatalf("serve of a lost ledger: %v", err)
	}
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	out, err := runCmd(t, &VerifyCommand{Stderr: stderr}, "--data", data)
	said, _ := os.ReadFile(stderr.Name())
	if !errors.Is(err, ledger.ErrMismatch) || !strings.Contains(string(said), "its mirror holds 1 events of site east") ||
		!strings.Contains(out, "stream has seq 1 beyond the ledger's head 0") ||
		!strings.Contains(out, "rebuild    the ledger can be rebuilt from the mirror: run `recledger restore --from-jetstream --data "+data+" --site east`") {
		t.Fatalf("verify of a lost ledger: %v\n%s%s", err, said, out)
	}
	if out, err := runCmd(t, &RestoreCommand{Stderr: stderr}, "--from-jetstream", "--data", data, "--site", "east"); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if out, err := runCmd(t, &VerifyCommand{Stderr: stderr}, "--data", data); err != nil || !strings.Contains(out, "jetstream  ok: 1 events") {
		t.Fatalf("verify after the restore: %v\n%s", err, out)
	}
}
