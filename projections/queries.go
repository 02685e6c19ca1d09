package projections

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Seq is the seq of the last event applied.
func (s *State) Seq() uint64 { return s.seq }

// Config returns a copy of the configuration in force.
func (s *State) Config() ledger.Config { return cloneConfig(s.cfg) }

// Site is the site's settings: what Config().Site is, without copying
// every user (the seal scheduler reads it at each configuration change).
func (s *State) Site() ledger.Site { return s.cfg.Site }

// Location is the site's time zone as the fold dates contacts with it
// (UTC until a zone is configured, or when it cannot be loaded).
func (s *State) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

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
			ac.Tagged = hasCode(ct.V.ReasonCodes, ledger.CodeTagged)
		}
		st.ActiveCalls = append(st.ActiveCalls, ac)
	}
	if a.LastCall != nil {
		lc := *a.LastCall
		st.LastCall = &lc
	}
	return st, nil
}

// Agents returns the state of every agent, configured or seen in a
// command or a call signal, ordered by user id.
func (s *State) Agents() []ledger.AgentState {
	ids := make([]string, 0, len(s.cfg.Users)+len(s.agents))
	for id := range s.cfg.Users {
		ids = append(ids, id)
	}
	for id := range s.agents {
		if _, ok := s.cfg.Users[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]ledger.AgentState, 0, len(ids))
	for _, id := range ids {
		a, _ := s.Agent(id) // every id is configured or seen: no error
		out = append(out, a)
	}
	return out
}

// Contacts returns the contacts matching q, ordered by start, then id.
// Contacts of the cold store (closed, of a sealed day) are decoded on
// demand: only that day's sections when q.Day is set, all of them
// otherwise, read back through the SectionReader when the state no longer
// holds them.
func (s *State) Contacts(ctx context.Context, q ledger.ContactQuery) ([]ledger.Contact, error) {
	return s.history(false).contacts(ctx, q, s.memContacts(q))
}

// memContacts returns the views of the contacts in memory matching q.
func (s *State) memContacts(q ledger.ContactQuery) []ledger.Contact {
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
	return out
}

// contacts adds the cold contacts matching q to mem and sorts them.
func (h *history) contacts(ctx context.Context, q ledger.ContactQuery, mem []ledger.Contact) ([]ledger.Contact, error) {
	out, err := h.coldContacts(ctx, q, mem)
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	sortContacts(out)
	return out, nil
}

// sortContacts sorts cs by start, then id.
func sortContacts(cs []ledger.Contact) {
	sort.Slice(cs, func(i, j int) bool { return compareContacts(&cs[i], &cs[j]) < 0 })
}

// compareContacts orders contacts by start, then id.
func compareContacts(a, b *ledger.Contact) int {
	if c := a.StartedAt.Compare(b.StartedAt.Time); c != 0 {
		return c
	}
	return strings.Compare(a.ContactID, b.ContactID)
}

// Contact returns one contact; ErrNotFound when unknown. A contact no
// longer in memory is looked up in the cold store, newest section first.
func (s *State) Contact(ctx context.Context, id string) (ledger.Contact, error) {
	if ct := s.contacts[id]; ct != nil {
		return s.view(ct), nil
	}
	return s.history(false).contact(ctx, id)
}

// contact looks a contact up in the cold store.
func (h *history) contact(ctx context.Context, id string) (ledger.Contact, error) {
	ct, day, err := h.coldContact(ctx, id)
	if err != nil {
		return ledger.Contact{}, fmt.Errorf("contact %s: %w", id, err)
	}
	if ct == nil {
		return ledger.Contact{}, fmt.Errorf("contact %s: %w", id, ledger.ErrNotFound)
	}
	return h.coldView(ctx, ct, day)
}

// Pauses returns the pause intervals of q.UserID (all when empty) that
// overlap [q.From, q.To) (zero = open end), ordered by start, then the id
// of the event that opened them. An open pause extends to the end of time.
// The rows encoded at past seals are read chunk by chunk, skipping the
// chunks whose rows all lie outside [q.From, q.To).
func (s *State) Pauses(ctx context.Context, q ledger.PauseQuery) ([]ledger.PauseRow, error) {
	return s.history(false).pauses(ctx, q, s.hotPauses(q))
}

