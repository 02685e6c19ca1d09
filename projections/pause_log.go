package projections

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/recledger/recledger/ledger"
)

// pauseLog is the PCI pause history, every interval in opening order and
// indexed by that order (contact.Rows, contact.OpenPause, State.open). It
// is the audit record, so it is kept whole, but compactly: at each seal
// the rows opened since the last one are encoded into a new chunk (about a
// third of their size in memory, and a raw section of the checkpoint that
// is never parsed; a chunk is never copied again); the rows opened since
// stay as structs in hot. A row still open when it was encoded is copied
// into patched when it is closed; patched then wins.
type pauseLog struct {
	chunks  [][]byte                 // encoded rows, as appendPauseRow writes them
	first   []int                    // index of each chunk's first row
	offs    []uint32                 // start of each encoded row in its chunk; rebuilt, not in the checkpoint
	hot     []ledger.PauseRow        // rows len(offs).., as structs
	patched map[int]*ledger.PauseRow // encoded rows changed since
}

// Len is the number of rows.
func (l *pauseLog) Len() int { return len(l.offs) + len(l.hot) }

// add appends a row and returns its index.
func (l *pauseLog) add(r ledger.PauseRow) int {
	l.hot = append(l.hot, r)
	return l.Len() - 1
}

// encoded decodes encoded row i.
func (l *pauseLog) encoded(i int) ledger.PauseRow {
	c, _ := slices.BinarySearch(l.first, i+1) // chunks starting at or before i
	r, _ := readPauseRow(l.chunks[c-1][l.offs[i]:])
	return r
}

// at returns row i.
func (l *pauseLog) at(i int) ledger.PauseRow {
	if i >= len(l.offs) {
		return l.hot[i-len(l.offs)]
	}
	if p, ok := l.patched[i]; ok {
		return *p
	}
	return l.encoded(i)
}

// ptr returns row i to be changed.
func (l *pauseLog) ptr(i int) *ledger.PauseRow {
	if i >= len(l.offs) {
		return &l.hot[i-len(l.offs)]
	}
	if p, ok := l.patched[i]; ok {
		return p
	}
	r := l.encoded(i)
	if l.patched == nil {
		l.patched = map[int]*ledger.PauseRow{}
	}
	l.patched[i] = &r
	return &r
}

// compact encodes the hot rows into a new chunk.
func (l *pauseLog) compact() {
	if len(l.hot) == 0 {
		return
	}
	size := 0
	for i := range l.hot {
		size += 128 + len(l.hot[i].CallID) + len(l.hot[i].UserID) + len(l.hot[i].PausedBy) + len(l.hot[i].ResumedBy)
	}
	c := make([]byte, 0, size)
	l.first = append(l.first, len(l.offs))
	for i := range l.hot {
		l.offs = append(l.offs, uint32(len(c)))
		c = appendPauseRow(c, &l.hot[i])
	}
	l.chunks = append(l.chunks, c)
	l.hot = l.hot[:0]
}

// index rebuilds first and offs from the chunks (after a checkpoint is
// read), checking that every row decodes.
func (l *pauseLog) index() error {
	l.first, l.offs = l.first[:0], l.offs[:0]
	for k, c := range l.chunks {
		if len(c) > math.MaxUint32 {
			return fmt.Errorf("pause rows: %w: a chunk over 4 GiB", ledger.ErrCorrupt)
		}
		if len(c) == 0 {
			return fmt.Errorf("pause rows: %w: empty chunk %d", ledger.ErrCorrupt, k)
		}
		l.first = append(l.first, len(l.offs))
		for at := 0; at < len(c); {
			_, n := readPauseRow(c[at:])
			if n <= 0 {
				return fmt.Errorf("pause rows: %w: bad row in chunk %d at byte %d", ledger.ErrCorrupt, k, at)
			}
			l.offs = append(l.offs, uint32(at))
			at += n
		}
	}
	for i, p := range l.patched {
		if i < 0 || i >= len(l.offs) || p == nil {
			return fmt.Errorf("pause rows: %w: patched row %d", ledger.ErrCorrupt, i)
		}
	}
	return nil
}

// appendPauseRow appends the compact encoding of r.
func appendPauseRow(b []byte, r *ledger.PauseRow) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	tm := func(t ledger.Time) {
		if t.IsZero() {
			b = append(b, 0)
			return
		}
		b = append(b, 1)
		b = binary.AppendVarint(b, t.UnixMilli())
	}
	for _, s := range [...]string{r.ContactID, r.CallID, r.UserID, r.Extension, r.EndedBy, r.PausedBy, r.ResumedBy, r.Transport, r.OpenEventID, r.CloseEventID} {
		str(s)
	}
	tm(r.Start)
	tm(r.End)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Seconds))
}

// readPauseRow decodes the row at the start of b and its length; n <= 0
// when b does not start with a whole row.
func readPauseRow(b []byte) (r ledger.PauseRow, n int) {
	rd := coldReader{b: b}
	for _, p := range [...]*string{&r.ContactID, &r.CallID, &r.UserID, &r.Extension, &r.EndedBy, &r.PausedBy, &r.ResumedBy, &r.Transport, &r.OpenEventID, &r.CloseEventID} {
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
