package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// Beside a running server, whose bbolt lock keeps every other reader out,
// `replay --data DIR` replays the server's JetStream mirror and gives the
// digest the server gives; the other offline commands name the server.
// Once it has stopped, the ledger is read again.
func TestReplayBesideRunningServer(t *testing.T) {
	ctx := context.Background()
	data, srv, base := startSimulatedServer(t, simulator.Config{Agents: 3, CallsPerAgent: 2, Seed: 3})
	var live digestReply
	getJSON(t, base+"/v1/digest", &live)
	info, ok := readServing(data)
	if !ok || info.HTTP != base || info.PID != os.Getpid() || info.Site != "default" {
		t.Fatalf("serving file: %+v %v", info, ok)
	}
	waitStreamHead(t, replay.JetStreamSource{JS: jetStreamOf(t, info.NATS), Site: info.Site}, live.Seq)

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

	// Asked for bbolt by name, or for what only bbolt holds: refused,
	// naming the server.
	for _, c := range []struct {
		cmd interface {
			Run(context.Context, []string) error
		}
		args []string
	}{
		{&ReplayCommand{}, []string{"--data", data, "--source", "bbolt"}},
		{&PausesCommand{}, []string{"--data", data}},
	} {
		_, err := runCmd(t, c.cmd, c.args...)
		if !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), base) {
			t.Fatalf("%T %v beside the server: %v", c.cmd, c.args, err)
		}
	}

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
	removeServing(dir) // not ours: kept
	if _, err := os.Stat(filepath.Join(dir, ServingFile)); err != nil {
		t.Fatalf("another process's file removed: %v", err)
	}
}

// jetStreamOf connects to url for the test's life.
func jetStreamOf(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, js, err := ledger.Connect(context.Background(), url, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return js
}
