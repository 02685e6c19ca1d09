package replay

import (
	"errors"
	"strconv"
	"strings"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// AgentAt is one user's state where a replay stopped: what GET
// /v1/agents/{user_id} would have answered after event Seq (the state's
// last event; Seq 0 and no Time before the first). Agent is nil for an
// unknown user, where the API answers 404.
type AgentAt struct {
	Seq   uint64             `json:"seq"`
	Time  ledger.Time        `json:"time,omitzero"`
	Agent *ledger.AgentState `json:"agent"`
}

// Agent reads user's state from st, folded up to last (the replay's
// last event, as Stats.Last gives it).
func Agent(st *projections.State, user string, last ledger.Envelope) (AgentAt, error) {
	at := AgentAt{Seq: st.Seq()}
	if last.Seq == at.Seq {
		at.Time = last.Time
	}
	a, err := st.Agent(user)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return at, nil
	case err != nil:
		return at, err
	}
	at.Agent = &a
	return at, nil
}

// AgentLine formats a user's state as the last line of its trace (no
// newline), e.g.
//
//	jdoe at seq 42 (2026-11-23T14:02:11.120Z): logged in on 3420; active c-77 paused (contact 01…, tagged); last call c-76 (contact 01…)
func AgentLine(user string, at AgentAt) string {
	var b strings.Builder
	b.WriteString(user)
	b.WriteString(" at seq ")
	b.WriteString(strconv.FormatUint(at.Seq, 10))
	if !at.Time.IsZero() {
		b.WriteString(" (" + at.Time.String() + ")")
	}
	b.WriteString(": ")
	a := at.Agent
	if a == nil {
		b.WriteString("unknown user (not configured, and no login or call of theirs)")
		return b.String()
	}
	switch {
	case a.LoggedIn:
		b.WriteString("logged in on " + a.Extension)
	case a.Extension != "":
		b.WriteString("not logged in (extension " + a.Extension + ")")
	default:
		b.WriteString("not logged in, no extension")
	}
	if len(a.ActiveCalls) == 0 {
		b.WriteString("; no active call")
	}
	for i, c := range a.ActiveCalls {
		if i == 0 {
			b.WriteString("; active ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(c.CallID + " " + c.Recording)
		if c.ContactID == "" {
			b.WriteString(" (no contact)")
		} else {
			b.WriteString(" (contact " + c.ContactID)
			if c.Tagged {
				b.WriteString(", tagged")
			}
			b.WriteString(")")
		}
	}
	if a.LastCall == nil {
		b.WriteString("; no last call")
	} else {
		b.WriteString("; last call " + a.LastCall.CallID + " (contact " + a.LastCall.ContactID + ")")
	}
	return b.String()
}
