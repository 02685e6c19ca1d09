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
// old one ended). Older ends are forgotten as calls end on the extension
// and at each seal (prune): memory grows with the calls of an hour, not
// with history. The checkpoint holds it as it is (encoding/json sorts the
// map's keys).
type endedCalls map[string]*extEnds

// extEnds is one extension's ends, in ledger order.
type extEnds struct {
	List   []endedCall `json:"list"`
	latest ledger.Time // no At of List is later (index makes it after a load; pruning may leave it later than all)
}

// endedCall is one call's end.
type endedCall struct {
	CallID string      `json:"call_id"`
	User   string      `json:"user,omitempty"` // the agent it was active for
	At     ledger.Time `json:"at"`             // the end's signal time
	Seen   ledger.Time `json:"seen"`           // the ended event's envelope time
}

// endAt is the end remembered for a call that started at start, whose
// latest signal was at last, and that ended at at: never before either
// (an end dated before its call's start, or before its answered by a
// feed clock that stepped back, remembered so, made a resend of the
// earlier signals a second call, which nothing ended). It is not bounded
// by when the ledger learnt it: a feed whose clock runs ahead of the
// server's sends ends still in the future, and its own resends, dated by
// that clock, must stay late; what that costs is a call that reuses the
// id within the lead, sent without its own time, taken for late
// (docs/rules-decisions.md).
func endAt(at, start, last ledger.Time) ledger.Time { return later(later(start, last), at) }

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

// late reports the latest end of callID among x's (an extension's ends,
// nil when it has none) when at is not after it,
// unless that end was seen more than endedWindow before now (the
// signal's envelope time).
func (x *extEnds) late(callID string, at, now ledger.Time) (endedCall, bool) {
	if x == nil {
		return endedCall{}, false
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

// index makes each list's latest after a checkpoint's load. Too early a
// latest would make late take a late signal for a new call (an upgrade
// walk found a restart doing so, and the live state then differed from a
// replay's); one later than every end only costs late a search.
func (m endedCalls) index() {
	for _, x := range m {
		x.latest = ledger.Time{}
		for _, c := range x.List {
			if c.At.After(x.latest.Time) {
				x.latest = c.At
			}
		}
	}
}

// prune forgets, on every extension, the ends seen more than endedWindow
// before now, and the extensions left with none: add prunes only the
// extension a call ends on, so an extension gone quiet would keep its
// ends for good. The fold calls it at each seal.
func (m endedCalls) prune(now ledger.Time) {
	from := now.Add(-endedWindow)
	for ext, x := range m {
		n := 0
		for n < len(x.List) && x.List[n].Seen.Before(from) {
			n++
		}
		if n == len(x.List) {
			x.List = nil // a call may still hold x (endsFor)
			delete(m, ext)
		} else if n > 0 {
			x.List = append(x.List[:0], x.List[n:]...)
		}
	}
}
