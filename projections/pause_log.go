package projections

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/recledger/recledger/ledger"
)

// pauseLog is the PCI pause history, every interval in opening order and
// indexed by that order (contact.Rows, contact.OpenPause, State.open). It
// is the audit record, so it is kept whole, but out of the heap: at each
// seal the rows opened since the last one are encoded into a new chunk, a
// section (sections.go) that is stored with the next checkpoint and then
// read back only by queries; the rows opened since stay as structs in hot.
//
// The fold never reads a chunk. It only touches rows of contacts still in
// memory (open ones, and the last calls a tag or metadata may still
// change), so an encoded row of such a contact is also kept as a struct in
// pinned until its contact goes cold. A pinned row that is changed (a
// pause open at the seal, closed after it) moves to patched, which wins
// over the chunk for good.
type pauseLog struct {
	chunks  []pauseChunk
	encoded int                      // rows in chunks; rebuilt, not in the checkpoint
	hot     []ledger.PauseRow        // rows encoded.., as structs
	patched map[int]*ledger.PauseRow // encoded rows changed since
	pinned  map[int]ledger.PauseRow  // encoded rows, unchanged, of contacts still in memory
}

// pauseChunk is the rows First..First+Rows-1, as appendPauseRow writes
// them one after another. Start and End bound the rows' times as they
// were encoded (End zero: a row was still open), so that a query for a
// time range skips the chunks outside it without reading them.
type pauseChunk struct {
	First int         `json:"first"`
	Rows  int         `json:"rows"`
	Start ledger.Time `json:"start"` // the earliest start
	End   ledger.Time `json:"end"`   // the latest end; zero when a row was open
	Sec   section     `json:"sec"`
}

// Len is the number of rows.
func (l *pauseLog) Len() int { return l.encoded + len(l.hot) }

// add appends a row and returns its index.
func (l *pauseLog) add(r ledger.PauseRow) int {
	l.hot = append(l.hot, r)
	return l.Len() - 1
}

// mem returns row i when it is in memory: hot, patched or pinned.
func (l *pauseLog) mem(i int) (ledger.PauseRow, bool) {
	if i >= l.encoded {
		return l.hot[i-l.encoded], true
	}
	if p, ok := l.patched[i]; ok {
		return *p, true
	}
	r, ok := l.pinned[i]
	return r, ok
}

// at returns row i for the fold: a row of a contact in memory, which is
// always in memory itself.
func (l *pauseLog) at(i int) ledger.PauseRow {
	r, _ := l.mem(i)
	return r
}

// ptr returns row i to be changed.
func (l *pauseLog) ptr(i int) *ledger.PauseRow {
	if i >= l.encoded {
		return &l.hot[i-l.encoded]
	}
	if p, ok := l.patched[i]; ok {
		return p
	}
	r := l.pinned[i]
	delete(l.pinned, i)
	if l.patched == nil {
		l.patched = map[int]*ledger.PauseRow{}
	}
	l.patched[i] = &r
	return &r
}

// compact encodes the hot rows before row upTo into the chunk of the
// event at seq (a seal, or a cooling of the day not sealed yet), pinning
// the rows of the contacts for which inMemory is true.
func (l *pauseLog) compact(seq uint64, upTo int, inMemory func(contactID string) bool) {
	n := min(upTo-l.encoded, len(l.hot))
	if n <= 0 {
		return
	}
	rows := l.hot[:n]
	size := 0
	for i := range rows {
		size += 128 + len(rows[i].CallID) + len(rows[i].UserID) + len(rows[i].PausedBy) + len(rows[i].ResumedBy)
	}
	c := make([]byte, 0, size)
	start, end, open := rows[0].Start, rows[0].End, false
	for i := range rows {
		r := &rows[i]
		if r.Start.Before(start.Time) {
			start = r.Start
		}
		if r.End.IsZero() {
			open = true
		} else if r.End.After(end.Time) {
			end = r.End
		}
		c = appendPauseRow(c, r)
		if inMemory(r.ContactID) {
			if l.pinned == nil {
				l.pinned = map[int]ledger.PauseRow{}
			}
			l.pinned[l.encoded+i] = *r
		}
	}
	if open {
		end = ledger.Time{}
	}
	l.chunks = append(l.chunks, pauseChunk{First: l.encoded, Rows: n, Start: start, End: end,
		Sec: newSection("p/"+strconv.FormatUint(seq, 10), c)})
	l.encoded += n
	l.hot = append(l.hot[:0], l.hot[n:]...)
}

