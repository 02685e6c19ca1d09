package replay_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/ledger/ledgertest"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay/replaytest"
)

// day is a ledger of one realistic day with what the live projections
// said after each event.
type day struct {
	store   *ledger.Store
	live    *projections.Live
	envs    []ledger.Envelope
	digests map[uint64]string // seq → live digest right after it
	outbox  *ledger.Outbox    // set when mirrored
}

// openStore opens a fresh ledger in t.TempDir with a deterministic clock.
func openStore(t testing.TB) *ledger.Store {
	t.Helper()
	clk := replaytest.NewClock(replaytest.Start, 250*time.Millisecond)
	st, err := ledger.Open(filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// writeDay writes replaytest.DayEvents through a store watched by live
// projections (and mirrored to JetStream when js is set), recording the live
// digest after each Append.
func writeDay(t testing.TB, js jetstream.JetStream) *day {
	t.Helper()
	ctx := context.Background()
	d := &day{store: openStore(t), live: projections.NewLive(projections.New()), digests: map[uint64]string{}}
	d.store.Subscribe(d.live.OnCommit)
	if js != nil {
		if err := ledger.EnsureStreams(ctx, js, replaytest.Site, 1); err != nil {
			t.Fatal(err)
		}
		d.outbox = ledger.NewOutbox(d.store, js, replaytest.Site, nil)
		octx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.outbox.Run(octx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	envs, err := replaytest.Write(ctx, d.store, replaytest.DayEvents(), func(envs []ledger.Envelope) {
		seq, dg := d.live.Digest()
		if seq != envs[len(envs)-1].Seq {
			t.Errorf("live at seq %d after appending up to %d", seq, envs[len(envs)-1].Seq)
		}
		d.digests[seq] = dg
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.live.Err(); err != nil {
		t.Fatalf("live projections: %v", err)
	}
	d.envs = envs
	if js != nil {
		waitMirrored(t, d.outbox)
	}
	return d
}

// waitMirrored waits until the outbox has published every committed event.
func waitMirrored(t testing.TB, o *ledger.Outbox) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for o.Lag() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("outbox lag still %d", o.Lag())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startJetStream runs an in-process nats-server with JetStream and returns
// its URL and a JetStream context on it.
func startJetStream(t testing.TB) (string, jetstream.JetStream) {
	t.Helper()
	j := ledgertest.StartJetStream(t)
	return j.URL(), j.JS
}
