package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
)

// A mirror that lost an event in its middle, beside a whole ledger:
// verify names the mirror as the damaged copy and says how to make it
// again (a walk read "jetstream FAILED … hash chain broken" and no way
// out); followed, the advice gives a mirror that verifies. With the
// embedded server the mirror is DIR/jetstream, moved away; with an
// external one, the stream is deleted and made again.
func TestVerifyRemirrorsADamagedMirror(t *testing.T) {
	for _, external := range []bool{false, true} {
		t.Run(fmt.Sprintf("external=%v", external), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testServeConfig(dir)
			args := []string{"--data", dir}
			if external {
				cfg.NATS = ledgertest.StartJetStream(t).URL()
				args = append(args, "--nats", cfg.NATS)
			}
			serveRingings(t, cfg, 1, 10)
			if external {
				nc, js, err := ledger.Connect(t.Context(), cfg.NATS, "test", nil)
				if err != nil {
					t.Fatal(err)
				}
				s, err := js.Stream(t.Context(), ledger.EventsStream)
				if err == nil {
					err = s.DeleteMsg(t.Context(), 5)
				}
				nc.Close()
				if err != nil {
					t.Fatal(err)
				}
			} else {
				dropStoredEvent(t, dir, cfg.Site, 5)
			}

			out, err := runCmd(t, &VerifyCommand{}, args...)
			want := "remirror   the ledger is whole and the mirror's events do not chain: stop the server, move " + filepath.Join(dir, JetStreamDir) + " away"
			if external {
				want = "remirror   the ledger is whole and the mirror's events do not chain: delete the stream (`nats stream rm " + ledger.EventsStream + "`"
			}
			if !errors.Is(err, ledger.ErrMismatch) || !strings.Contains(out, "chain      ok: ") || !strings.Contains(out, want) {
				t.Fatalf("verify of a mirror that lost an event: %v\n%s", err, out)
			}

			// Follow the advice, and serve on.
			if external {
				nc, js, err := ledger.Connect(t.Context(), cfg.NATS, "test", nil)
				if err != nil {
					t.Fatal(err)
				}
				err = js.DeleteStream(t.Context(), ledger.EventsStream)
				nc.Close()
				if err != nil {
					t.Fatal(err)
				}
			} else if err := os.Rename(filepath.Join(dir, JetStreamDir), filepath.Join(t.TempDir(), "old")); err != nil {
				t.Fatal(err)
			}
			serveRingings(t, cfg, 11, 12)
			if out, err := runCmd(t, &VerifyCommand{}, args...); err != nil || !strings.Contains(out, "jetstream  ok: 12 events") {
				t.Fatalf("verify after the mirror was made again: %v\n%s", err, out)
			}
		})
	}
}

// serveRingings serves cfg while it takes the ringing of calls c-from to
// c-to and mirrors them, then stops it.
func serveRingings(t *testing.T, cfg ServeConfig, from, to int) {
	t.Helper()
	srv, err := StartServer(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e2eStop(t, srv)
	base := "http://" + srv.Addr()
	for i := from; i <= to; i++ {
		postRinging(t, base, i)
	}
	var r struct {
		Lag  uint64 `json:"outbox_lag"`
		Head uint64 `json:"head_seq"`
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if getJSON(t, base+"/readyz", &r); r.Head >= uint64(to) && r.Lag == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("not mirrored: %+v", r)
		}
	}
}

// dropStoredEvent makes the stopped dir's embedded mirror lose event seq
// from its middle, as a damaged store does: its streams deny deletes, so
// the stream is made again, through the dir's own server, holding every
// message but that one, with their subjects and headers.
func dropStoredEvent(t *testing.T, dir, site string, seq uint64) {
	t.Helper()
	ns, err := ledger.StartEmbedded(ledger.EmbeddedOptions{StoreDir: filepath.Join(dir, JetStreamDir), Listen: "127.0.0.1:-1", Site: site})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, js, err := ledger.Connect(t.Context(), ns.ClientURL(), "test", nil, ns.Own())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := js.Stream(t.Context(), ledger.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var kept []*jetstream.RawStreamMsg
	for n := info.State.FirstSeq; n <= info.State.LastSeq; n++ {
		m, err := s.GetMsg(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		if n != seq {
			kept = append(kept, m)
		}
	}
	if err := js.DeleteStream(t.Context(), ledger.EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := ledger.EnsureStreamsCapturing(t.Context(), js, site, 1, ns.Capture()); err != nil {
		t.Fatal(err)
	}
	for _, m := range kept {
		msg := &nats.Msg{Subject: ns.Capture() + strings.TrimPrefix(m.Subject, "recledger"), Header: m.Header, Data: m.Data}
		if _, err := js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

// A stopped dir's mirror that ends before its ledger is replayed with a
// note that the state is older than the ledger's (an engineer's walk
// took a stale mirror's state for the head; verify said BEHIND).
func TestReplayOfAMirrorBehindTheLedgerSaysSo(t *testing.T) {
	dir := t.TempDir()
	cfg := testServeConfig(dir)
	serveRingings(t, cfg, 1, 10)
	store, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := store.Append(t.Context(), ledger.Event{Type: ledger.TypeCommand, Data: ledger.Command{Command: "tag", SenderID: "someone"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	notes, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	out, err := runCmd(t, &ReplayCommand{Stderr: notes}, "--data", dir, "--source", "jetstream", "--digest")
	b, _ := os.ReadFile(notes.Name())
	if err != nil || !strings.HasPrefix(out, "10 ") || !strings.Contains(string(b), "ends at seq 10, and the ledger in "+dir+" holds seq 12") {
		t.Fatalf("replay of a mirror behind its ledger: %v %q\n%s", err, out, b)
	}
	// Read to a bound within it, the state is the one asked for, not older
	// than the ledger's.
	out, said, err := replayNotes(t, "--data", dir, "--source", "jetstream", "--digest", "--until", "5")
	if err != nil || !strings.HasPrefix(out, "5 ") || strings.Contains(said, "the mirror is behind") {
		t.Fatalf("replay of a mirror behind its ledger, to seq 5: %v %q\n%s", err, out, said)
	}
}
