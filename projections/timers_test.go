package projections

import (
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// pausedCall folds u0 answering a call and pausing it, on a site whose
// pauses last at most a minute; it returns the events, the state and the
// id of the event that opened the pause.
func pausedCall(t *testing.T) (*envGen, *State, string) {
	t.Helper()
	g := newEnvGen(t)
	g.config(genConfig(1, 60)) // u0 on 3000, recorded
	g.answered(0, "c1", time.Second)
	g.command(0, ledger.CmdPause)
	return g, fold(t, g.out, false), g.out[len(g.out)-1].ID.String()
}

// onlyPause is the one pause row of s.
func onlyPause(t *testing.T, s *State) ledger.PauseRow {
	t.Helper()
	rows := pausesOf(t, s, ledger.PauseQuery{})
	if len(rows) != 1 {
		t.Fatalf("%d pause rows, want 1", len(rows))
	}
	return rows[0]
}

// A server timer of a kind the rules do not know changes nothing, even
// when it names an open pause: only pause_expiry ends one (mutation
// testing: the kind went unchecked by every test).
func TestTimerOfUnknownKindLeavesThePauseOpen(t *testing.T) {
	g, s, open := pausedCall(t)
	if _, err := s.Apply(g.add(ledger.TypeTimer, 2*time.Minute, ledger.TimerFired{Timer: "reminder", PauseOpenID: open, Due: ledger.T(g.now.Add(time.Minute))})); err != nil {
		t.Fatal(err)
	}
	if p := onlyPause(t, s); p.EndedBy != "" {
		t.Errorf("the pause ended (%s) at %s", p.EndedBy, p.End)
	}
}

// A pause_expiry that carries no due time ends its pause when the timer
// event happened (mutation testing: only timers with a due time were
// tried).
func TestPauseExpiryWithoutDueEndsAtItsEvent(t *testing.T) {
	g, s, open := pausedCall(t)
	e := g.add(ledger.TypeTimer, 2*time.Minute, ledger.TimerFired{Timer: ledger.TimerPauseExpiry, PauseOpenID: open})
	eff, err := s.Apply(e)
	if err != nil {
		t.Fatal(err)
	}
	if p := onlyPause(t, s); p.EndedBy != ledger.EndedByTimeout || !p.End.Equal(e.Time.Time) {
		t.Errorf("pause ended %q at %s, want timeout at %s", p.EndedBy, p.End, e.Time)
	}
	// The expiry names the paused agent, for a trace by user.
	if len(eff.Users) != 1 || eff.Users[0] != "u0" {
		t.Errorf("users %v, want [u0]", eff.Users)
	}
}
