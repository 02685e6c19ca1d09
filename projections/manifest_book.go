package projections

import (
	"encoding/json"
	"fmt"

	"github.com/recledger/recledger/ledger"
)

// manifestBook keeps what the end-of-day manifests are cut from: the
// contacts closed since the last seal, and each sealed day's manifest.
//
// The fold (state.go) calls it at three points: when a contact closes
// (contactClosed), when a closed contact changes afterwards (contactUpdated:
// a tag or metadata on the last call), and when a day is sealed (dayClosed).
// Its exported fields are part of the checkpoint encoding.
type manifestBook struct {
	Pending []ledger.Contact           `json:"pending"`
	Sealed  map[string]json.RawMessage `json:"sealed"`  // day → canonical manifest bytes
	DayOf   map[string]string          `json:"day_of"`  // contact id → sealed day
	Order   []string                   `json:"order"`   // sealed days in seal order
	LastAt  ledger.Time                `json:"last_at"` // time of the last seal
}

func newManifestBook() manifestBook {
	return manifestBook{Sealed: map[string]json.RawMessage{}, DayOf: map[string]string{}}
}

// contactClosed records a contact that has just closed (disposition set).
func (b *manifestBook) contactClosed(c ledger.Contact) {
	b.Pending = append(b.Pending, c)
}

// contactUpdated records a change to an already closed contact.
func (b *manifestBook) contactUpdated(c ledger.Contact) {
	for i := range b.Pending {
		if b.Pending[i].ContactID == c.ContactID {
			b.Pending[i] = c
			return
		}
	}
}

// dayClosed seals d: the pending contacts become the manifest of d.Day.
// Sealing a day already sealed changes nothing.
func (b *manifestBook) dayClosed(e *ledger.Envelope, d ledger.DayClosed, cfg ledger.Config) ([]string, error) {
	if _, ok := b.Sealed[d.Day]; ok {
		return nil, nil
	}
	body, err := json.Marshal(map[string]any{"day": d.Day, "contacts": b.Pending, "head": e.Prev})
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Day, err)
	}
	for _, c := range b.Pending {
		b.DayOf[c.ContactID] = d.Day
	}
	b.Sealed[d.Day] = body
	b.Order = append(b.Order, d.Day)
	b.LastAt = e.Time
	b.Pending = nil
	return []string{"day " + d.Day + " sealed"}, nil
}

// day returns the sealed day of a contact, or "".
func (b *manifestBook) day(contactID string) string { return b.DayOf[contactID] }

// manifest returns the sealed manifest of day.
func (b *manifestBook) manifest(day string) ([]byte, error) {
	m, ok := b.Sealed[day]
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", day, ledger.ErrNotFound)
	}
	return m, nil
}
