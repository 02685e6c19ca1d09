package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
	"slices"

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
	pgid     uint64 // pages in use: the file holds at least pgid*pageSize bytes
	txid     uint64
}

const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaLen    = 64
)

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
	return boltMeta{pageSize: le.Uint32(meta[8:]), pgid: le.Uint64(meta[40:]), txid: le.Uint64(meta[48:])}, true
}

// checkFileLength fails with ErrCorrupt when the file at path is shorter
// than the pages its newest valid meta page counts. A missing or empty
// file, or one without a valid meta page, is left to bbolt.
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
	var best boltMeta
	var found bool
	m0, ok0 := readBoltMeta(f, 0)
	offsets := []int64{4096, 8192, pageSize, 32 << 10, 64 << 10}
	if ok0 {
		best, found = m0, true
		offsets = []int64{int64(m0.pageSize)}
	}
	for _, off := range slices.Compact(offsets) {
		if m1, ok := readBoltMeta(f, off); ok && (!found || m1.txid > best.txid) {
			best, found = m1, true
		}
	}
	if !found {
		return nil
	}
	if need := int64(best.pgid) * int64(best.pageSize); fi.Size() < need {
		return fmt.Errorf("%w: the file is %d bytes, but its pages reach %d: it was cut short", ErrCorrupt, fi.Size(), need)
	}
	return nil
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
