package projections

import (
	"hash/fnv"
	"time"

	"github.com/recledger/recledger/ledger"
)

// signalTime is when a call signal happened: its At, else the envelope time.
func signalTime(e *ledger.Envelope, d *ledger.CallSignal) ledger.Time {
	if d.At.IsZero() {
		return e.Time
	}
	return d.At
}

// otherParty is the number the exclusion list and the classifiers look at:
// DNIS for outbound calls, ANI otherwise.
func otherParty(direction, ani, dnis string) string {
	if direction == ledger.DirectionOutbound {
		return dnis
	}
	return ani
}

// matchAny reports whether s matches one of the patterns.
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ledger.MatchPattern(p, s) {
			return true
		}
	}
	return false
}

// startsCall reports whether a signal of type t starts a call not known
// yet.
func startsCall(t string) bool {
	return t == ledger.SignalRinging || t == ledger.SignalDialing || t == ledger.SignalAnswered
}

// lateNote is how long before the server took it a signal must be dated
// for the trace to say so.
const lateNote = time.Minute

// signal applies one CTI call signal.
func (s *State) signal(e *ledger.Envelope, d *ledger.CallSignal) Effect {
	var eff Effect
	c := s.callAt(d.CallID, d.Extension)
	// sent is the signal's time by its sender's clock, which the late
	// rule compares with the ends its sender dated (endAt); at is when
	// the call's media and contacts take it to have happened.
	sent := signalTime(e, d)
	at := sent
	if s.rules >= 5 && (c == nil || c.ReceiptBound) && at.After(e.Time.Time) {
		// Dated after the server took it: the sender's clock runs ahead.
		// Nothing is received before it happens (rules version 5).
		if !s.quiet {
			eff.Changes = append(eff.Changes, "signal "+d.Type+" for "+d.CallID+" dated "+at.String()+", after the server took it: at "+e.Time.String())
		}
		at = e.Time
	}
	if c != nil && c.User != "" {
		if c.users == nil || c.users[0] != c.User {
			c.users = s.usersOf(c.User)
		}
		eff.Users = c.users
	}
	if s.rules >= 4 {
		// A signal not after the end of a call with its id on its
		// extension is that call's, sent again or out of order: it neither
		// starts a call nor touches a later one that reuses the id.
		x := s.endsFor(c, d.Extension)
		if ec, ok := x.late(d.CallID, sent, e.Time); ok {
			if ec.User != "" {
				eff.Users = s.usersOf(ec.User)
			} else {
				eff.Users = s.usersAtExt(d.Extension)
			}
			eff.Ignored = IgnoredLate
			if !s.quiet {
				eff.Changes = append(eff.Changes, "signal ignored: "+d.Type+" for "+d.CallID+" on "+d.Extension+" at "+sent.String()+
					" is not after the end of that call at "+ec.At.String()+" (a late signal of the ended call)")
			}
			return eff
		}
	}
	if s.rules >= 4 && c != nil && sent.After(c.LastAt.Time) {
		c.LastAt = sent
	}
	if !s.quiet && e.Time.Sub(at.Time) >= lateNote && (c != nil || startsCall(d.Type)) {
		// The trace prints the ledger's time; a signal dated well before
		// it (resent after an outage, a feed behind) dates the call by
		// its own, and --until counts the ledger's (a walk could not see
		// why a contact of 07:00 was not in the state --until 07:30).
		// What the date does depends on the signal: only a start or an
		// end dates the call (a walk read "the call takes that date" for a
		// ringing on a call open for days, whose start stayed).
		what := "the call takes that date"
		switch {
		case c != nil && d.Type == ledger.SignalEnded:
			what = "the call ends at that date"
		case c != nil:
			what = "the call keeps its start, " + c.StartedAt.String()
		}
		eff.Changes = append(eff.Changes, "signal "+d.Type+" for "+d.CallID+" dated "+at.String()+", "+
			e.Time.Sub(at.Time).Round(time.Second).String()+" before the server took it: "+what+"; --until counts the server's")
	}
	switch d.Type {
	case ledger.SignalRinging, ledger.SignalDialing, ledger.SignalAnswered:
		if c != nil {
			fill(&c.Direction, d.Direction)
			fill(&c.ANI, d.ANI)
			fill(&c.DNIS, d.DNIS)
			if ct := s.openOf(c); ct != nil {
				fill(&ct.V.Direction, c.Direction)
				fill(&ct.V.ANI, c.ANI)
				fill(&ct.V.DNIS, c.DNIS)
			}
			if !s.quiet {
				eff.Changes = append(eff.Changes, d.CallID+" "+d.Type)
			}
			return eff
		}
		s.startCall(e, d, at, &eff)
	case ledger.SignalHeld, ledger.SignalRetrieved:
		if c == nil {
			eff.Ignored = IgnoredUnknownCall
			eff.Users = s.usersAtExt(d.Extension)
			if !s.quiet {
				eff.Changes = append(eff.Changes, "signal ignored: "+d.Type+" for unknown call "+d.CallID+" on "+d.Extension)
			}
			return eff
		}
		if !s.quiet {
			eff.Changes = append(eff.Changes, d.CallID+" "+d.Type)
		}
	case ledger.SignalEnded:
		if c == nil {
			eff.Users = s.usersAtExt(d.Extension)
			if s.rules >= 4 {
				// The end of a call not seen yet (its signals out of
				// order): its start, coming later, is late.
				s.ended.add(d.Extension, endedCall{CallID: d.CallID, At: sent, Seen: e.Time})
			}
			eff.Ignored = IgnoredUnknownCall
			if !s.quiet {
				eff.Changes = append(eff.Changes, "signal ignored: ended for unknown call "+d.CallID+" on "+d.Extension)
			}
			return eff
		}
		s.endCall(e, c, at, &eff)
	default:
		eff.Ignored = IgnoredUnknownType
		if !s.quiet {
			eff.Changes = append(eff.Changes, "signal ignored: unknown type "+d.Type)
		}
	}
	return eff
}

