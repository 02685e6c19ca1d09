package uploadworker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger/ledgertest"
)

// A worker whose connection is closed for good (as when its token's role
// may not take manifests) returns an error: no fetch will ever succeed on
// it (without this, it would warn and fetch again for good).
func TestRunEndsWhenItsConnectionIsClosed(t *testing.T) {
	j := ledgertest.StartJetStream(t, testSite)
	nc, err := nats.Connect(j.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	log := &ledgertest.Buffer{}
	cfg := testConfig(t.TempDir(), slog.New(slog.NewTextHandler(log, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- New(js, cfg).Run(ctx) }()
	waitFor(t, "the worker bound", 10*time.Second, func() bool { return strings.Contains(log.String(), "upload worker bound") })
	nc.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "connection is closed") {
			t.Fatalf("Run on a closed connection: %v; the log:\n%s", err, log.String())
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("the worker went on fetching on a closed connection; its log:\n%s", log.String())
	}
}

// A worker stopped in the middle of a manifest stops after the file it is
// writing and neither acks nor naks the manifest: the consumer delivers it
// again after its AckWait, and the next worker writes the rest.
func TestStoppingMidManifestLeavesItUnacked(t *testing.T) {
	_, js := startNATS(t)
	dest := t.TempDir()
	day := "2026-11-23"
	names := publishManifests(t, js, []string{day}, 10)[day] // 11 files
	cfg := testConfig(dest, nil)
	cfg.AckWait = time.Second

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var handled atomic.Int32
	first := cfg
	first.OnFile = func(string) {
		if handled.Add(1) == 3 {
			cancel()
		}
	}
	log := &ledgertest.Buffer{}
	first.Logger = slog.New(slog.NewTextHandler(log, nil))
	done := make(chan error, 1)
	go func() { done <- New(js, first).Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the worker did not stop; its log:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "stopping in the middle of a manifest") {
		t.Errorf("the stop is not told:\n%s", log.String())
	}
	if n := handled.Load(); n != 3 {
		t.Errorf("the stopped worker handled %d files, want 3", n)
	}
	finals, _ := countFiles(t, dest)
	if len(finals) != 3 {
		t.Errorf("the stopped worker left %d files, want 3: %v", len(finals), finals)
	}
	if info := consumerInfo(t, js); info.AckFloor.Stream != 0 || info.NumAckPending != 1 {
		t.Errorf("the manifest left: ack floor %d, ack pending %d; want unacked", info.AckFloor.Stream, info.NumAckPending)
	}

	// The next worker gets it again and writes the rest.
	next, stop := runLogged(t, js, cfg)
	waitFor(t, "the manifest uploaded again", 15*time.Second, func() bool { return strings.Contains(next.String(), "manifest uploaded") })
	stop()
	if out := next.String(); !strings.Contains(out, "delivery=2") || !strings.Contains(out, "written=8 skipped=3") {
		t.Errorf("the next worker's log:\n%s", out)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dest, day, n)); err != nil {
			t.Errorf("%s not written: %v", n, err)
		}
	}
}
