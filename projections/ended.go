package projections

import (
	"time"

	"github.com/recledger/recledger/ledger"
)

// endedWindow is how long, in ledger time (the envelopes' times), the
// fold remembers when a call ended (endedCalls).
const endedWindow = time.Hour

// endedCalls remembers the calls that ended in the last endedWindow of
// ledger time (rules version 4 on): a ringing, dialing or answered for a
// call id and extension whose time is not after the end of that call is
// a late signal of the ended call, sent again or out of order by a feed,
// not a new call with the id reused (a new call starts after the old one
// ended). Memory grows with the calls of an hour, not with history.
type endedCalls struct {
	list []endedCall          // in ledger order; the checkpoint holds it
	at   map[string]endedCall // call key → its latest end, rebuilt from list
}

// endedCall is one call's end.
type endedCall struct {
	Key  string      `json:"key"`            // callKey(call id, extension)
	User string      `json:"user,omitempty"` // the agent it was active for
	At   ledger.Time `json:"at"`             // the end's signal time
	Seen ledger.Time `json:"seen"`           // the ended event's envelope time
}

// add remembers c's end, and forgets the ends seen more than endedWindow
// before it.
func (m *endedCalls) add(c endedCall) {
	if m.at == nil {
		m.index()
	}
	from := c.Seen.Add(-endedWindow)
	n := 0
	for n < len(m.list) && m.list[n].Seen.Before(from) {
		if old := m.list[n]; m.at[old.Key] == old {
			delete(m.at, old.Key)
		}
		n++
	}
	m.list = append(m.list[n:], c)
	m.at[c.Key] = c
}

// late reports the end of the call key when at is not after it, unless
// that end was seen more than endedWindow before now (the signal's
// envelope time).
func (m *endedCalls) late(key string, at, now ledger.Time) (endedCall, bool) {
	c, ok := m.at[key]
	if !ok || at.After(c.At.Time) || c.Seen.Before(now.Add(-endedWindow)) {
		return endedCall{}, false
	}
	return c, true
}

// index rebuilds the lookup from the list (after a checkpoint's load).
func (m *endedCalls) index() {
	m.at = make(map[string]endedCall, len(m.list))
	for _, c := range m.list {
		m.at[c.Key] = c
	}
}
