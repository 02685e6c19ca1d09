package projections

import (
	"context"
	"fmt"

	"github.com/recledger/recledger/ledger"
)

// EachContact calls fn with the contacts Contacts returns, in the same
// order, one at a time, and stops at fn's first error. Contacts collects
// every matching contact of the history before it sorts them; EachContact
// holds only those that may still be overtaken (below), so that a query
// of the whole history stays within about a day's contacts. The contact
// is fn's only for the call.
//
// Contacts are ordered by start, but filed by the day they were uploaded
// with, so a sealed day can hold calls that started before the previous
// day's last ones (a call across the upload time). Each sealed day's
// section records the earliest start of its contacts (coldDay.First), so
// EachContact reads the days once, in order, keeping what it read merged
// and sorted, and hands over whatever starts before every day not yet
// read. What it holds at once is bounded by the longest call, not by the
// history.
func (s *State) EachContact(ctx context.Context, q ledger.ContactQuery, fn func(*ledger.Contact) error) error {
	return s.history(false).eachContact(ctx, q, s.memContacts(q), fn)
}

// eachContact is EachContact over the history h and the contacts in
// memory mem (which it sorts).
func (h *history) eachContact(ctx context.Context, q ledger.ContactQuery, mem []ledger.Contact, fn func(*ledger.Contact) error) error {
	days := make([]*coldDay, 0, len(h.cold))
	for i := range h.cold {
		if q.Day == "" || h.cold[i].Day == q.Day || h.cold[i].Day == "" {
			days = append(days, &h.cold[i])
		}
	}
	// after[i] is at or before the earliest start of the matching
	// contacts of days[i:]: the earliest start of all their contacts.
	after := make([]ledger.Time, len(days)+1)
	if len(days) > 1 {
		for i := len(days) - 1; i >= 0; i-- {
			first := days[i].First
			if first.IsZero() { // not recorded: read the day for it
				var err error
				if first, err = h.firstStart(ctx, q, days[i]); err != nil {
					return fmt.Errorf("contacts: %w", err)
				}
			}
			after[i] = earliest(first, after[i+1])
		}
	}
	sortContacts(mem)
	var held []ledger.Contact // read, sorted, not handed over yet
	// emit hands over, in order, the held and in-memory contacts that
	// start before until (all of them when until is zero).
	emit := func(until ledger.Time) error {
		n := 0
		for n < len(held) && (until.IsZero() || held[n].StartedAt.Before(until.Time)) {
			for len(mem) > 0 && compareContacts(&mem[0], &held[n]) < 0 {
				if err := fn(&mem[0]); err != nil {
					return err
				}
				mem = mem[1:]
			}
			if err := fn(&held[n]); err != nil {
				return err
			}
			n++
		}
		held = append(held[:0], held[n:]...)
		for len(mem) > 0 && (until.IsZero() || mem[0].StartedAt.Before(until.Time)) &&
			(len(held) == 0 || compareContacts(&mem[0], &held[0]) < 0) {
			if err := fn(&mem[0]); err != nil {
				return err
			}
			mem = mem[1:]
		}
		return nil
	}
	for i, d := range days {
		var err error
		if held, err = h.dayContacts(ctx, q, d, held); err != nil {
			return fmt.Errorf("contacts: %w", err)
		}
		sortContacts(held)
		// Nothing of the days still to read starts before after[i+1]
		// (zero: they have nothing, and everything can go).
		if err := emit(after[i+1]); err != nil {
			return err
		}
	}
	return emit(ledger.Time{})
}

// firstStart is the earliest start of d's contacts matching q; zero when
// none match.
func (h *history) firstStart(ctx context.Context, q ledger.ContactQuery, d *coldDay) (ledger.Time, error) {
	var first ledger.Time
	err := h.eachCold(ctx, d, func(ct *contact) bool {
		if coldMatches(q, ct) {
			first = earliest(first, ct.V.StartedAt)
		}
		return true
	}, coldKey{user: q.UserID})
	return first, err
}

// earliest is the earlier of a and b, zero standing for none.
func earliest(a, b ledger.Time) ledger.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a.Time)) {
		return b
	}
	return a
}