func fill(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// startCall makes a call active and starts recording it when the workflow
// says so (RULES.md "Automatic recording").
func (s *State) startCall(e *ledger.Envelope, d *ledger.CallSignal, at ledger.Time, eff *Effect) {
	k := callKey(d.CallID, d.Extension)
	c := s.newCall()
	dir := d.Direction
	if dir == "" && d.Type == ledger.SignalDialing && s.rules >= 6 {
		// The agent placed it: outbound, judged by the number dialed
		// (a rules walk's dialing to an excluded number was recorded).
		dir = ledger.DirectionOutbound
	}
	*c = call{CallID: d.CallID, Ext: d.Extension, Direction: dir, ANI: d.ANI, DNIS: d.DNIS,
		StartedAt: at, StartSeq: e.Seq, ReceiptBound: s.rules >= 5, key: k}
	if s.rules >= 4 {
		c.LastAt = signalTime(e, d) // by the sender's clock, as signal's sent
	}
	s.calls[k] = c
	user := s.userAt(d.Extension)
	if user == "" {
		if !s.quiet {
			eff.Changes = append(eff.Changes, d.CallID+" active on "+d.Extension+": no agent, call data only")
		}
		return
	}
	c.User = user
	m := s.memberOf(user)
	eff.Users = m.users
	a := s.agentIn(user, m)
	a.Calls = append(a.Calls, k)
	u, t := &m.u, &m.team
	c.Excluded = matchAny(t.Exclusion, otherParty(c.Direction, c.ANI, c.DNIS))
	included := u.IsGateway() || len(t.Inclusion) == 0 || matchAny(t.Inclusion, d.Extension)
	switch {
	case c.Excluded:
		if !s.quiet {
			eff.Changes = append(eff.Changes, d.CallID+" active for "+user+": not_recording (excluded)")
		}
	case !included:
		if !s.quiet {
			eff.Changes = append(eff.Changes, d.CallID+" active for "+user+": not_recording (not included)")
		}
	default:
		if !s.quiet {
			eff.Changes = append(eff.Changes, d.CallID+" active for "+user)
		}
		s.openContact(e, c, u, at, eff)
	}
}

// endCall ends a call: an open contact closes (an open pause ends
// call_end), and a recorded call becomes its agent's last call.
func (s *State) endCall(e *ledger.Envelope, c *call, at ledger.Time, eff *Effect) {
	k := c.keyOf()
	if c.Contact != "" {
		s.closeContact(e, c, at, ledger.EndedByCallEnd, "", eff)
	}
	if !s.quiet {
		eff.Changes = append(eff.Changes, c.CallID+" ended")
	}
	if c.User != "" {
		a := s.agentOf(c.User)
		a.removeCall(k)
		if c.LastContact != "" {
			a.setLastCall(c)
		}
	}
	if s.rules >= 4 {
		s.ended.add(c.Ext, endedCall{CallID: c.CallID, User: c.User, At: endAt(at, c.StartedAt, c.LastAt), Seen: e.Time})
	}
	delete(s.calls, k)
	s.freeCall(c)
}

// usersAtExt is the users of the agent at ext now, for the trace by user
// of a signal that changed nothing (nil when none).
func (s *State) usersAtExt(ext string) []string {
	if u := s.userAt(ext); u != "" {
		return s.usersOf(u)
	}
	return nil
}

// endsFor is the ends remembered on ext, for a signal of the active call
// c (nil when none): a call's own are looked up once. While c is active
// no end of its id on its extension can be added (its ended ends it), so
// what was there when it was first looked up is all that concerns it,
// and the list is the same pointer as it is pruned.
func (s *State) endsFor(c *call, ext string) *extEnds {
	if c == nil {
		return s.ended[ext]
	}
	if !c.endsSet {
		c.ends, c.endsSet = s.ended[ext], true
	}
	return c.ends
}

// callAt is the active call callID on ext, or nil. The key is built in a
// reused buffer: looking up allocates nothing.
func (s *State) callAt(callID, ext string) *call {
	b := append(s.keyBuf[:0], callID...)
	b = append(b, 0)
	b = append(b, ext...)
	s.keyBuf = b
	return s.calls[string(b)]
}

// keyOf is the call's key in State.calls (computed again for a call read
// from a checkpoint).
func (c *call) keyOf() string {
	if c.key == "" {
		c.key = callKey(c.CallID, c.Ext)
	}
	return c.key
}

// newCall returns a call struct for startCall, reusing one that ended.
func (s *State) newCall() *call {
	if n := len(s.spare); n > 0 {
		c := s.spare[n-1]
		s.spare = s.spare[:n-1]
		return c
	}
	return new(call)
}

// freeCall keeps an ended call's struct for the next call; nothing refers
// to a call once it has left State.calls. At most maxSpare are kept.
func (s *State) freeCall(c *call) {
	if len(s.spare) < maxSpare {
		*c = call{}
		s.spare = append(s.spare, c)
	}
}

const maxSpare = 256

// callState is the recording state of a call.
func (s *State) callState(c *call) string {
	if c.Deleted {
		return ledger.StateDeleted
	}
	if c.Contact == "" {
		return ledger.StateNotRecording
	}
	return s.openOf(c).Recording
}

// targetCallOf picks the call a command acts on (RULES.md "Target call")
// among the active calls of the agent state a (nil: none): the one being
// recorded that started recording first; if none is being recorded, the
// one that started first.
func (s *State) targetCallOf(a *agent) *call {
	if a == nil || len(a.Calls) == 0 {
		return nil
	}
	var rec, first *call
	for _, k := range a.Calls {
		c := s.calls[k]
		if c == nil {
			continue
		}
		if first == nil || c.StartSeq < first.StartSeq {
			first = c
		}
		if c.Contact != "" && !c.Deleted && (rec == nil || c.RecSeq < rec.RecSeq) {
			rec = c
		}
	}
	if rec != nil {
		return rec
	}
	return first
}

// sampled is the deterministic workflow sampling: fnv-32a(call id) mod 100.
func sampled(callID string, percent int) bool {
	return sample(callID) < percent
}

// sample is the call's sample, 0 to 99: the FNV-1a hash of its id,
// modulo 100. A classifier of percent P keeps the calls whose sample is
// below P.
func sample(callID string) int {
	h := fnv.New32a()
	h.Write([]byte(callID))
	return int(h.Sum32() % 100)
}
