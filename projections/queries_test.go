package projections

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// TestEachPauseRefusesAnUnorderedLog: a ledger whose event times go back
// (not one the ledger writes) leaves the pause log out of start order.
// Pauses still answers sorted; EachPause stops with ledger.ErrUnordered before
// its callback sees the row that breaks the order.
func TestEachPauseRefusesAnUnorderedLog(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(4, 0))
	pause := func(u int, step time.Duration) {
		id, ext := fmt.Sprintf("c-%d", u), fmt.Sprintf("%d", 3000+u)
		g.add(ledger.TypeCallSignal, step, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalRinging, Direction: ledger.DirectionInbound, ANI: "+13125550100", DNIS: "8001"})
		g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: id, Extension: ext, Type: ledger.SignalAnswered})
		g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: "pause", SenderID: fmt.Sprintf("u%d", u), Transport: "finesse"})
	}
	pause(0, time.Minute)
	pause(1, -time.Hour) // an hour back
	s := New()
	for i := range g.out {
		if _, err := s.Apply(&g.out[i]); err != nil {
			t.Fatal(err)
		}
	}
	rows := pausesOfSorted(t, s)
	if len(rows) != 2 || rows[0].UserID != "u1" || rows[1].UserID != "u0" {
		t.Fatalf("Pauses: %+v, want u1's row (the earlier start) first", rows)
	}
	var seen []string
	err := s.EachPause(context.Background(), ledger.PauseQuery{}, func(p *ledger.PauseRow) error {
		seen = append(seen, p.UserID)
		return nil
	})
	if !errors.Is(err, ledger.ErrUnordered) || len(seen) != 1 || seen[0] != "u0" {
		t.Errorf("EachPause: %v after %v, want ErrUnordered after u0's row alone", err, seen)
	}
}

// pausesOfSorted is Pauses of everything.
func pausesOfSorted(t *testing.T, s *State) []ledger.PauseRow {
	t.Helper()
	rows, err := s.Pauses(context.Background(), ledger.PauseQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
