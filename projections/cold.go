package projections

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/recledger/recledger/ledger"
)

// coldDay holds the closed contacts of one sealed day that the fold no
// longer needs, as compact records (see appendCold), so that the fold's
// memory grows with the active agents and open contacts, not with the
// history. Queries decode them on demand (docs/rules-decisions.md).
type coldDay struct {
	Day  string
	Data []byte // records, each a uvarint length and the record
}

// coolDown moves to the cold store every closed contact of a sealed day
// that no agent's last call and no active call refers to: nothing can
// change it any more (a tag or metadata after the call reaches only the
// last call's contact). It runs after each seal, in contact id order.
func (s *State) coolDown() {
	keep := map[string]bool{}
	for _, a := range s.agents {
		if a.LastCall != nil {
			keep[a.LastCall.ContactID] = true
		}
	}
	for _, c := range s.calls {
		keep[c.Contact], keep[c.LastContact] = true, true
	}
	var ids []string
	for id, ct := range s.contacts {
		if !ct.Open && !keep[id] && s.book.DayOf[id] != "" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		day := s.book.DayOf[id]
		i, ok := s.coldIdx[day]
		if !ok {
			s.cold = append(s.cold, coldDay{Day: day})
			i = len(s.cold) - 1
			s.coldIdx[day] = i
		}
		s.cold[i].Data = appendCold(s.cold[i].Data, s.contacts[id])
		delete(s.contacts, id)
		delete(s.book.DayOf, id)
	}
}

// coldContact finds a contact of the cold store; nil when there is none.
func (s *State) coldContact(id string) (*contact, string) {
	for i := len(s.cold) - 1; i >= 0; i-- {
		var found *contact
		s.eachCold(i, func(ct *contact) bool {
			if ct.V.ContactID == id {
				found = ct
				return false
			}
			return true
		}, id)
		if found != nil {
			return found, s.cold[i].Day
		}
	}
	return nil, ""
}

// eachCold calls fn with each contact of cold day i, while fn returns true.
// With only set, records of other contacts are skipped without decoding.
func (s *State) eachCold(i int, fn func(*contact) bool, only string) {
	b := s.cold[i].Data
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return // cannot happen: the records are written by appendCold
		}
		rec := b[k : k+int(n)]
		b = b[k+int(n):]
		if only != "" && !coldIDIs(rec, only) {
			continue
		}
		ct, ok := readCold(rec)
		if !ok {
			return
		}
		if !fn(ct) {
			return
		}
	}
}

// coldIDIs reports whether the record is the contact id's (the id is the
// record's first field).
func coldIDIs(rec []byte, id string) bool {
	n, k := binary.Uvarint(rec)
	return k > 0 && uint64(len(rec)-k) >= n && string(rec[k:k+int(n)]) == id
}

// appendCold appends the record of the closed contact ct: its length, then
// the fields of ct.V a closed contact has and its pause rows.
func appendCold(b []byte, ct *contact) []byte {
	var r []byte
	str := func(s string) {
		r = binary.AppendUvarint(r, uint64(len(s)))
		r = append(r, s...)
	}
	tm := func(t ledger.Time) {
		if t.IsZero() {
			r = append(r, 0)
			return
		}
		r = append(r, 1)
		r = binary.AppendVarint(r, t.UnixMilli())
	}
	v := &ct.V
	for _, s := range [...]string{v.ContactID, v.CallID, v.UserID, v.Extension, v.Team, v.RecordingType, v.Direction, v.ANI, v.DNIS, v.RetainUntil} {
		str(s)
	}
	tm(v.StartedAt)
	tm(v.EndedAt)
	var flags byte
	if v.Deleted {
		flags |= 1
	}
	if v.RootMayPersist {
		flags |= 2
	}
	if v.Disposition != nil {
		flags |= 4
	}
	r = append(r, flags)
	if v.Disposition != nil {
		str(*v.Disposition)
	}
	r = binary.AppendUvarint(r, uint64(len(v.Segments)))
	for _, sg := range v.Segments {
		tm(sg.Start)
		tm(sg.End)
	}
	r = binary.AppendUvarint(r, uint64(len(v.ReasonCodes)))
	for _, c := range v.ReasonCodes {
		str(c)
	}
	keys := make([]string, 0, len(v.Metadata))
	for k := range v.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	r = binary.AppendUvarint(r, uint64(len(keys)))
	for _, k := range keys {
		str(k)
		str(v.Metadata[k])
	}
	r = binary.AppendUvarint(r, uint64(len(ct.Rows)))
	for _, i := range ct.Rows {
		r = binary.AppendUvarint(r, uint64(i))
	}
	b = binary.AppendUvarint(b, uint64(len(r)))
	return append(b, r...)
}

