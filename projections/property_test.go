package projections

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// checkInvariants fails when the state breaks a rule that must hold after
// every event.
func checkInvariants(t *testing.T, s *State, seq uint64) {
	t.Helper()
	for id, i := range s.open {
		p := s.pauses.at(i)
		ct := s.contacts[p.ContactID]
		if ct == nil || !ct.Open || ct.OpenPause != i || p.OpenEventID != id {
			t.Fatalf("seq %d: open pause %s is not the open pause of an open contact", seq, id)
		}
		c := s.calls[ct.CallKey]
		if c == nil || c.Contact != ct.V.ContactID {
			t.Fatalf("seq %d: pause %s open on a call that ended", seq, id)
		}
	}
	for id, ct := range s.contacts {
		if ct.Open {
			if c := s.calls[ct.CallKey]; c == nil || c.Contact != id {
				t.Fatalf("seq %d: open contact %s has no active call", seq, id)
			}
			continue
		}
		if ct.V.Disposition == nil || ct.OpenPause >= 0 {
			t.Fatalf("seq %d: closed contact %s without disposition or with an open pause", seq, id)
		}
		if ct.V.EndedAt.Before(ct.V.StartedAt.Time) {
			t.Fatalf("seq %d: contact %s ends before it starts", seq, id)
		}
		for _, sg := range ct.V.Segments {
			if sg.End.Before(sg.Start.Time) || sg.End.After(ct.V.EndedAt.Time) {
				t.Fatalf("seq %d: contact %s has a bad segment %v", seq, id, sg)
			}
		}
		for _, r := range ct.Rows {
			if p := s.pauses.at(r); p.End.After(ct.V.EndedAt.Time) {
				t.Fatalf("seq %d: contact %s ends at %v, before its pause %+v", seq, id, ct.V.EndedAt, p)
			}
		}
	}
	for i := range s.pauses.Len() {
		p := s.pauses.at(i)
		if !p.End.IsZero() && p.End.Before(p.Start.Time) {
			t.Fatalf("seq %d: pause ends before it starts: %+v", seq, p)
		}
	}
}

func fold(t *testing.T, envs []ledger.Envelope, check bool) *State {
	t.Helper()
	s := New()
	for i := range envs {
		if _, err := s.Apply(&envs[i]); err != nil {
			t.Fatalf("apply seq %d: %v", envs[i].Seq, err)
		}
		if check {
			checkInvariants(t, s, envs[i].Seq)
		}
	}
	return s
}

// TestPropertyRandomFold folds random event sequences: no panic, no error,
// the invariants hold after every event, and folding again, or resuming from
// a checkpoint taken midway, gives the same digest.
func TestPropertyRandomFold(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		g := newEnvGen(t)
		agents := 2 + rng.Intn(5)
		g.config(genConfig(agents, []int{0, 5, 60}[rng.Intn(3)]))
		g.random(rng, agents, 300+rng.Intn(300))
		envs := g.out

		a := fold(t, envs, true)
		b := fold(t, envs, false)
		if a.Digest() != b.Digest() {
			t.Fatalf("seed %d: two folds differ", seed)
		}
		mid := len(envs) / 2
		c := fold(t, envs[:mid], false)
		c = roundTrip(t, c, memSections{})
		for i := mid; i < len(envs); i++ {
			if _, err := c.Apply(&envs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if c.Digest() != a.Digest() {
			t.Fatalf("seed %d: fold through a checkpoint at seq %d differs", seed, envs[mid].Seq)
		}
		if len(contactsOf(t, a, ledger.ContactQuery{})) == 0 {
			t.Fatalf("seed %d: no contacts at all: the generator does not exercise the rules", seed)
		}
	}
}

// TestPropertyClockSkew folds calls whose signals' sender runs behind or
// ahead of the server's clock by up to a minute and a half, with pauses,
// resumes and restarts given during them: the invariants hold after every
// event, a closed contact ending after each of its pauses among them.
func TestPropertyClockSkew(t *testing.T) {
	commands := []string{"pause", "resume", "pause", "resume", "restart", "tag"}
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		g := newEnvGen(t)
		g.config(genConfig(2, 0))
		step := func() time.Duration { return time.Duration(1+rng.Intn(20000)) * time.Millisecond }
		for call := range 30 {
			skew := time.Duration(rng.Intn(180000)-90000) * time.Millisecond
			signal := func(typ string) {
				at := g.now.Add(skew)
				g.add(ledger.TypeCallSignal, step(), ledger.CallSignal{CallID: fmt.Sprintf("c%d", call), Extension: "3001",
					Type: typ, Direction: ledger.DirectionInbound, ANI: "+13125550100", At: ledger.T(at), Transport: "nats"})
			}
			signal(ledger.SignalRinging)
			for range rng.Intn(6) {
				g.add(ledger.TypeCommand, step(), ledger.Command{Command: commands[rng.Intn(len(commands))], SenderID: "u1", Transport: "http"})
			}
			signal(ledger.SignalEnded)
		}
		s := fold(t, g.out, true)
		if len(contactsOf(t, s, ledger.ContactQuery{})) < 30 {
			t.Fatalf("seed %d: not every call was recorded", seed)
		}
	}
}

