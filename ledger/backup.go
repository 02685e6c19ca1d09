package ledger

import (
	"context"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// BackupInfo describes a backup before its first byte: what a reader
// needs in the headers that precede the copy.
type BackupInfo struct {
	Size int64  // the copy's length in bytes
	Head uint64 // the last seq the copy holds (0: no event)
	Hash string // that event's hash ("" when none)
}

// Backup writes a consistent copy of the ledger file to w while the store
// goes on appending: the file as one read transaction sees it (bbolt's
// Tx.WriteTo), events, checkpoints and configuration alike. begin, when
// not nil, is called before the first byte with what the copy holds; an
// error from it ends the backup unwritten. The copy is a ledger file:
// serve, verify and replay open it as they open ledger.db.
//
// The transaction lasts as long as w takes the bytes. Meanwhile appends go
// on, but one that must grow the file's memory map (bbolt remaps at 1 GiB
// steps past 1 GiB) waits for the copy to end: give Backup a writer that
// keeps up, and a ctx that ends a stalled one (each Write checks it).
func (s *Store) Backup(ctx context.Context, w io.Writer, begin func(BackupInfo) error) (int64, error) {
	if s.closedFlag.Load() {
		return 0, fmt.Errorf("backup: %w", ErrClosed)
	}
	var n int64
	cw := &ctxWriter{ctx: ctx, w: w}
	err := s.view(func(tx *bolt.Tx) error {
		h, err := headIn(tx)
		if err != nil {
			return fmt.Errorf("%w (recledger verify names it)", err)
		}
		info := BackupInfo{Size: tx.Size(), Head: h.seq, Hash: h.hash}
		if begin != nil {
			if err := begin(info); err != nil {
				return err
			}
		}
		n, err = tx.WriteTo(cw)
		if cw.err != nil {
			err = cw.err // bbolt words some of them with %s, not %w
		}
		if err == nil && n != info.Size {
			err = fmt.Errorf("%w: the copy is %d bytes, the file %d", ErrCorrupt, n, info.Size)
		}
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err) // w's own error, or ctx's once done
	}
	return n, nil
}

// ctxWriter is w that refuses writes once ctx is done, and remembers
// its first error.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
	err error
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if c.err == nil {
		c.err = c.ctx.Err()
	}
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.err = err
	return n, err
}