// coldReader reads the fields appendCold wrote; bad is set on any fault.
type coldReader struct {
	b   []byte
	bad bool
}

func (r *coldReader) uint() uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *coldReader) str() string {
	n := r.uint()
	if r.bad || uint64(len(r.b)) < n {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *coldReader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *coldReader) time() ledger.Time {
	if r.byte() == 0 {
		return ledger.Time{}
	}
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.bad = true
		return ledger.Time{}
	}
	r.b = r.b[k:]
	return ledger.T(time.UnixMilli(v))
}

// count reads a length, bounded by the bytes left (each element takes at
// least one byte).
func (r *coldReader) count() int {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

// readCold decodes one record of appendCold.
func readCold(rec []byte) (*contact, bool) {
	r := coldReader{b: rec}
	ct := &contact{OpenPause: -1}
	v := &ct.V
	for _, p := range [...]*string{&v.ContactID, &v.CallID, &v.UserID, &v.Extension, &v.Team, &v.RecordingType, &v.Direction, &v.ANI, &v.DNIS, &v.RetainUntil} {
		*p = r.str()
	}
	v.StartedAt = r.time()
	v.EndedAt = r.time()
	flags := r.byte()
	v.Deleted, v.RootMayPersist = flags&1 != 0, flags&2 != 0
	if flags&4 != 0 {
		d := r.str()
		v.Disposition = &d
	}
	if n := r.count(); n > 0 {
		v.Segments = make([]ledger.Segment, n)
		for i := range v.Segments {
			v.Segments[i] = ledger.Segment{Start: r.time(), End: r.time()}
		}
	}
	if n := r.count(); n > 0 {
		v.ReasonCodes = make([]string, n)
		for i := range v.ReasonCodes {
			v.ReasonCodes[i] = r.str()
		}
	}
	if n := r.count(); n > 0 {
		v.Metadata = make(map[string]string, n)
		for range n {
			k := r.str()
			v.Metadata[k] = r.str()
		}
	}
	if n := r.count(); n > 0 {
		ct.Rows = make([]int, n)
		for i := range ct.Rows {
			ct.Rows[i] = int(r.uint())
		}
	}
	return ct, !r.bad && len(r.b) == 0
}

// checkCold checks the framing of every cold day's records (each record
// is checked again when it is read) and indexes the days.
func (s *State) checkCold() error {
	for i, d := range s.cold {
		for b := d.Data; len(b) > 0; {
			n, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < n {
				return fmt.Errorf("cold contacts of %s: %w: bad record length", d.Day, ledger.ErrCorrupt)
			}
			b = b[k+int(n):]
		}
		if _, dup := s.coldIdx[d.Day]; dup {
			return fmt.Errorf("cold contacts: %w: day %s twice", ledger.ErrCorrupt, d.Day)
		}
		s.coldIdx[d.Day] = i
	}
	return nil
}

// coldView is the view of a cold contact of day; false when its record
// points at pause rows that do not exist (a corrupt checkpoint).
func (s *State) coldView(ct *contact, day string) (ledger.Contact, bool) {
	for _, r := range ct.Rows {
		if r < 0 || r >= s.pauses.Len() {
			return ledger.Contact{}, false
		}
	}
	v := s.view(ct)
	if v.Disposition != nil {
		v.Day = day
	}
	return v, true
}
