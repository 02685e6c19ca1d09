package projections

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
)

// coldSample is how many records of a section are written before it is
// sized from their average (sizedOnce).
const coldSample = 64

// coolEvery is how many contacts close between two coolings of the day
// not sealed yet (State.coolPending).
const coolEvery = 8192

// coldDay holds closed contacts that the fold no longer needs, as compact
// records (see appendCold) in a section (sections.go): the fold's memory
// grows with the active agents and open contacts, not with the history.
// The contacts of a sealed day are cooled at its seal; those of the day
// not sealed yet, every coolEvery closes (Day empty until the seal that
// takes them sets it). Queries decode the records on demand
// (docs/rules-decisions.md); Min and Max bound the contact ids in it, so
// that one contact is looked up only where it can be.
type coldDay struct {
	Day  string `json:"day"`  // "" until the day is sealed: each contact's day is its provisional day
	Seal uint64 `json:"seal"` // seq of the event that cooled them
	Min  string `json:"min"`
	Max  string `json:"max"`
	// First is the earliest start of the day's contacts, so that a query
	// of the whole history knows, before it reads them, that no later
	// section holds a contact to hand over earlier (EachContact).
	First ledger.Time `json:"first"`
	Sec   section     `json:"sec"` // records, each a uvarint length and the record
}

// cooling is a contact being cooled.
type cooling struct {
	day, id string
	ct      *contact
}

// referenced returns the closed contacts a rule may still change: every
// agent's last call and the contacts of the active calls (a tag or
// metadata after the call reaches only the last call's contact).
func (s *State) referenced() map[string]bool {
	keep := make(map[string]bool, len(s.agents)+2*len(s.calls))
	for _, a := range s.agents {
		if a.LastCall != nil {
			keep[a.LastCall.ContactID] = true
		}
	}
	for _, c := range s.calls {
		keep[c.Contact], keep[c.LastContact] = true, true
	}
	return keep
}

// coolDown moves to the cold store every closed contact of a sealed day
// that is not referenced: nothing can change it any more. It runs after
// each seal (at seq) and cuts one section per day, days in order,
// contacts in id order.
func (s *State) coolDown(seq uint64) {
	keep := s.referenced()
	// Each contact with its day, looked up once: sorting by a day found
	// in the map at each comparison was most of a seal's cost.
	var all []cooling
	for id, ct := range s.contacts {
		if day := s.book.DayOf[id]; !ct.Open && !keep[id] && day != "" {
			all = append(all, cooling{day, id, ct})
		}
	}
	slices.SortFunc(all, func(a, b cooling) int {
		if n := strings.Compare(a.day, b.day); n != 0 {
			return n
		}
		return strings.Compare(a.id, b.id)
	})
	for len(all) > 0 {
		day := all[0].day
		n := 1
		for n < len(all) && all[n].day == day {
			n++
		}
		s.cool(seq, "c/"+strconv.FormatUint(seq, 10)+"/"+day, day, all[:n])
		all = all[n:]
	}
}

// coolPending moves to the cold store every closed contact of the day not
// sealed yet that is not referenced, and its manifest entry to a kept
// section of the book, so that neither the heap nor a checkpoint's head
// grows with a busy day. The pause rows go into a chunk, as at a seal,
// up to the first still open. It
// runs, at seq, when the book holds coolEvery more pending contacts than
// after the last cooling, and cuts one section of each, contacts in id
// order. The seal takes the sections as they are (State.sealCooled).
func (s *State) coolPending(seq uint64) {
	keep := s.referenced()
	// Only the pause rows before the first one still open are encoded:
	// an open row encoded would be patched when it closes, and patched
	// rows stay in the head for good. A contact with a row after it waits
	// for a later cooling, or the seal.
	upTo := s.pauses.firstOpen(s.open)
	var all []cooling
	for id := range s.book.Pending {
		ct := s.contacts[id]
		if ct == nil || ct.Open || keep[id] || (len(ct.Rows) > 0 && ct.Rows[len(ct.Rows)-1] >= upTo) {
			continue
		}
		all = append(all, cooling{"", id, ct})
	}
	defer func() { s.book.CoolAt = len(s.book.Pending) + s.coolEvery() }()
	if len(all) == 0 {
		return
	}
	slices.SortFunc(all, func(a, b cooling) int { return strings.Compare(a.id, b.id) })
	at := strconv.FormatUint(seq, 10)
	var entries []byte
	for i, c := range all {
		entries = sizedOnce(entries, i, len(all))
		entries = appendCooled(entries, c.id, s.book.Pending[c.id])
		delete(s.book.Pending, c.id)
	}
	sec := newSection("e/"+at, entries)
	sec.keep = true
	s.book.Cooled = append(s.book.Cooled, sec)
	s.cool(seq, "c/"+at+"/pending", "", all)
	s.pauses.compact(seq, upTo, func(id string) bool { return s.contacts[id] != nil })
	// The entries still pending kept the blocks they were cut from alive
	// (keepEntry): copied into new ones, the old blocks go.
	s.entries = nil
	for id, p := range s.book.Pending {
		if p.Entry != nil {
			p.Entry = s.keepEntry(p.Entry)
			s.book.Pending[id] = p
		}
	}
}

