package projections

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/recledger/recledger/ledger"
)

// ManifestFormat names the manifest encoding; it is the first field of every
// manifest. A reader meeting another value must stop rather than guess.
const ManifestFormat = "recledger.manifest/1"

// PausesAppliedAtUpload is the value of ManifestContact.PausesAppliedAt for
// gateway contacts: the gateway recorded through the pauses, so the silence
// ranges must be applied to the media when it is uploaded.
const PausesAppliedAtUpload = "upload"

// Manifest is the sealed manifest of one day (docs/manifests.md). Its
// canonical encoding is compact JSON in this field order, with map keys
// sorted, followed by one newline.
type Manifest struct {
	Format          string           `json:"format"`
	Day             string           `json:"day"`
	Timezone        string           `json:"timezone"`
	SealedAt        ledger.Time      `json:"sealed_at"`
	SealedBy        string           `json:"sealed_by"`
	SealEventID     string           `json:"seal_event_id"`
	SealSeq         uint64           `json:"seal_seq"`
	PreviousSealSeq uint64           `json:"previous_seal_seq"`
	Contacts        []ManifestEntry  `json:"contacts"`
	MetadataUpdates []MetadataUpdate `json:"metadata_updates"`
	Counts          ManifestCounts   `json:"counts"`
	ChainHead       string           `json:"chain_head"`
}

// ManifestEntry is one listed contact, as encoded: a ManifestContact
// rendered with RenderContact. It is kept as bytes so that the manifest of
// a day is cut from the very bytes recorded when each contact closed.
type ManifestEntry = json.RawMessage

// ManifestCounts counts the contacts of a manifest by disposition.
// Total = Upload + BasicOnly + Discard; MetadataUpdates is counted apart.
type ManifestCounts struct {
	Upload          int `json:"upload"`
	BasicOnly       int `json:"basic_only"`
	Discard         int `json:"discard"`
	MetadataUpdates int `json:"metadata_updates"`
	Total           int `json:"total"`
}

// ManifestBasic is the call data every listed contact carries; it is all a
// basic_only (deleted) contact carries.
type ManifestBasic struct {
	ContactID      string      `json:"contact_id"`
	CallID         string      `json:"call_id"`
	UserID         string      `json:"user_id"`
	Extension      string      `json:"extension"`
	Team           string      `json:"team"`
	RecordingType  string      `json:"recording_type"`
	Direction      string      `json:"direction"`
	ANI            string      `json:"ani"`
	DNIS           string      `json:"dnis"`
	StartedAt      ledger.Time `json:"started_at"`
	EndedAt        ledger.Time `json:"ended_at"`
	Disposition    string      `json:"disposition"`
	Deleted        bool        `json:"deleted"`
	RootMayPersist bool        `json:"root_may_persist,omitempty"`
}

// ManifestContact is an upload contact: call data, media and its data.
type ManifestContact struct {
	ManifestBasic
	ReasonCodes     []string          `json:"reason_codes"`
	Metadata        map[string]string `json:"metadata"`
	RetainUntil     string            `json:"retain_until"`
	PausesAppliedAt string            `json:"pauses_applied_at,omitempty"`
	Segments        []ManifestSegment `json:"segments"`
}

// ManifestSegment is one stretch of media with the silence (pause) ranges
// that fall inside it.
type ManifestSegment struct {
	Start   ledger.Time `json:"start"`
	End     ledger.Time `json:"end"`
	Silence []Silence   `json:"silence"`
}

// Silence is a pause interval clipped to a segment: absolute times, and
// offsets in milliseconds from the segment's start.
type Silence struct {
	Start   ledger.Time `json:"start"`
	End     ledger.Time `json:"end"`
	StartMS int64       `json:"start_ms"`
	EndMS   int64       `json:"end_ms"`
	EndedBy string      `json:"ended_by"`
}

// MetadataUpdate is a change to a contact that is in an earlier sealed
// manifest: its data as it is now (in the shape of a contacts entry), the
// day whose manifest listed or counted it, and the event that changed it.
type MetadataUpdate struct {
	ContactID string          `json:"contact_id"`
	Day       string          `json:"day"`
	Seq       uint64          `json:"seq"`
	Contact   json.RawMessage `json:"contact"`
}

// RenderContact returns the canonical manifest entry of a closed contact,
// or nil for a discarded one (discarded contacts are only counted).
func RenderContact(c ledger.Contact) (json.RawMessage, error) {
	b, ok, err := appendEntry(nil, &c, c.Pauses)
	if err != nil || !ok {
		return nil, err
	}
	return b, nil
}

// manifestHead is the part of a Manifest before its contacts, and
// manifestTail the part after them, in the same field order.
type manifestHead struct {
	Format          string      `json:"format"`
	Day             string      `json:"day"`
	Timezone        string      `json:"timezone"`
	SealedAt        ledger.Time `json:"sealed_at"`
	SealedBy        string      `json:"sealed_by"`
	SealEventID     string      `json:"seal_event_id"`
	SealSeq         uint64      `json:"seal_seq"`
	PreviousSealSeq uint64      `json:"previous_seal_seq"`
}

type manifestTail struct {
	MetadataUpdates []MetadataUpdate `json:"metadata_updates"`
	Counts          ManifestCounts   `json:"counts"`
	ChainHead       string           `json:"chain_head"`
}

// render writes m as encoding/json would, but joins the contact entries
// itself: a day can hold many thousands of them, and re-validating each
// (as json.RawMessage encoding does) doubles the cost of a seal. With
// trusted, the entries are taken as they are (they come from RenderContact);
// otherwise each is compacted first.
func (m *Manifest) render(trusted bool) ([]byte, error) {
	head, err := json.Marshal(manifestHead{m.Format, m.Day, m.Timezone, m.SealedAt, m.SealedBy, m.SealEventID, m.SealSeq, m.PreviousSealSeq})
	if err != nil {
		return nil, fmt.Errorf("render manifest %s: %w", m.Day, err)
	}
	updates := m.MetadataUpdates
	if updates == nil {
		updates = []MetadataUpdate{}
	}
	tail, err := json.Marshal(manifestTail{updates, m.Counts, m.ChainHead})
	if err != nil {
		return nil, fmt.Errorf("render manifest %s: %w", m.Day, err)
	}
	size := len(head) + len(tail) + len(m.Contacts) + 32
	for _, c := range m.Contacts {
		size += len(c)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.Write(head[:len(head)-1]) // without its closing brace
	buf.WriteString(`,"contacts":[`)
	for i, c := range m.Contacts {
		if i > 0 {
			buf.WriteByte(',')
		}
		if trusted {
			buf.Write(c)
		} else if err := json.Compact(buf, c); err != nil {
			return nil, fmt.Errorf("render manifest %s: contacts[%d]: %w", m.Day, i, err)
		}
	}
	buf.WriteString("],")
	buf.Write(tail[1:]) // without its opening brace
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