// firstOpen is the index of the first row opened since the last chunk
// that is still open (open: open event id → index), Len() when none.
func (l *pauseLog) firstOpen(open map[string]int) int {
	first := l.Len()
	for _, i := range open {
		if i >= l.encoded && i < first {
			first = i
		}
	}
	return first
}

// unpin forgets the pinned copies of rows (their contact went cold).
func (l *pauseLog) unpin(rows []int) {
	for _, i := range rows {
		delete(l.pinned, i)
	}
}

// index checks the chunks and the rows in memory of a decoded checkpoint
// and counts the encoded rows.
func (l *pauseLog) index() error {
	l.encoded = 0
	for k, c := range l.chunks {
		if c.First != l.encoded || c.Rows <= 0 || c.Sec.Len <= 0 {
			return fmt.Errorf("pause rows: %w: chunk %d of %d rows from %d", ledger.ErrCorrupt, k, c.Rows, c.First)
		}
		l.encoded += c.Rows
	}
	for i, p := range l.patched {
		if i < 0 || i >= l.encoded || p == nil {
			return fmt.Errorf("pause rows: %w: patched row %d", ledger.ErrCorrupt, i)
		}
	}
	for i := range l.pinned {
		if i < 0 || i >= l.encoded {
			return fmt.Errorf("pause rows: %w: pinned row %d", ledger.ErrCorrupt, i)
		}
	}
	return nil
}

// decodeChunk decodes the rows of chunk c from its bytes b.
func decodeChunk(c *pauseChunk, b []byte) ([]ledger.PauseRow, error) {
	rows := make([]ledger.PauseRow, 0, c.Rows)
	for at := 0; at < len(b); {
		r, n := readPauseRow(b[at:])
		if n <= 0 || len(rows) == c.Rows {
			return nil, fmt.Errorf("pause rows %s: %w: bad row at byte %d", c.Sec.Key, ledger.ErrCorrupt, at)
		}
		rows = append(rows, r)
		at += n
	}
	if len(rows) != c.Rows {
		return nil, fmt.Errorf("pause rows %s: %w: %d rows, want %d", c.Sec.Key, ledger.ErrCorrupt, len(rows), c.Rows)
	}
	return rows, nil
}

// appendPauseRow appends the compact encoding of r.
func appendPauseRow(b []byte, r *ledger.PauseRow) []byte {
	w := coldWriter{b: b}
	for _, s := range [...]string{r.ContactID, r.CallID, r.UserID, r.Extension, r.EndedBy, r.PausedBy, r.ResumedBy, r.Transport, r.OpenEventID, r.CloseEventID, r.ResumeTransport} {
		w.str(s)
	}
	w.time(r.Start)
	w.time(r.End)
	return binary.LittleEndian.AppendUint64(w.b, math.Float64bits(r.Seconds))
}

// readPauseRow decodes the row at the start of b and its length; n <= 0
// when b does not start with a whole row.
func readPauseRow(b []byte) (r ledger.PauseRow, n int) {
	rd := coldReader{b: b}
	for _, p := range [...]*string{&r.ContactID, &r.CallID, &r.UserID, &r.Extension, &r.EndedBy, &r.PausedBy, &r.ResumedBy, &r.Transport, &r.OpenEventID, &r.CloseEventID, &r.ResumeTransport} {
		*p = rd.str()
	}
	r.Start = rd.time()
	r.End = rd.time()
	if rd.bad || len(rd.b) < 8 {
		return ledger.PauseRow{}, 0
	}
	r.Seconds = math.Float64frombits(binary.LittleEndian.Uint64(rd.b))
	return r, len(b) - len(rd.b) + 8
}