// cool cuts the section key of the contacts cs (one day's, day "" for the
// day not sealed yet, in id order) and forgets them.
func (s *State) cool(seq uint64, key, day string, cs []cooling) {
	var data []byte
	var first ledger.Time
	for i, c := range cs {
		data = sizedOnce(data, i, len(cs))
		first = earliest(first, c.ct.V.StartedAt)
		data = appendCold(data, c.ct)
		s.pauses.unpin(c.ct.Rows)
		delete(s.contacts, c.id)
		delete(s.book.DayOf, c.id)
	}
	s.cold = append(s.cold, coldDay{Day: day, Seal: seq, Min: cs[0].id, Max: cs[len(cs)-1].id, First: first, Sec: newSection(key, data)})
}

// sizedOnce grows b, about to take record i of n, once: after the first
// coldSample records, to their average size times the records left (a
// busy day's section is tens of MB: grown by doubling, its copies were a
// third of a seal's time).
func sizedOnce(b []byte, i, n int) []byte {
	if i == coldSample && n > 2*coldSample {
		return slices.Grow(b, len(b)/coldSample*(n-i)*9/8)
	}
	return b
}

// sealCooled gives day to the contacts cooled before its seal, and
// retires the sections of their manifest entries, which the seal has
// just read into the day's manifest.
func (s *State) sealCooled(day string, cooled []section) {
	for i := range s.cold {
		if s.cold[i].Day == "" {
			s.cold[i].Day = day
		}
	}
	s.retire(cooled)
}

// coldContact finds a contact of the cold store, newest section first;
// nil when there is none.
func (h *history) coldContact(ctx context.Context, id string) (*contact, string, error) {
	for i := len(h.cold) - 1; i >= 0; i-- {
		d := &h.cold[i]
		if id < d.Min || id > d.Max {
			continue
		}
		var found *contact
		err := h.eachCold(ctx, d, func(ct *contact) bool {
			if ct.V.ContactID == id {
				found = ct
				return false
			}
			return true
		}, coldKey{id: id})
		if err != nil {
			return nil, "", err
		}
		if found != nil {
			return found, d.Day, nil
		}
	}
	return nil, "", nil
}

// eachCold calls fn with each contact of cold section d, while fn returns
// true. The records of contacts other than only's id and user (each when
// set) are skipped without decoding.
func (h *history) eachCold(ctx context.Context, d *coldDay, fn func(*contact) bool, only coldKey) error {
	b, err := h.bytes(ctx, &d.Sec)
	if err != nil {
		return err
	}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return fmt.Errorf("cold contacts %s: %w: bad record length", d.Sec.Key, ledger.ErrCorrupt)
		}
		rec := b[k : k+int(n)]
		b = b[k+int(n):]
		if !only.matches(rec) {
			continue
		}
		ct, ok := readCold(rec)
		if !ok {
			return fmt.Errorf("cold contacts %s: %w: bad record", d.Sec.Key, ledger.ErrCorrupt)
		}
		if !fn(ct) {
			return nil
		}
	}
	return nil
}

