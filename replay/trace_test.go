package replay_test

import (
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
	"github.com/recledger/recledger/replay"
)

// TestTraceNamesTheAnswersCall: a change that does not name the call the
// answer named (a logout on a call it did not record) gets the call on
// the line; a change that names it is left as it is.
func TestTraceNamesTheAnswersCall(t *testing.T) {
	e := &ledger.Envelope{Seq: 5, Type: ledger.TypeCommand, Data: []byte(`{"command":"logout"}`)}
	for _, c := range []struct {
		changes []string
		want    string
	}{
		{[]string{"u1 logout 4001"}, "u1 logout 4001; on x1"},
		{[]string{"x1 recording→not_recording", "u1 logout 4001"}, "x1 recording→not_recording; u1 logout 4001"},
		{[]string{"x12 recording→not_recording", "u1 logout 4001"}, "x12 recording→not_recording; u1 logout 4001; on x1"},
		{[]string{"tx1 ended"}, "tx1 ended; on x1"},
		{[]string{"signal ignored: ended for unknown call x1 on 4001"}, "signal ignored: ended for unknown call x1 on 4001"},
	} {
		line := replay.TraceLine(e, projections.Effect{Changes: c.changes, Result: &ledger.CommandResult{Command: "logout", UserID: "u1", CallID: "x1"}})
		if !strings.HasSuffix(line, ": "+c.want) {
			t.Errorf("trace of %q: %q, want it to end %q", c.changes, line, c.want)
		}
	}
}