// EachPause calls fn with the rows Pauses returns, in the same order, one
// at a time: the rows of past seals a chunk at a time, so that a query of
// the whole history holds one chunk, not all of it. It stops at fn's
// first error and returns it. The row is fn's only for the call.
//
// The pause log is in the order Pauses sorts by: a row's start is the
// time of the event that opened it, and a ledger's event times never go
// back. A row that breaks that order (a ledger whose times do: not one
// this code wrote) stops EachPause with an error wrapping
// ledger.ErrUnordered before fn sees it; Pauses, which sorts, still
// answers.
func (s *State) EachPause(ctx context.Context, q ledger.PauseQuery, fn func(*ledger.PauseRow) error) error {
	return s.history(false).eachPause(ctx, q, s.hotPauses(q), fn)
}

// hotPauses returns the rows opened since the last seal that match q.
func (s *State) hotPauses(q ledger.PauseQuery) []ledger.PauseRow {
	var out []ledger.PauseRow
	for i := range s.pauses.hot {
		if pauseMatches(q, &s.pauses.hot[i]) {
			out = append(out, s.pauses.hot[i])
		}
	}
	return out
}

// pauseMatches reports whether row p is one of q's.
func pauseMatches(q ledger.PauseQuery, p *ledger.PauseRow) bool {
	if q.UserID != "" && p.UserID != q.UserID {
		return false
	}
	if q.ContactID != "" && !strings.EqualFold(p.ContactID, q.ContactID) { // a ULID, read in any case
		return false
	}
	if q.CallID != "" && p.CallID != q.CallID {
		return false
	}
	if !q.To.IsZero() && !p.Start.Before(q.To.Time) {
		return false
	}
	if !q.From.IsZero() && !p.End.IsZero() && !p.End.After(q.From.Time) && !(p.End.Equal(p.Start.Time) && p.Start.Equal(q.From.Time)) {
		return false
	}
	return true
}

