package replay_test

import (
	"strings"
	"testing"
	"time"

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

// Each kind of event gives its whole line: who it concerns, what it was,
// and its changes, or else the command's outcome and the call it named.
func TestTraceLines(t *testing.T) {
	at := ledger.T(time.Date(2026, 11, 23, 14, 2, 11, 120e6, time.UTC))
	ev := func(typ ledger.Type, data string) *ledger.Envelope {
		return &ledger.Envelope{Seq: 42, Time: at, Type: typ, Data: []byte(data)}
	}
	const head = "42 2026-11-23T14:02:11.120Z "
	for _, tc := range []struct {
		e    *ledger.Envelope
		eff  projections.Effect
		want string
	}{
		{ev(ledger.TypeCommand, `{"command":"pauseurl","sender_id":"jdoe"}`),
			projections.Effect{Users: []string{"jdoe"}, Changes: []string{"c-77 recording→paused"},
				Result: &ledger.CommandResult{Command: "pause", UserID: "jdoe", CallID: "c-77"}},
			"command jdoe pause: c-77 recording→paused"},
		{ev(ledger.TypeCommand, `{"command":"resume","sender_id":"jdoe"}`),
			projections.Effect{Users: []string{"jdoe"}, Result: &ledger.CommandResult{Command: "resume", Outcome: "no_effect", Reason: "not_paused",
				UserID: "jdoe", CallID: "c-77", ContactID: "01JDAX3Y8Z0000000000000000", Recording: "recording"}},
			"command jdoe resume: no_effect (not_paused) on c-77 (01JDAX3Y8Z0000000000000000), recording"},
		// The user the answer named, not the id as the desktop spelled it.
		{ev(ledger.TypeCommand, `{"command":"tag","sender_id":"JDOE"}`),
			projections.Effect{Result: &ledger.CommandResult{Command: "tag", Outcome: "no_effect", Reason: "no_call", UserID: "jdoe"}},
			"command jdoe tag: no_effect (no_call)"},
		{ev(ledger.TypeCommand, `{"command":"tag","sender_id":"ghost"}`),
			projections.Effect{Result: &ledger.CommandResult{Command: "tag", Outcome: "rejected", Reason: "unknown_user"}},
			"command ghost tag: rejected (unknown_user)"},
		{ev(ledger.TypeCommand, `{"command":"tag","sender_id":"jdoe"}`),
			projections.Effect{Result: &ledger.CommandResult{Command: "tag", Outcome: "applied", CallID: "c-9"}},
			"command jdoe tag: applied on c-9"},
		{ev(ledger.TypeCommand, `{"command":"login","extension":"3420"}`),
			projections.Effect{Result: &ledger.CommandResult{Command: "login", Outcome: "rejected", Reason: "missing_user"}},
			"command ext 3420 login: rejected (missing_user)"},
		{ev(ledger.TypeCommand, `{"command":"tag"}`), projections.Effect{}, "command - tag: no change"},
		{ev(ledger.TypeCallSignal, `{"call_id":"c-1","extension":"3420","type":"answered"}`),
			projections.Effect{Users: []string{"jdoe", "asmith"}, Changes: []string{"c-1 not_recording→recording"}},
			"call_signal jdoe,asmith answered c-1: c-1 not_recording→recording"},
		{ev(ledger.TypeCallSignal, `{"call_id":"c-2","extension":"9999","type":"ended"}`),
			projections.Effect{}, "call_signal ext 9999 ended c-2: no change"},
		{ev(ledger.TypeConfig, `{"op":"put_user","principal":"admin-1"}`),
			projections.Effect{All: true, Changes: []string{"user jdoe set"}}, "config admin-1 put_user: user jdoe set"},
		{ev(ledger.TypeDayClosed, `{"day":"2026-11-23","by":"schedule"}`),
			projections.Effect{All: true}, "day_closed - seal 2026-11-23 by schedule: no change"},
		{ev(ledger.TypeTimer, `{"timer":"pause_expiry","contact_id":"01JDAX3Y8Z0000000000000000"}`),
			projections.Effect{Users: []string{"jdoe"}, Changes: []string{"c-77 paused→recording"}},
			"timer jdoe pause_expiry 01JDAX3Y8Z0000000000000000: c-77 paused→recording"},
		{ev("future", `{}`), projections.Effect{}, "future - future: no change"},
	} {
		if got := replay.TraceLine(tc.e, tc.eff); got != head+tc.want {
			t.Errorf("trace line\n got %q\nwant %q", got, head+tc.want)
		}
	}
}
