package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// A damaged ledger file must be refused with an error that says so, not
// crash the process: bbolt maps the file into memory, and reading a page
// past the end of a file cut short faults (SIGBUS), which no Go error
// reports. Open checks the file's length against its meta pages first,
// and turns what bbolt panics on while opening into ErrCorrupt.

// boltMeta is the part of a bbolt meta page (format version 2) the length
// check reads: a 16-byte page header, then magic, version, page size,
// flags, root bucket (16 bytes), freelist, high water mark, txid and an
// FNV-64a checksum of what precedes it. bbolt writes it in the machine's
// byte order; on a big-endian machine no meta checks out and the check is
// skipped.
type boltMeta struct {
	pageSize uint32
	root     uint64 // the root bucket's page
	freelist uint64 // the page of the free-page list
	pgid     uint64 // pages in use: the file holds at least pgid*pageSize bytes
	txid     uint64
}

const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaLen    = 64
)

// boltPageSizeOK reports whether n is a page size bbolt writes: a power
// of two, at least the 512 bytes a header page and a few elements need
// (the system's page size, or Options.PageSize), and at most 16 MiB. A
// header page that checks out with another (a file made to break the
// checks) would make the checks' arithmetic overflow or their reads
// shorter than a page's header.
func boltPageSizeOK(n uint32) bool {
	return n >= 512 && n <= 16<<20 && n&(n-1) == 0
}

// readBoltMeta reads the meta page at off; ok is false when it does not
// check out.
func readBoltMeta(f *os.File, off int64) (m boltMeta, ok bool) {
	var b [boltPageHeader + boltMetaLen]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return m, false
	}
	meta := b[boltPageHeader:]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(meta[:56])
	if le.Uint32(meta[0:]) != boltMagic || le.Uint32(meta[4:]) != boltVersion || le.Uint64(meta[56:]) != h.Sum64() {
		return m, false
	}
	return boltMeta{pageSize: le.Uint32(meta[8:]), root: le.Uint64(meta[16:]), freelist: le.Uint64(meta[32:]), pgid: le.Uint64(meta[40:]), txid: le.Uint64(meta[48:])}, true
}

// bbolt's free-page list: a page with this flag, whose header's count (or,
// when that is 0xFFFF, the first id slot) says how many page ids follow.
const (
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0) // a file written with NoFreelistSync
)

// checkFreelist fails with ErrCorrupt when the free-page list m names is
// not one, or lists a page outside the file's pages (below 2, the meta
// pages, or at or above m.pgid). bbolt reads the list as it opens a file
// for writing and hands its pages out: a page beyond the end made a
// writer panic ("pgid above high water mark") on the first commit, with
// the events all readable. A copy of the file taken while a server wrote
// it can be so.
func checkFreelist(f *os.File, m boltMeta) error {
	if m.freelist == boltNoFreelist {
		return nil
	}
	// The caller checked that the file holds m.pgid pages of m.pageSize.
	ps := int64(m.pageSize)
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Errorf("%w: its free-page list is page %d, outside its %d pages", ErrCorrupt, m.freelist, m.pgid)
	}
	var h [boltPageHeader + 8]byte
	if _, err := f.ReadAt(h[:], int64(m.freelist)*ps); err != nil {
		return fmt.Errorf("%w: its free-page list cannot be read: %v", ErrCorrupt, err)
	}
	le := binary.LittleEndian
	flags, count, overflow := le.Uint16(h[8:]), uint64(le.Uint16(h[10:])), int64(le.Uint32(h[12:]))
	if flags&boltFreelistFlag == 0 {
		return fmt.Errorf("%w: its page %d is not the free-page list its header names", ErrCorrupt, m.freelist)
	}
	skip := int64(boltPageHeader)
	if count == 0xFFFF {
		count, skip = le.Uint64(h[boltPageHeader:]), boltPageHeader+8
	}
	if overflow >= int64(m.pgid-m.freelist) || count > uint64(((overflow+1)*ps-skip)/8) {
		return fmt.Errorf("%w: its free-page list claims %d pages, more than its %d pages hold", ErrCorrupt, count, overflow+1)
	}
	ids := make([]byte, count*8)
	if _, err := f.ReadAt(ids, int64(m.freelist)*ps+skip); err != nil {
		return fmt.Errorf("%w: its free-page list cannot be read: %v", ErrCorrupt, err)
	}
	for i := 0; i < len(ids); i += 8 {
		if id := le.Uint64(ids[i:]); id < 2 || id >= m.pgid {
			return fmt.Errorf("%w: its free-page list names page %d, outside its %d pages (a copy taken while a server wrote the file?)", ErrCorrupt, id, m.pgid)
		}
	}
	return nil
}

// checkFileLength fails with ErrCorrupt when the file at path is shorter
// than the pages its newest valid meta page counts, or when the free-page
// list that meta page names is damaged (checkFreelist). A missing or
// empty file, or one without a valid meta page, is left to bbolt.
func checkFileLength(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	best, found := newestMeta(f)
	if !found {
		return nil
	}
	if !boltPageSizeOK(best.pageSize) {
		return fmt.Errorf("%w: its header page gives a page size of %d bytes, which bbolt does not write", ErrCorrupt, best.pageSize)
	}
	if best.pgid > uint64(fi.Size())/uint64(best.pageSize) {
		return fmt.Errorf("%w: the file is %d bytes, but its pages reach %d: it was cut short", ErrCorrupt, fi.Size(), best.pgid*uint64(best.pageSize))
	}
	return checkFreelist(f, best)
}

// openBolt opens the bbolt file, after checkFileLength, as guarded does.
func openBolt(path string, bo *bolt.Options) (db *bolt.DB, err error) {
	if err := checkFileLength(path); err != nil {
		return nil, err
	}
	err = guarded(func() (err error) {
		db, err = bolt.Open(path, 0o600, bo)
		return err
	})
	return db, err
}

// guarded runs fn, which reads the mapped file, and returns a fault while
// it reads (a page past the end of the file) or a panic of bbolt's on
// what it read as an error wrapping ErrCorrupt.
func guarded(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %w: %v", ErrCorrupt, errDamaged, r)
		}
	}()
	return fn()
}

// errDamaged is what guarded returns a fault or bbolt panic as (wrapped
// with ErrCorrupt).
var errDamaged = errors.New("the file is damaged (reading it failed)")

// view is db.View, as guarded runs it: a page bbolt finds damaged while
// reading (it panics on what it cannot trust) is an error wrapping
// ErrCorrupt, not the end of the process.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return guarded(func() error { return s.db.View(fn) })
}

// update is db.Update, as guarded runs it: a page bbolt finds damaged
// while a write reads it (a walk's checkpoint page whose element count
// was changed made every checkpoint save panic, and the server with it)
// is an error wrapping ErrCorrupt. bbolt rolls the transaction back as
// the panic leaves Update, so the store stays usable.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	return guarded(func() error { return s.db.Update(fn) })
}
