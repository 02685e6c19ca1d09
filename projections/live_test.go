package projections

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

func TestLiveResultsSnapshotAndConcurrentReads(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(8, 30))
	g.realistic(rand.New(rand.NewSource(7)), 8, 2000)
	envs := g.out
	l := NewLive(New())

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a reader racing the writer (run with -race)
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			l.Contacts(context.Background(), ledger.ContactQuery{UserID: "u1"})
			l.Pauses(context.Background(), ledger.PauseQuery{})
			_, _ = l.Agent("u2")
			l.NextTimer()
			l.Digest()
		}
	}()
	for i := 0; i < len(envs); i += 7 {
		l.OnCommit(envs[i:min(i+7, len(envs))])
	}
	close(stop)
	wg.Wait()
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	// a batch delivered twice is not folded twice
	seq, before := l.Digest()
	l.OnCommit(envs[len(envs)-3:])
	if s2, after := l.Digest(); s2 != seq || after != before {
		t.Fatalf("re-delivered batch changed the state")
	}

	commands := 0
	for _, e := range envs {
		r, ok := l.Result(e.Seq)
		if e.Type != ledger.TypeCommand {
			if ok {
				t.Fatalf("seq %d is not a command but has a result", e.Seq)
			}
			continue
		}
		commands++
		if !ok || r.Seq != e.Seq || r.EventID != e.ID.String() || r.Outcome == "" {
			t.Fatalf("seq %d: result %+v, %v", e.Seq, r, ok)
		}
	}
	if commands == 0 {
		t.Fatal("no commands in the mix")
	}
	if _, ok := l.Result(0); ok {
		t.Fatal("seq 0 has a result")
	}

	b, sseq, secs, err := l.Snapshot()
	if err != nil || sseq != seq {
		t.Fatalf("snapshot at %d, want %d: %v", sseq, seq, err)
	}
	m := memSections{}
	for _, sec := range secs {
		m[sec.Key] = sec.Data
	}
	s, err := UnmarshalCheckpoint(context.Background(), b, m)
	if err != nil || s.Digest() != before || s.Seq() != seq {
		t.Fatalf("snapshot does not restore the state: %v", err)
	}
}

func TestLiveStopsAtFirstError(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0))
	g.add(ledger.TypeCommand, 0, ledger.Command{Command: "tag", SenderID: "u0"})
	bad := g.add(ledger.TypeCommand, 0, ledger.Command{Command: "tag", SenderID: "u0"})
	bad.Version = ledger.CurrentVersion + 1
	g.add(ledger.TypeCommand, 0, ledger.Command{Command: "tag", SenderID: "u0"})
	l := NewLive(New())
	l.OnCommit(g.out)
	if !errors.Is(l.Err(), ledger.ErrUnknownVersion) {
		t.Fatalf("err = %v", l.Err())
	}
	if l.Seq() != 2 {
		t.Fatalf("seq = %d, want 2 (stopped before the bad event)", l.Seq())
	}
	l.OnCommit(g.out[2:])
	if l.Seq() != 2 {
		t.Fatal("applied after an error")
	}
	if _, ok := l.Result(3); ok {
		t.Fatal("result for an event never applied")
	}
}

// TestLiveRingForgetsOldResults: a command's result leaves the ring when
// its slot comes round again, whatever event takes it; a call signal
// left it in place, and with it the block of results it was cut from.
func TestLiveRingForgetsOldResults(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0))
	tag := g.add(ledger.TypeCommand, 0, ledger.Command{Command: "tag", SenderID: "u0"})
	for i := range ResultRing {
		g.add(ledger.TypeCallSignal, time.Millisecond, ledger.CallSignal{CallID: fmt.Sprintf("c%d", i), Extension: "3001", Type: ledger.SignalRinging})
	}
	l := NewLive(New())
	l.OnCommit(g.out)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if r := l.results[tag.Seq%ResultRing]; r != nil {
		t.Errorf("the slot of seq %d still holds the result of seq %d, %d events later", tag.Seq, r.Seq, ResultRing)
	}
	if _, ok := l.Result(tag.Seq); ok {
		t.Errorf("the result of seq %d is still given", tag.Seq)
	}
}
