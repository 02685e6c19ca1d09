package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// The last line of a user's trace names every active call with its
// contact (or none) and its tag, and the time only when it is known.
func TestAgentLine(t *testing.T) {
	at := ledger.T(time.Date(2026, 11, 23, 14, 2, 11, 120e6, time.UTC))
	two := &ledger.AgentState{UserID: "jdoe", Extension: "3420", LoggedIn: true, ActiveCalls: []ledger.ActiveCall{
		{CallID: "c-77", Recording: "paused", ContactID: "01JDAX3Y8Z0000000000000000", Tagged: true},
		{CallID: "c-78", Recording: "not_recording"},
	}, LastCall: &ledger.LastCall{CallID: "c-76", ContactID: "01JDAX3Y8Z0000000000000001"}}
	for _, tc := range []struct {
		at   replay.AgentAt
		want string
	}{
		{replay.AgentAt{Seq: 42, Time: at, Agent: two},
			"jdoe at seq 42 (2026-11-23T14:02:11.120Z): logged in on 3420; active c-77 paused (contact 01JDAX3Y8Z0000000000000000, tagged), " +
				"c-78 not_recording (no contact); last call c-76 (contact 01JDAX3Y8Z0000000000000001)"},
		{replay.AgentAt{Seq: 0, Agent: &ledger.AgentState{UserID: "jdoe"}},
			"jdoe at seq 0: not logged in, no extension; no active call; no last call"},
	} {
		if got := replay.AgentLine("jdoe", tc.at); got != tc.want {
			t.Errorf("agent line\n got %q\nwant %q", got, tc.want)
		}
	}
}

// Agent dates the state by the replay's last event only when the state
// ends there; an unknown user is no error.
func TestAgentAt(t *testing.T) {
	d := writeDay(t, nil)
	st, stats, err := replay.Run(context.Background(), d.store, replay.Options{Until: replay.UntilSeq(7)})
	if err != nil {
		t.Fatal(err)
	}
	at, err := replay.Agent(st, "jdoe", stats.Last)
	if err != nil || at.Seq != 7 || !at.Time.Equal(stats.Last.Time.Time) || at.Agent == nil || at.Agent.UserID != "jdoe" {
		t.Fatalf("jdoe at 7: %+v, %v", at, err)
	}
	if at, err := replay.Agent(st, "jdoe", d.envs[3]); err != nil || at.Seq != 7 || !at.Time.IsZero() {
		t.Fatalf("with another event as the last: %+v, %v; want no time", at, err)
	}
	if at, err := replay.Agent(st, "nobody", stats.Last); err != nil || at.Agent != nil || at.Seq != 7 {
		t.Fatalf("unknown user: %+v, %v", at, err)
	}
}
