package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// manifestBook keeps what the end-of-day manifests are cut from: the
// contacts closed since the last seal, the changes to contacts of earlier
// sealed days, and each sealed day's manifest (docs/manifests.md).
//
// The fold (state.go) calls it at three points: when a contact closes
// (contactClosed), when a closed contact changes afterwards
// (contactUpdatedAt: a tag or metadata on the last call), and when a day
// is sealed (dayClosed).
//
// Pending contacts are kept as their rendered manifest entries, not as
// contacts, so that the book stays small and a manifest is cut from the
// bytes recorded when each contact closed. Its exported fields are part of
// the checkpoint encoding; every map is encoded with sorted keys.
type manifestBook struct {
	Pending   map[string]pendingContact `json:"pending"`   // contact id → closed since the last seal, in memory
	Cooled    []section                 `json:"cooled"`    // the entries of the contacts closed since the last seal and cooled (manifest_cooled.go): kept sections
	CoolAt    int                       `json:"cool_at"`   // len(Pending) at which the fold next cools contacts (State.coolPending)
	Updates   map[string]pendingUpdate  `json:"updates"`   // contact id → latest change since the last seal, to a contact of a sealed day
	DayOf     map[string]string         `json:"day_of"`    // contact id → sealed day, for the contacts in memory
	Order     []string                  `json:"order"`     // sealed days in seal order
	Manifests []section                 `json:"manifests"` // Order[i]'s canonical manifest bytes, without the final newline: a section
	LastAt    ledger.Time               `json:"last_at"`   // time of the last seal
	LastSeq   uint64                    `json:"last_seq"`
	sealed    map[string]int            // day → index in Order; rebuilt, not in the checkpoint
}

// pendingContact is a contact closed since the last seal.
type pendingContact struct {
	EndedAt     ledger.Time     `json:"ended_at"`
	Disposition string          `json:"disposition"`
	Entry       json.RawMessage `json:"entry,omitempty"` // RenderContact; absent for discard
}

// pendingUpdate is the latest change to a contact of an earlier sealed day.
type pendingUpdate struct {
	Day   string          `json:"day"`
	Seq   uint64          `json:"seq"`
	Entry json.RawMessage `json:"entry"`
}

func newManifestBook() manifestBook {
	return manifestBook{
		Pending: map[string]pendingContact{},
		Updates: map[string]pendingUpdate{},
		DayOf:   map[string]string{},
		sealed:  map[string]int{},
	}
}

// ensure makes the maps of a book decoded from an older or empty
// checkpoint usable.
func (b *manifestBook) ensure() {
	if b.Pending == nil {
		b.Pending = map[string]pendingContact{}
	}
	if b.Updates == nil {
		b.Updates = map[string]pendingUpdate{}
	}
	if b.DayOf == nil {
		b.DayOf = map[string]string{}
	}
	if b.sealed == nil {
		b.sealed = make(map[string]int, len(b.Order))
		for i, d := range b.Order {
			b.sealed[d] = i
		}
	}
	for i := range b.Cooled {
		b.Cooled[i].keep = true
	}
}

// check checks the sealed days of a decoded checkpoint.
func (b *manifestBook) check() error {
	if len(b.Manifests) != len(b.Order) || len(b.sealed) != len(b.Order) {
		return fmt.Errorf("manifests: %w: %d manifests for %d sealed days", ledger.ErrCorrupt, len(b.Manifests), len(b.Order))
	}
	for i, m := range b.Manifests {
		if m.Len <= 0 || m.Key != Version+"/m/"+b.Order[i] {
			return fmt.Errorf("manifests: %w: section %q for day %s", ledger.ErrCorrupt, m.Key, b.Order[i])
		}
	}
	for _, c := range b.Cooled {
		if c.Len <= 0 || !strings.HasPrefix(c.Key, Version+"/e/") {
			return fmt.Errorf("manifests: %w: section %q of cooled entries", ledger.ErrCorrupt, c.Key)
		}
	}
	return nil
}

// closed records a contact that has just closed, as pendingOf renders it.
func (b *manifestBook) closed(id string, p pendingContact) {
	b.ensure()
	b.Pending[id] = p
}

func pending(c ledger.Contact) pendingContact {
	p := pendingContact{EndedAt: c.EndedAt, Disposition: ledger.DispositionDiscard}
	entry, err := RenderContact(c)
	if err != nil || entry == nil {
		return p
	}
	p.Disposition = *c.Disposition
	p.Entry = entry
	return p
}

// contactUpdatedAt records a change, made by the event at seq, to an
// already closed contact (never a cooled one: nothing changes those). A
// contact still pending is simply re-rendered; a
// contact of a sealed day becomes a metadata update in the next manifest
// (only its latest state is kept). A contact that is and stays discarded
// is not listed: nothing of it is uploaded.
func (b *manifestBook) contactUpdatedAt(seq uint64, c ledger.Contact) {
	b.ensure()
	if _, ok := b.Pending[c.ContactID]; ok {
		b.Pending[c.ContactID] = pending(c)
		return
	}
	day, ok := b.DayOf[c.ContactID]
	if !ok {
		// Not closed as far as the book knows: treat as a close.
		b.Pending[c.ContactID] = pending(c)
		return
	}
	entry, err := RenderContact(c)
	if err != nil || entry == nil {
		delete(b.Updates, c.ContactID)
		return
	}
	b.Updates[c.ContactID] = pendingUpdate{Day: day, Seq: seq, Entry: entry}
}

