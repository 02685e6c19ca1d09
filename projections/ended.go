package projections

import (
	"time"

	"github.com/recledger/recledger/ledger"
)

// endedWindow is how long, in ledger time (the envelopes' times), the
// fold remembers when a call ended (endedCalls).
const endedWindow = time.Hour

// endedCalls remembers, per extension, the calls that ended there in the
// last endedWindow of ledger time (rules version 4 on), and the ends of
// calls not seen yet: a signal for a call id and extension whose time is
// not after the end of that call is a late signal of the ended call,
// sent again or out of order by a feed; it neither starts a call nor
// touches a later one that reuses the id (a new call starts after the
// old one ended). Memory grows with the
// extensions and the calls of an hour, not with history. The checkpoint
// holds it as it is (encoding/json sorts the map's keys).
type endedCalls map[string]*extEnds

// extEnds is one extension's ends, in ledger order.
type extEnds struct {
	List   []endedCall `json:"list"`
	latest ledger.Time // the latest At of List, made again after a load (see late)
}

// endedCall is one call's end.
type endedCall struct {
	CallID string      `json:"call_id"`
	User   string      `json:"user,omitempty"` // the agent it was active for
	At     ledger.Time `json:"at"`             // the end's signal time
	Seen   ledger.Time `json:"seen"`           // the ended event's envelope time
}

// endAt is the end remembered for a call that started at start and ended
// at at, learnt at seen: never before its start (a contact never ends
// before it), nor after the server learnt of it, so that a feed clock
// running ahead cannot make a later call with the id, sent without its
// own time, look late.
func endAt(at, start, seen ledger.Time) ledger.Time {
	at = later(start, at)
	if at.After(seen.Time) {
		return seen
	}
	return at
}

// add remembers the end c of a call on ext, and forgets the ends on ext
// seen more than endedWindow before it.
func (m *endedCalls) add(ext string, c endedCall) {
	if *m == nil {
		*m = endedCalls{}
	}
	x := (*m)[ext]
	if x == nil {
		x = &extEnds{}
		(*m)[ext] = x
	}
	from := c.Seen.Add(-endedWindow)
	n := 0
	for n < len(x.List) && x.List[n].Seen.Before(from) {
		n++
	}
	if n > 0 {
		x.List = append(x.List[:0], x.List[n:]...)
	}
	x.List = append(x.List, c)
	if c.At.After(x.latest.Time) {
		x.latest = c.At
	}
}

// late reports the latest end of callID on ext when at is not after it,
// unless that end was seen more than endedWindow before now (the
// signal's envelope time).
func (m endedCalls) late(ext, callID string, at, now ledger.Time) (endedCall, bool) {
	x := m[ext]
	if x == nil {
		return endedCall{}, false
	}
	if x.latest.IsZero() { // read from a checkpoint
		for _, c := range x.List {
			if c.At.After(x.latest.Time) {
				x.latest = c.At
			}
		}
	}
	if at.After(x.latest.Time) { // after every end on ext: most calls
		return endedCall{}, false
	}
	for i := len(x.List) - 1; i >= 0; i-- {
		if c := x.List[i]; c.CallID == callID {
			if at.After(c.At.Time) || c.Seen.Before(now.Add(-endedWindow)) {
				return endedCall{}, false
			}
			return c, true
		}
	}
	return endedCall{}, false
}