func TestApplyRejectsUnknownVersionAndType(t *testing.T) {
	g := newEnvGen(t)
	e := g.add(ledger.TypeCommand, 0, ledger.Command{Command: "tag"})
	e.Version = ledger.CurrentVersion + 1
	s := New()
	if _, err := s.Apply(e); !errors.Is(err, ledger.ErrUnknownVersion) {
		t.Fatalf("newer version: %v", err)
	}
	e.Version, e.Type = ledger.CurrentVersion, "mystery"
	if _, err := s.Apply(e); !errors.Is(err, ledger.ErrUnknownVersion) {
		t.Fatalf("unknown type: %v", err)
	}
	e.Type, e.Data = ledger.TypeCommand, []byte(`{"command":`)
	if _, err := s.Apply(e); !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("bad data: %v", err)
	}
	if s.Seq() != 0 {
		t.Fatalf("a failed apply advanced the state to seq %d", s.Seq())
	}
}

func TestCheckpointRejectsOtherVersion(t *testing.T) {
	if _, err := UnmarshalCheckpoint(context.Background(), []byte(`{"version":"0"}`), nil); !errors.Is(err, ledger.ErrUnknownVersion) {
		t.Fatalf("got %v", err)
	}
	if _, err := UnmarshalCheckpoint(context.Background(), []byte(`{`), nil); !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}

// TestPropertyResentSignals folds calls whose feed sends each call's
// signals once, with their times (now and then an end dated before the
// call's start, a clock stepped back), and then again, whole or in part
// and in any order, within the hour (a feed resending after an outage), with
// pauses given during the calls, and a checkpoint taken and loaded every
// few events: the invariants hold, the fold through the checkpoints gives
// the straight fold's digest, and once every call has ended none is left
// active (a resent signal made a call no end closes; an upgrade walk found
// a restart taking a resend for a new call).
func TestPropertyResentSignals(t *testing.T) {
	types := []string{ledger.SignalRinging, ledger.SignalAnswered, ledger.SignalHeld, ledger.SignalRetrieved, ledger.SignalEnded}
	for seed := int64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewSource(seed))
		g := newEnvGen(t)
		agents := 2 + rng.Intn(3)
		g.config(genConfig(agents, 0))
		var done [][]ledger.CallSignal // each ended call's signals
		for call := range 40 {
			ext := fmt.Sprintf("%d", 3000+rng.Intn(agents))
			start := g.now.Add(time.Duration(rng.Intn(3000)) * time.Millisecond)
			var sigs []ledger.CallSignal
			at := start // the feed's clock: ahead of the server's or behind it by seconds
			for _, typ := range types {
				sigs = append(sigs, ledger.CallSignal{CallID: fmt.Sprintf("c%d", call), Extension: ext, Type: typ,
					Direction: ledger.DirectionInbound, ANI: "+13125550100", Transport: "http", At: ledger.T(at)})
				at = at.Add(time.Duration(1+rng.Intn(5000)) * time.Millisecond)
			}
			if rng.Intn(4) == 0 { // the feed's clock stepped back: its end dated before its start
				sigs[len(sigs)-1].At = ledger.T(start.Add(-time.Duration(rng.Intn(10000)) * time.Millisecond))
			}
			for i, s := range sigs {
				g.add(ledger.TypeCallSignal, time.Duration(1+rng.Intn(4000))*time.Millisecond, s)
				if i == 1 && rng.Intn(2) == 0 {
					g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "pause", SenderID: fmt.Sprintf("u%d", rng.Intn(agents)), Transport: "http"})
				}
			}
			done = append(done, sigs)
			if rng.Intn(3) == 0 { // a resend of an earlier call, some of it, in any order
				again := done[rng.Intn(len(done))]
				for _, i := range rng.Perm(len(again))[:1+rng.Intn(len(again))] {
					g.add(ledger.TypeCallSignal, time.Duration(1+rng.Intn(2000))*time.Millisecond, again[i])
				}
			}
		}
		if span := g.out[len(g.out)-1].Time.Sub(g.out[0].Time.Time); span >= endedWindow {
			t.Fatalf("seed %d: the feed spans %v, past the window the rule remembers", seed, span)
		}
		a := fold(t, g.out, true)
		if len(a.calls) != 0 {
			t.Fatalf("seed %d: %d calls active after every call ended", seed, len(a.calls))
		}
		c := New()
		for i := range g.out {
			if _, err := c.Apply(&g.out[i]); err != nil {
				t.Fatal(err)
			}
			if i%(7+rng.Intn(20)) == 0 {
				c = roundTrip(t, c, memSections{})
			}
		}
		if c.Digest() != a.Digest() {
			t.Fatalf("seed %d: a fold through checkpoints differs from the straight fold", seed)
		}
	}
}
