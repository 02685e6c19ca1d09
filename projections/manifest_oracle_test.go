package projections

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/recledger/recledger/ledger"
)

// What the manifest tests check the fold's manifests with: a second,
// plain way to the same bytes, not used by the product.

// silences clips every pause to every segment. A pause still open (no end)
// runs to the segment's end; an empty intersection is left out.
func silences(segs []ledger.Segment, pauses []ledger.Pause) []ManifestSegment {
	out := make([]ManifestSegment, 0, len(segs))
	for _, sg := range segs {
		ms := ManifestSegment{Start: sg.Start, End: sg.End, Silence: []Silence{}}
		for _, p := range pauses {
			start, end := p.Start, p.End
			if end.IsZero() || end.After(sg.End.Time) {
				end = sg.End
			}
			if start.Before(sg.Start.Time) {
				start = sg.Start
			}
			if !end.After(start.Time) {
				continue
			}
			ms.Silence = append(ms.Silence, Silence{
				Start: start, End: end,
				StartMS: start.Sub(sg.Start.Time).Milliseconds(),
				EndMS:   end.Sub(sg.Start.Time).Milliseconds(),
				EndedBy: p.EndedBy,
			})
		}
		sort.SliceStable(ms.Silence, func(i, j int) bool { return ms.Silence[i].Start.Before(ms.Silence[j].Start.Time) })
		out = append(out, ms)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Render returns the canonical bytes of m: compact JSON and one newline.
func (m *Manifest) Render() ([]byte, error) { return m.render(false) }

// contactClosed records a contact that has just closed (disposition set).
// A contact that cannot be rendered (no disposition) is an error of the
// fold; it is recorded as discarded so that it is still counted.
func (b *manifestBook) contactClosed(c ledger.Contact) {
	b.ensure()
	b.Pending[c.ContactID] = pending(c)
}

// ParseManifest decodes canonical manifest bytes and checks the format.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("parse manifest: %w: %v", ledger.ErrInvalid, err)
	}
	if m.Format != ManifestFormat {
		return Manifest{}, fmt.Errorf("parse manifest: %w: format %q", ledger.ErrInvalid, m.Format)
	}
	return m, nil
}
