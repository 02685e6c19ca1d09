package projections

import (
	"time"

	"github.com/recledger/recledger/ledger"
)

// openPause opens a pause interval on the contact at at, sent by user over
// transport in event e.
func (s *State) openPause(e *ledger.Envelope, ct *contact, at ledger.Time, user, transport string) {
	id := s.eventID(e)
	i := s.pauses.add(ledger.PauseRow{
		ContactID: ct.V.ContactID, CallID: ct.V.CallID, UserID: ct.V.UserID, Extension: ct.V.Extension,
		Start: at, PausedBy: user, Transport: transport, OpenEventID: id,
	})
	ct.Rows = append(ct.Rows, i)
	ct.OpenPause = i
	ct.Recording = ledger.StatePaused
	s.open[id] = i
}

// closePause closes the contact's open pause at at (clamped to its start),
// ended by endedBy, closed by event e sent by by ("" = the system).
func (s *State) closePause(e *ledger.Envelope, ct *contact, at ledger.Time, endedBy, by string, eff *Effect) {
	p := s.pauses.ptr(ct.OpenPause)
	p.End = later(p.Start, at)
	p.EndedBy = endedBy
	p.Seconds = float64(p.End.Sub(p.Start.Time)/time.Millisecond) / 1000
	p.ResumedBy = by
	if by == "" {
		p.ResumedBy = ledger.ResumedByCTI
		if endedBy == ledger.EndedByTimeout {
			p.ResumedBy = ledger.ResumedByTimer
		}
	}
	p.CloseEventID = s.eventID(e)
	p.ResumeTransport = s.transportOf(e)
	delete(s.open, p.OpenEventID)
	ct.OpenPause = -1
	ct.Recording = ledger.StateRecording
	if !s.quiet {
		eff.Changes = append(eff.Changes, ct.V.CallID+" pause closed ("+endedBy+")")
	}
}

// transportOf is how event e, being applied, arrived: its command's or
// call signal's transport (the decode buffers hold it), "" for the
// server's own events.
func (s *State) transportOf(e *ledger.Envelope) string {
	switch e.Type {
	case ledger.TypeCommand:
		return s.cmdBuf.Transport
	case ledger.TypeCallSignal:
		return s.sigBuf.Transport
	}
	return ""
}

// timer applies a server timer. pause_expiry closes the pause it names with
// ended_by timeout at its due time, when that pause is still open.
func (s *State) timer(e *ledger.Envelope, d *ledger.TimerFired) Effect {
	var eff Effect
	if d.Timer != ledger.TimerPauseExpiry {
		if !s.quiet {
			eff.Changes = []string{"timer ignored: unknown timer " + d.Timer}
		}
		return eff
	}
	i, ok := s.open[d.PauseOpenID]
	if !ok {
		if !s.quiet {
			eff.Changes = []string{"timer ignored: pause already closed"}
		}
		return eff
	}
	ct := s.contacts[s.pauses.at(i).ContactID]
	at := d.Due
	if at.IsZero() {
		at = e.Time
	}
	eff.Users = []string{ct.V.UserID}
	s.closePause(e, ct, at, ledger.EndedByTimeout, "", &eff)
	if !s.quiet {
		change := ct.V.CallID + " paused→recording"
		if e.Time.Sub(at.Time) >= time.Second {
			// A server that was down appends the expiry when it is back:
			// the row ends when it was due, the ledger learns it now. (An
			// expiry appended on time is a few milliseconds after due.)
			change += " (due " + at.String() + ")"
		}
		eff.Changes = append(eff.Changes, change)
	}
	return eff
}
