package replay_test

import (
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// A change names the answer's call when the call id stands as a word of
// its own, also before punctuation and after a longer id that merely
// starts with it; then no "on" is added.
func TestTraceCallNamedAsAWord(t *testing.T) {
	e := &ledger.Envelope{Seq: 5, Type: ledger.TypeCommand, Data: []byte(`{"command":"logout"}`)}
	for _, changes := range [][]string{
		{"x1: recording→not_recording"},
		{"pause closed on x1, by logout"},
		{"u1 logout (on x1)"},
		{"x1"},
		{"x12 ended", "x1 recording→not_recording"},
	} {
		line := replay.TraceLine(e, projections.Effect{Changes: changes, Result: &ledger.CommandResult{Command: "logout", UserID: "u1", CallID: "x1"}})
		if want := ": " + strings.Join(changes, "; "); !strings.HasSuffix(line, want) {
			t.Errorf("trace of %q: %q, want it to end %q", changes, line, want)
		}
	}
}

// A timer with no contact is named by the timer alone, with no trailing space.
func TestTraceTimerWithoutContact(t *testing.T) {
	e := &ledger.Envelope{Seq: 42, Type: ledger.TypeTimer, Data: []byte(`{"timer":"limit_check"}`)}
	if got, want := replay.TraceLine(e, projections.Effect{}), " timer - limit_check: no change"; !strings.HasSuffix(got, want) {
		t.Fatalf("trace line %q, want it to end %q", got, want)
	}
}
