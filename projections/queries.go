package projections

import (
	"fmt"
	"sort"

	"github.com/recledger/recledger/ledger"
)

// Seq is the seq of the last event applied.
func (s *State) Seq() uint64 { return s.seq }

// Config returns a copy of the configuration in force.
func (s *State) Config() ledger.Config { return cloneConfig(s.cfg) }

// Agent returns a user's recording state; ErrNotFound for an unknown user.
func (s *State) Agent(userID string) (ledger.AgentState, error) {
	a := s.agents[userID]
	if _, ok := s.cfg.Users[userID]; !ok && a == nil {
		return ledger.AgentState{}, fmt.Errorf("agent %s: %w", userID, ledger.ErrNotFound)
	}
	st := ledger.AgentState{UserID: userID, Extension: s.extensionOf(userID), ActiveCalls: []ledger.ActiveCall{}}
	if a == nil {
		return st, nil
	}
	st.LoggedIn = a.LoggedIn
	for _, k := range a.Calls {
		c := s.calls[k]
		if c == nil {
			continue
		}
		ac := ledger.ActiveCall{CallID: c.CallID, Recording: s.callState(c), ContactID: c.Contact}
		if ct := s.contacts[c.Contact]; ct != nil {
			ac.Tagged = hasCode(ct.V.ReasonCodes, ledger.ReasonTagged)
		}
		st.ActiveCalls = append(st.ActiveCalls, ac)
	}
	if a.LastCall != nil {
		lc := *a.LastCall
		st.LastCall = &lc
	}
	return st, nil
}

// Contacts returns the contacts matching q, ordered by start, then id.
// Contacts of the cold store (closed, of a sealed day) are decoded on
// demand: only that day's records when q.Day is set, all of them otherwise.
func (s *State) Contacts(q ledger.ContactQuery) []ledger.Contact {
	out := []ledger.Contact{}
	for _, ct := range s.contacts {
		if q.UserID != "" && ct.V.UserID != q.UserID {
			continue
		}
		if q.Disposition != "" && (ct.V.Disposition == nil || *ct.V.Disposition != q.Disposition) {
			continue
		}
		v := s.view(ct)
		if q.Day != "" && v.Day != q.Day {
			continue
		}
		out = append(out, v)
	}
	for i, d := range s.cold {
		if q.Day != "" && d.Day != q.Day {
			continue
		}
		s.eachCold(i, func(ct *contact) bool {
			if q.UserID != "" && ct.V.UserID != q.UserID {
				return true
			}
			if q.Disposition != "" && (ct.V.Disposition == nil || *ct.V.Disposition != q.Disposition) {
				return true
			}
			if v, ok := s.coldView(ct, d.Day); ok {
				out = append(out, v)
			}
			return true
		}, "")
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt.Time) {
			return out[i].StartedAt.Before(out[j].StartedAt.Time)
		}
		return out[i].ContactID < out[j].ContactID
	})
	return out
}

// Contact returns one contact; ErrNotFound when unknown. A contact no
// longer in memory is looked up in the cold store, newest day first.
func (s *State) Contact(id string) (ledger.Contact, error) {
	if ct := s.contacts[id]; ct != nil {
		return s.view(ct), nil
	}
	if ct, day := s.coldContact(id); ct != nil {
		if v, ok := s.coldView(ct, day); ok {
			return v, nil
		}
	}
	return ledger.Contact{}, fmt.Errorf("contact %s: %w", id, ledger.ErrNotFound)
}

// Pauses returns the pause intervals of q.UserID (all when empty) that
// overlap [q.From, q.To) (zero = open end), ordered by start, then the id
// of the event that opened them. An open pause extends to the end of time.
func (s *State) Pauses(q ledger.PauseQuery) []ledger.PauseRow {
	out := []ledger.PauseRow{}
	for i := range s.pauses.Len() {
		p := s.pauses.at(i)
		if q.UserID != "" && p.UserID != q.UserID {
			continue
		}
		if !q.To.IsZero() && !p.Start.Before(q.To.Time) {
			continue
		}
		if !q.From.IsZero() && !p.End.IsZero() && !p.End.After(q.From.Time) && !(p.End.Equal(p.Start.Time) && p.Start.Equal(q.From.Time)) {
			continue
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start.Time) {
			return out[i].Start.Before(out[j].Start.Time)
		}
		return out[i].OpenEventID < out[j].OpenEventID
	})
	return out
}

// UserConfig is what the config command returns for a user; ErrNotFound
// for an unknown user.
func (s *State) UserConfig(userID string) (ledger.UserConfig, error) {
	u, ok := s.cfg.Users[userID]
	if !ok {
		return ledger.UserConfig{}, fmt.Errorf("user config %s: %w", userID, ledger.ErrNotFound)
	}
	return s.userConfig(userID, u), nil
}

// Manifest returns the sealed manifest of day (canonical bytes);
// ErrNotFound until the day is sealed.
func (s *State) Manifest(day string) ([]byte, error) { return s.book.manifest(day) }

// SealedDays lists the sealed days in seal order.
func (s *State) SealedDays() []string { return append([]string{}, s.book.Order...) }

// LastSeal returns the last sealed day and when it was sealed; "" when none.
func (s *State) LastSeal() (day string, at ledger.Time) {
	if n := len(s.book.Order); n > 0 {
		return s.book.Order[n-1], s.book.LastAt
	}
	return "", ledger.Time{}
}

// NextTimer returns the earliest due pause expiry when max_pause_seconds is
// set: Due = pause start + max_pause_seconds; ties by open event id.
func (s *State) NextTimer() (ledger.TimerFired, bool) {
	max := s.cfg.Site.MaxPauseSeconds
	if max <= 0 || len(s.open) == 0 {
		return ledger.TimerFired{}, false
	}
	var best *ledger.PauseRow
	for _, i := range s.open {
		p := s.pauses.at(i)
		if best == nil || p.Start.Before(best.Start.Time) || (p.Start.Equal(best.Start.Time) && p.OpenEventID < best.OpenEventID) {
			best = &p
		}
	}
	return ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: best.ContactID, PauseOpenID: best.OpenEventID,
		Due: ledger.T(best.Start.Add(secondsDur(max)))}, true
}
