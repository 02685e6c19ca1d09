package ledger

import (
	"encoding/binary"
	"testing"
)

// reheader writes v at field of both header pages (a 32-bit field of the
// meta page: 0 the magic, 4 the version) and seals them again, so that
// only the field tells them from bbolt's.
func reheader(data []byte, field int, v uint32) []byte {
	for _, off := range []int{0, pageSize} {
		binary.LittleEndian.PutUint32(data[off+boltPageHeader+field:], v)
	}
	resealMetas(data)
	return data
}

// A newest header page that does not check out (its checksum no longer
// matches: a write torn while it was written) is passed over, as bbolt
// passes over it: the walk reads the file from the other header, whole.
func TestCheckPagesPassesOverAHeaderThatDoesNotCheckOut(t *testing.T) {
	le := binary.LittleEndian
	var olderPages uint64
	path := damagedLedger(t, func(t *testing.T, data []byte, m boltMeta) []byte {
		newest, older := 0, pageSize
		if le.Uint64(data[boltPageHeader+48:]) != m.txid {
			newest, older = pageSize, 0
		}
		olderPages = le.Uint64(data[older+boltPageHeader+40:])
		le.PutUint64(data[newest+boltPageHeader+40:], 1<<40) // its pages, past the file's end; not sealed again
		return data
	})
	rep, err := CheckPages(t.Context(), path)
	if err != nil || !rep.OK || rep.Pages != olderPages {
		t.Fatalf("a file whose newest header does not check out: %+v %v; want it whole, of the older header's %d pages", rep, err, olderPages)
	}
	if err := checkFileLength(path); err != nil {
		t.Fatalf("the length check: %v", err)
	}
}