// pauses returns the encoded rows matching q, then hot, sorted.
func (h *history) pauses(ctx context.Context, q ledger.PauseQuery, hot []ledger.PauseRow) ([]ledger.PauseRow, error) {
	out := []ledger.PauseRow{}
	err := h.walkPauses(ctx, q, hot, func(p *ledger.PauseRow) error {
		out = append(out, *p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !pausesSorted(out) { // only a ledger whose times go back
		sort.SliceStable(out, func(i, j int) bool { return comparePauses(&out[i], &out[j]) < 0 })
	}
	return out, nil
}

// pausesSorted reports whether rows are in comparePauses' order.
func pausesSorted(rows []ledger.PauseRow) bool {
	for i := 1; i < len(rows); i++ {
		if comparePauses(&rows[i], &rows[i-1]) < 0 {
			return false
		}
	}
	return true
}

// eachPause is walkPauses with the order checked: see EachPause.
func (h *history) eachPause(ctx context.Context, q ledger.PauseQuery, hot []ledger.PauseRow, fn func(*ledger.PauseRow) error) error {
	var last ledger.PauseRow // its start and open event id: what comparePauses reads
	first := true
	return h.walkPauses(ctx, q, hot, func(p *ledger.PauseRow) error {
		if !first && comparePauses(p, &last) < 0 {
			return fmt.Errorf("pauses: %w: row opened by %s starts before the one opened by %s", ledger.ErrUnordered, p.OpenEventID, last.OpenEventID)
		}
		first, last.Start, last.OpenEventID = false, p.Start, p.OpenEventID
		return fn(p)
	})
}

// comparePauses orders rows by start, then by the id of the event that
// opened them.
func comparePauses(a, b *ledger.PauseRow) int {
	if c := a.Start.Compare(b.Start.Time); c != 0 {
		return c
	}
	return strings.Compare(a.OpenEventID, b.OpenEventID)
}

// walkPauses calls fn with the rows matching q in the log's order: the
// encoded ones, a chunk decoded at a time (patched rows in their place),
// then hot.
func (h *history) walkPauses(ctx context.Context, q ledger.PauseQuery, hot []ledger.PauseRow, fn func(*ledger.PauseRow) error) error {
	keep := func(p *ledger.PauseRow) error {
		if pauseMatches(q, p) {
			return fn(p)
		}
		return nil
	}
	for k := range h.chunks {
		c := &h.chunks[k]
		if outside(c, q) {
			// Only the rows changed since the chunk was cut can be in range.
			for i := c.First; i < c.First+c.Rows; i++ {
				if p, ok := h.patched[i]; ok {
					if err := keep(p); err != nil {
						return err
					}
				}
			}
			continue
		}
		b, err := h.bytes(ctx, &c.Sec)
		if err != nil {
			return fmt.Errorf("pauses: %w", err)
		}
		rows, err := decodeChunk(c, b)
		if err != nil {
			return fmt.Errorf("pauses: %w", err)
		}
		for j := range rows {
			p := &rows[j]
			if patched, ok := h.patched[c.First+j]; ok {
				p = patched
			}
			if err := keep(p); err != nil {
				return err
			}
		}
	}
	for i := range hot {
		if err := keep(&hot[i]); err != nil {
			return err
		}
	}
	return nil
}

// outside reports whether every row of chunk c, as encoded, is outside
// [q.From, q.To): all start at or after To, or all ended before From.
func outside(c *pauseChunk, q ledger.PauseQuery) bool {
	if !q.To.IsZero() && !c.Start.Before(q.To.Time) {
		return true
	}
	return !q.From.IsZero() && !c.End.IsZero() && c.End.Before(q.From.Time)
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
func (s *State) Manifest(ctx context.Context, day string) ([]byte, error) {
	return s.book.manifest(ctx, s.reader, day)
}

// OpenContactsOfTeam lists, sorted, the open contacts of team: the
// contacts of active calls that opened in it (its workflow decides them
// when they close).
func (s *State) OpenContactsOfTeam(team string) []string {
	var ids []string
	for _, c := range s.calls {
		if ct := s.contacts[c.Contact]; c.Contact != "" && ct != nil && ct.Open && ct.V.Team == team {
			ids = append(ids, c.Contact)
		}
	}
	slices.Sort(ids)
	return ids
}

// SealedDays lists the sealed days in seal order.
func (s *State) SealedDays() []string { return append([]string{}, s.book.Order...) }

// EarliestPending is the earliest time a contact closed since the last
// seal happened at: the end of those in memory, the start of those
// cooled (coldDay.First, earlier than their ends); ok is false when none
// closed since. A seal puts all of them in the day it seals.
func (s *State) EarliestPending() (at ledger.Time, ok bool) {
	for _, p := range s.book.Pending {
		if !ok || p.EndedAt.Before(at.Time) {
			at, ok = p.EndedAt, true
		}
	}
	for i := range s.cold {
		if d := &s.cold[i]; d.Day == "" && !d.First.IsZero() && (!ok || d.First.Before(at.Time)) {
			at, ok = d.First, true
		}
	}
	return at, ok
}

// LastSeal returns the last sealed day and when it was sealed; "" when none.
func (s *State) LastSeal() (day string, at ledger.Time) {
	if n := len(s.book.Order); n > 0 {
		return s.book.Order[n-1], s.book.LastAt
	}
	return "", ledger.Time{}
}

// NextTimer returns the earliest due pause expiry when max_pause_seconds is
// set: Due = pause start + max_pause_seconds, or the time the limit took
// its value when that is later (a pause open before it had lasted too
// long expires at the change); ties by open event id.
func (s *State) NextTimer() (ledger.TimerFired, bool) {
	// Bounded as configuration is validated now: a ledger written before
	// that may hold a larger value, which overflowed the due time.
	max := min(s.cfg.Site.MaxPauseSeconds, ledger.MaxPauseSecondsLimit)
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
	due := best.Start.Add(secondsDur(max))
	if due.Before(s.limitAt.Time) {
		due = s.limitAt.Time
	}
	return ledger.TimerFired{Timer: ledger.TimerPauseExpiry, ContactID: best.ContactID, PauseOpenID: best.OpenEventID,
		Due: ledger.T(due)}, true
}

// CallCounts are the active calls: how many, how many with no agent
// (call data only), and the earliest start among them (zero when none).
// A call is active until its `ended`: a feed that never sends one keeps
// its calls, and the memory they take, for good; these show it.
type CallCounts struct {
	Active       int
	WithoutAgent int
	OldestStart  ledger.Time
}

// CallCounts counts the active calls.
func (s *State) CallCounts() CallCounts {
	var c CallCounts
	for _, cl := range s.calls {
		c.Active++
		if cl.User == "" {
			c.WithoutAgent++
		}
		if c.OldestStart.IsZero() || cl.StartedAt.Before(c.OldestStart.Time) {
			c.OldestStart = cl.StartedAt
		}
	}
	return c
}
