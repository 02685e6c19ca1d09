//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// heldByReader is a data dir with an empty ledger on which a reader
// holds the shared lock (what replay, verify, pauses take on a stopped
// dir) until release is called.
func heldByReader(t *testing.T) (dir string, release func()) {
	t.Helper()
	dir = t.TempDir()
	st, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	f, err := os.Open(filepath.Join(dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	return dir, func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
}

// TestServeWaitsForAnOfflineReader: a reader's shared lock on the ledger
// (what replay, verify, pauses take on a stopped dir) delays serve's start,
// naming the reader, instead of failing it.
func TestServeWaitsForAnOfflineReader(t *testing.T) {
	dir, release := heldByReader(t)
	var logs ledgertest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if _, err := openForServe(ctx, dir, log); err == nil || !strings.Contains(err.Error(), "waiting for the ledger's readers") ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a stop while waiting: %v", err)
	}
	if !strings.Contains(logs.String(), "waiting for the ledger: it is held by pid") {
		t.Fatalf("the wait does not name the reader: %s", logs.String())
	}
	// Said once, not at every try: the next is due after readerWaitLog.
	if n := strings.Count(logs.String(), "waiting for the ledger"); n != 1 {
		t.Errorf("the wait was logged %d times in its first %s: %s", n, readerWaitLog, logs.String())
	}
	// Only the program and its command: a reader's other arguments may
	// hold a secret (--token).
	if len(os.Args) > 2 && strings.Contains(logs.String(), os.Args[2]) {
		t.Fatalf("the wait logs the reader's arguments: %s", logs.String())
	}

	done := make(chan error, 1)
	go func() {
		st, err := openForServe(t.Context(), dir, log)
		if err == nil {
			st.Close()
		}
		done <- err
	}()
	// Let go once serve says it waits.
	for deadline := time.Now().Add(30 * time.Second); strings.Count(logs.String(), "waiting for the ledger") < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve does not say it waits: %s", logs.String())
		}
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the reader let go, serve did not start: %v", err)
	}
	if !strings.Contains(logs.String(), "the ledger's readers let go of it; starting") {
		t.Errorf("no word that the wait is over: %s", logs.String())
	}
}

// A ledger held for writing (another serve still starting, before it
// writes serving.json, or a restore) is not called an offline reader's
// (a walk's second serve did).
func TestServeNamesAWriterHoldingTheLedger(t *testing.T) {
	dir := t.TempDir()
	st, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := openForServe(ctx, dir, slog.New(slog.NewTextHandler(&logs, nil))); err == nil {
		t.Fatal("opened a ledger held for writing")
	}
	if out := logs.String(); !strings.Contains(out, "writing it: another serve starting") || strings.Contains(out, "reading it offline") {
		t.Errorf("the wait for a writer: %s", out)
	}
}

// A long wait is said again every readerWaitLog, with the time left
// before serve gives up, so that a service manager's log shows the start
// still waiting rather than one line and silence.
func TestServeSaysAgainThatItStillWaits(t *testing.T) {
	dir, release := heldByReader(t)
	defer release()
	var logs ledgertest.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := openForServe(ctx, dir, slog.New(slog.NewTextHandler(&logs, nil)))
		done <- err
	}()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(readerWaitLog + 30*time.Second); strings.Count(logs.String(), "waiting for the ledger") < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a wait of more than %s said once: %s", readerWaitLog, logs.String())
		}
	}
}

// A ledger held by a server that is running on the data dir (its
// serving.json names a live process) is refused at once, naming that
// server, not waited for as a reader's: waiting would hold a service
// manager's second start for minutes.
func TestServeRefusesADirServedAlreadyAtOnce(t *testing.T) {
	dir := t.TempDir()
	st, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := writeServing(dir, servingInfo{PID: os.Getpid(), HTTP: "http://127.0.0.1:8080", Site: "default"}); err != nil {
		t.Fatal(err)
	}
	// The guard: a wait for the holder would end here, with another error.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = openForServe(ctx, dir, slog.New(slog.DiscardHandler))
	want := fmt.Sprintf("%s is served already, by pid %d at http://127.0.0.1:8080", dir, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("serve on a dir served already: %v", err)
	}
}