// dayClosed seals d: the pending contacts and updates become the manifest
// of d.Day. Sealing a day already sealed, or a day before the last sealed
// day, changes nothing: the contacts stay pending for the next seal.
func (b *manifestBook) dayClosed(e *ledger.Envelope, d ledger.DayClosed, cfg ledger.Config) ([]string, error) {
	b.ensure()
	if _, ok := b.sealed[d.Day]; ok {
		return []string{"day " + d.Day + " already sealed"}, nil
	}
	if n := len(b.Order); n > 0 && d.Day < b.Order[n-1] {
		return []string{"day " + d.Day + " is before the last sealed day " + b.Order[n-1] + ": not sealed"}, nil
	}
	m := Manifest{
		Format:          ManifestFormat,
		Day:             d.Day,
		Timezone:        cfg.Site.Timezone,
		SealedAt:        e.Time,
		SealedBy:        d.By,
		SealEventID:     e.ID.String(),
		SealSeq:         e.Seq,
		PreviousSealSeq: b.LastSeq,
		ChainHead:       e.Hash,
	}
	type closed struct {
		id string
		pendingContact
		cooled bool
	}
	n := len(b.Pending)
	for i := range b.Cooled {
		n += countRecords(b.Cooled[i].data)
	}
	all := make([]closed, 0, n)
	for id, p := range b.Pending {
		all = append(all, closed{id, p, false})
	}
	for i := range b.Cooled {
		err := eachCooled(&b.Cooled[i], func(id string, p pendingContact) { all = append(all, closed{id, p, true}) })
		if err != nil {
			return nil, fmt.Errorf("seal %s: %w", d.Day, err)
		}
	}
	slices.SortFunc(all, func(a, c closed) int {
		if n := a.EndedAt.Compare(c.EndedAt.Time); n != 0 {
			return n
		}
		return strings.Compare(a.id, c.id)
	})
	m.Contacts = make([]ManifestEntry, 0, len(all))
	for _, p := range all {
		switch p.Disposition {
		case ledger.DispositionUpload:
			m.Counts.Upload++
		case ledger.DispositionBasicOnly:
			m.Counts.BasicOnly++
		default:
			m.Counts.Discard++
		}
		if p.Entry != nil {
			m.Contacts = append(m.Contacts, p.Entry)
		}
	}
	m.Counts.Total = len(all)
	m.MetadataUpdates = make([]MetadataUpdate, 0, len(b.Updates))
	for id, u := range b.Updates {
		m.MetadataUpdates = append(m.MetadataUpdates, MetadataUpdate{ContactID: id, Day: u.Day, Seq: u.Seq, Contact: u.Entry})
	}
	sort.Slice(m.MetadataUpdates, func(i, j int) bool {
		a, c := m.MetadataUpdates[i], m.MetadataUpdates[j]
		if a.Seq != c.Seq {
			return a.Seq < c.Seq
		}
		return a.ContactID < c.ContactID
	})
	m.Counts.MetadataUpdates = len(m.MetadataUpdates)
	body, err := m.render(true)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", d.Day, err)
	}
	for _, p := range all {
		if !p.cooled {
			b.DayOf[p.id] = d.Day
		}
	}
	b.sealed[d.Day] = len(b.Order)
	b.Order = append(b.Order, d.Day)
	b.Manifests = append(b.Manifests, newSection("m/"+d.Day, bytes.TrimSuffix(body, []byte("\n"))))
	b.LastAt = e.Time
	b.LastSeq = e.Seq
	// The next day is likely as busy: size its map once, not by doubling.
	b.Pending = make(map[string]pendingContact, len(b.Pending))
	b.Cooled, b.CoolAt = nil, 0
	b.Updates = map[string]pendingUpdate{}
	return []string{fmt.Sprintf("day %s sealed: %d upload, %d basic_only, %d discard, %d metadata updates",
		d.Day, m.Counts.Upload, m.Counts.BasicOnly, m.Counts.Discard, m.Counts.MetadataUpdates)}, nil
}

// day returns the sealed day of a contact, or "".
func (b *manifestBook) day(contactID string) string { return b.DayOf[contactID] }

// manifest returns the canonical bytes of day's sealed manifest, reading
// its section through r when the book no longer holds it.
func (b *manifestBook) manifest(ctx context.Context, r SectionReader, day string) ([]byte, error) {
	sec, ok := b.section(day)
	return readManifest(ctx, r, day, sec, ok)
}

// section returns the section of day's sealed manifest; false until sealed.
func (b *manifestBook) section(day string) (section, bool) {
	i, ok := b.sealed[day]
	if !ok {
		return section{}, false
	}
	return b.Manifests[i], true
}

// readManifest returns the canonical bytes of the manifest of day in sec
// (ErrNotFound when !sealed).
func readManifest(ctx context.Context, r SectionReader, day string, sec section, sealed bool) ([]byte, error) {
	if !sealed {
		return nil, fmt.Errorf("manifest %s: %w", day, ledger.ErrNotFound)
	}
	m, err := sec.load(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", day, err)
	}
	out := make([]byte, 0, len(m)+1)
	return append(append(out, m...), '\n'), nil
}