// coldContacts appends to out the views of the cold contacts matching q.
func (h *history) coldContacts(ctx context.Context, q ledger.ContactQuery, out []ledger.Contact) ([]ledger.Contact, error) {
	for i := range h.cold {
		d := &h.cold[i]
		if q.Day != "" && d.Day != q.Day && d.Day != "" {
			continue
		}
		var err error
		if out, err = h.dayContacts(ctx, q, d, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dayContacts appends to out the views of the contacts of cold section d
// that match q (its day too, when the section's day is not sealed yet).
func (h *history) dayContacts(ctx context.Context, q ledger.ContactQuery, d *coldDay, out []ledger.Contact) ([]ledger.Contact, error) {
	var verr error
	err := h.eachCold(ctx, d, func(ct *contact) bool {
		if !coldMatches(q, ct) {
			return true
		}
		v, err := h.coldView(ctx, ct, d.Day)
		if err != nil {
			verr = err
			return false
		}
		if q.Day == "" || v.Day == q.Day {
			out = append(out, v)
		}
		return true
	}, coldKey{user: q.UserID})
	if err == nil {
		err = verr
	}
	return out, err
}

// coldMatches reports whether cold contact ct is one of q's, its day
// aside.
func coldMatches(q ledger.ContactQuery, ct *contact) bool {
	if q.UserID != "" && ct.V.UserID != q.UserID {
		return false
	}
	return q.Disposition == "" || (ct.V.Disposition != nil && *ct.V.Disposition == q.Disposition)
}

// coldKey picks cold records by the contact id and the user id (each
// when set), which appendCold writes first and third.
type coldKey struct{ id, user string }

// matches reports whether the record is of the contact and user of k. It
// reads only the fields' lengths and the two ids.
func (k coldKey) matches(rec []byte) bool {
	if k.id == "" && k.user == "" {
		return true
	}
	for i := 0; i < 3; i++ {
		n, j := binary.Uvarint(rec)
		if j <= 0 || uint64(len(rec)-j) < n {
			return true // malformed: decoded, and refused, by the caller
		}
		f := rec[j : j+int(n)]
		if (i == 0 && k.id != "" && string(f) != k.id) || (i == 2 && k.user != "" && string(f) != k.user) {
			return false
		}
		rec = rec[j+int(n):]
	}
	return true
}

// appendCold appends the record of the closed contact ct: its length, then
// the fields of ct.V a closed contact has and its pause rows.
func appendCold(b []byte, ct *contact) []byte {
	w := coldWriter{b: b}
	start := len(b)
	v := &ct.V
	for _, s := range [...]string{v.ContactID, v.CallID, v.UserID, v.Extension, v.Team, v.RecordingType, v.Direction, v.ANI, v.DNIS, v.RetainUntil} {
		w.str(s)
	}
	w.time(v.StartedAt)
	w.time(v.EndedAt)
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
	w.b = append(w.b, flags)
	if v.Disposition != nil {
		w.str(*v.Disposition)
	}
	w.uint(uint64(len(v.Segments)))
	for _, sg := range v.Segments {
		w.time(sg.Start)
		w.time(sg.End)
	}
	w.uint(uint64(len(v.ReasonCodes)))
	for _, c := range v.ReasonCodes {
		w.str(c)
	}
	var buf [16]string // a site has at most 10 metadata keys
	keys := buf[:0]
	for k := range v.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.uint(uint64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(v.Metadata[k])
	}
	w.uint(uint64(len(ct.Rows)))
	for _, i := range ct.Rows {
		w.uint(uint64(i))
	}
	return w.record(start)
}

// coldWriter appends the fields of a compact record to b.
type coldWriter struct{ b []byte }

func (w *coldWriter) uint(x uint64) { w.b = binary.AppendUvarint(w.b, x) }

func (w *coldWriter) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *coldWriter) time(t ledger.Time) { w.b = appendColdTime(w.b, t) }

// record puts the length of what was written since start in front of it,
// as a uvarint, and returns the bytes.
func (w *coldWriter) record(start int) []byte {
	n := len(w.b) - start
	k := uvarintLen(uint64(n))
	b := slices.Grow(w.b, k)[:len(w.b)+k]
	copy(b[start+k:], b[start:start+n])
	binary.PutUvarint(b[start:], uint64(n))
	return b
}

// appendColdTime appends t as the compact records hold a time: 0 for
// zero, else 1 and the varint of its Unix milliseconds.
func appendColdTime(b []byte, t ledger.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), t.UnixMilli())
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

// checkCold checks the cold sections of a decoded checkpoint.
func (s *State) checkCold() error {
	for _, d := range s.cold {
		if d.Min == "" || d.Min > d.Max || d.Sec.Len <= 0 || (d.Day == "" && d.Seal <= s.book.LastSeq) {
			return fmt.Errorf("cold contacts %s: %w: bad section", d.Sec.Key, ledger.ErrCorrupt)
		}
	}
	return nil
}

// coldView is the view of a cold contact of day ("": its day is not
// sealed yet), with its pause rows from the history.
func (h *history) coldView(ctx context.Context, ct *contact, day string) (ledger.Contact, error) {
	rows := make([]ledger.PauseRow, len(ct.Rows))
	for k, r := range ct.Rows {
		var err error
		if rows[k], err = h.row(ctx, r); err != nil {
			return ledger.Contact{}, fmt.Errorf("contact %s: %w", ct.V.ContactID, err)
		}
	}
	v := viewOf(ct, func(k int) ledger.PauseRow { return rows[k] })
	if v.Disposition != nil {
		if v.Day = day; day == "" {
			v.Day = h.days.day(ct.V.EndedAt)
		}
	}
	return v, nil
}
