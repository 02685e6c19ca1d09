package projections

import (
	"encoding/binary"
	"fmt"

	"github.com/recledger/recledger/ledger"
)

// The manifest entries of the contacts cooled before their day is sealed
// (State.coolPending) leave the book's Pending map for a kept section
// (manifestBook.Cooled): the fold reads them back at the seal, so their
// bytes stay in memory, but a checkpoint names the section instead of
// carrying every entry in its head. Each record is a uvarint length and:
//
//	id, disposition      each a uvarint length and the bytes
//	end                  as appendCold writes a time
//	entry                uvarint length + 1 (0: none, a discarded contact), the bytes

// appendCooled appends the record of the pending contact id.
func appendCooled(b []byte, id string, p pendingContact) []byte {
	w := coldWriter{b: b}
	start := len(b)
	w.str(id)
	w.str(p.Disposition)
	w.time(p.EndedAt)
	if p.Entry == nil {
		w.uint(0)
	} else {
		w.uint(uint64(len(p.Entry)) + 1)
		w.b = append(w.b, p.Entry...)
	}
	return w.record(start)
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// eachCooled calls fn with each record of a section of cooled entries; the
// entry shares b's bytes.
func eachCooled(sec *section, fn func(id string, p pendingContact)) error {
	b := sec.data
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return fmt.Errorf("cooled entries %s: %w: bad record length", sec.Key, ledger.ErrCorrupt)
		}
		r := coldReader{b: b[k : k+int(n)]}
		b = b[k+int(n):]
		id := r.str()
		p := pendingContact{Disposition: r.str(), EndedAt: r.time()}
		if e := r.uint(); e > 0 && !r.bad {
			if uint64(len(r.b)) != e-1 {
				r.bad = true
			} else {
				p.Entry, r.b = r.b, nil
			}
		}
		if r.bad || len(r.b) != 0 || id == "" {
			return fmt.Errorf("cooled entries %s: %w: bad record", sec.Key, ledger.ErrCorrupt)
		}
		fn(id, p)
	}
	return nil
}

// countRecords counts the length-prefixed records of b, as far as they
// are whole.
func countRecords(b []byte) int {
	n := 0
	for len(b) > 0 {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			break
		}
		b, n = b[k+int(l):], n+1
	}
	return n
}