// A serve that starts where the last one left its serving.json (killed)
// says the last stop was not clean; a clean start says nothing of it.
func TestServeSaysTheLastStopWasNotClean(t *testing.T) {
	dir := t.TempDir()
	start := func() string {
		t.Helper()
		var logs ledgertest.Buffer
		cfg := testServeConfig(dir)
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		srv, err := StartServer(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		e2eStop(t, srv)
		return logs.String()
	}
	if out := start(); strings.Contains(out, "did not stop cleanly") {
		t.Errorf("a first start: %s", out)
	}
	if out := start(); strings.Contains(out, "did not stop cleanly") {
		t.Errorf("a start after a clean stop: %s", out)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip(err)
	}
	if err := writeServing(dir, servingInfo{PID: gone.Process.Pid, HTTP: "http://127.0.0.1:1", Site: "default"}); err != nil {
		t.Fatal(err)
	}
	if out := start(); !strings.Contains(out, "did not stop cleanly") || !strings.Contains(out, "pid="+strconv.Itoa(gone.Process.Pid)) {
		t.Errorf("a start after a killed serve: %s", out)
	}
}

// The fold's time in "projections ready" does not count a wait for an
// offline reader (a walk read took=24s for a fold of milliseconds).
func TestProjectionsReadyTimesTheFoldAlone(t *testing.T) {
	dir, release := heldByReader(t)
	var logs ledgertest.Buffer
	cfg := testServeConfig(dir)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	go func() {
		time.Sleep(1500 * time.Millisecond)
		release()
	}()
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_ = srv.Wait()
	_, after, ok := strings.Cut(logs.String(), `msg="projections ready"`)
	line, _, _ := strings.Cut(after, "\n")
	_, took, _ := strings.Cut(line, "took=")
	d, err := time.ParseDuration(took)
	if !ok || err != nil || d >= time.Second {
		t.Errorf("projections ready took %q (%v), after a wait of 1.5 s for the reader:\n%s", took, err, logs.String())
	}
}

// A start refused for its --config file or a port in use leaves a new
// data dir unclaimed: the next start may serve it as another site (a
// walk's misspelt member left it claimed by the default site).
func TestRefusedStartClaimsNoSite(t *testing.T) {
	data := t.TempDir()
	bad := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(bad, []byte(`{"site":{"upload_tme":"23:00"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testServeConfig(data)
	cfg.ConfigFile = bad
	if _, err := StartServer(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "upload_tme") {
		t.Fatalf("a misspelt member: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg = testServeConfig(data)
	cfg.HTTP = busy.Addr().String()
	if _, err := StartServer(t.Context(), cfg); err == nil {
		t.Fatal("served on a port in use")
	}
	cfg = testServeConfig(data)
	cfg.Site = "other"
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatalf("the first start that succeeds, as another site: %v", err)
	}
	e2eStop(t, srv)
}

// TestServeSaysItsEventVersionIsNew: a build whose event version is newer
// than every event of the ledger says, at start, that what it appends
// ends a plain rollback, also when it loads the older build's checkpoint
// (same projection version: an upgrade walk's new build said nothing).
// Once it has appended, the next start does not say it again.
func TestServeSaysItsEventVersionIsNew(t *testing.T) {
	ctx := t.Context()
	scratch, err := ledger.Open(filepath.Join(t.TempDir(), LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	envs, err := replaytest.Write(ctx, scratch, replaytest.DayEvents()[:6], nil)
	scratch.Close()
	if err != nil {
		t.Fatal(err)
	}
	prev := envs[0].Prev
	for i := range envs {
		envs[i].Version, envs[i].Raw = ledger.CurrentVersion-1, nil
		if _, err := envs[i].Seal(prev); err != nil {
			t.Fatal(err)
		}
		prev = envs[i].Hash
	}
	data := t.TempDir()
	dst, err := ledger.Open(filepath.Join(data, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = dst.ClaimSite(ctx, replaytest.Site)
	if err == nil {
		err = dst.Import(ctx, envs)
	}
	if err == nil {
		var st *projections.State
		if st, _, err = replay.Run(ctx, dst, replay.Options{}); err == nil {
			_, err = replay.Save(ctx, dst, st)
		}
	}
	dst.Close()
	if err != nil {
		t.Fatal(err)
	}

	const said = "events appended from now on are of this build's"
	start := func() (*Server, string) {
		var logs ledgertest.Buffer
		cfg := testServeConfig(data)
		cfg.Site = replaytest.Site
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		srv, err := StartServer(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return srv, logs.String()
	}
	srv, logs := start()
	if !strings.Contains(logs, said) || !strings.Contains(logs, fmt.Sprintf("ledger_event_version=%d", ledger.CurrentVersion-1)) {
		t.Errorf("the first start of a newer event version does not say so:\n%s", logs)
	}
	postRinging(t, "http://"+srv.Addr(), 1)
	srv.Stop()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	srv, logs = start()
	srv.Stop()
	_ = srv.Wait()
	if strings.Contains(logs, said) {
		t.Errorf("said again once this build appended:\n%s", logs)
	}
}

// A ledger file that is not one fails serve's start at once: only a lock
// is waited for, not damage, which no wait mends.
func TestServeFailsAtOnceOnAFileThatIsNoLedger(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LedgerFile), bytes.Repeat([]byte("not a ledger\n"), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := openForServe(ctx, dir, slog.New(slog.DiscardHandler))
	// Its kind is kept: the error line's advice and exit status follow it.
	if err == nil || ctx.Err() != nil || errors.Is(err, ledger.ErrLocked) || !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("serve on a file that is no ledger: %v (waited: %v)", err, ctx.Err())
	}
}

// What the ledger finds as serve opens it is said in serve's log: a
// ledger whose tail is lost refuses appends, and the log is where an
// operator learns why.
func TestServeLogsWhatTheLedgerFindsAsItOpens(t *testing.T) {
	d := writeOfflineDay(t, false, 30)
	deleteEvents(t, d.dir, 28, d.seq) // the head, 27, is before the checkpoint at 30
	var logs ledgertest.Buffer
	st, err := openForServe(t.Context(), d.dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if !strings.Contains(logs.String(), "ledger tail is lost; appends refused") {
		t.Fatalf("a lost tail not said in serve's log: %s", logs.String())
	}
}
