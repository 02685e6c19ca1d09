package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// scanChunk is the most events one read transaction of Scan copies out.
// Bounded transactions keep a long scan from pinning old pages (bbolt
// cannot reuse pages a reader may see, nor grow its mmap under a reader).
const scanChunk = 4096

// scanSlab caps the byte slabs ScanRaw copies values into.
const scanSlab = 256 << 10

// ScanRaw calls fn with the seq and stored bytes of every event with
// seq > after, up to the head at the time of the call, in order. It reads in
// bounded transactions of scanChunk events and calls fn outside them, so fn
// may take its time; raw is fn's to keep. An error from fn stops the scan
// and is returned as is. A scan whose cursor ends before that head (a
// damaged page of the file) returns an error wrapping ErrCorrupt: events
// are never deleted, so the ledger it read is not whole.
func (s *Store) ScanRaw(ctx context.Context, after uint64, fn func(seq uint64, raw []byte) error) error {
	end, _ := s.Head()
	type kv struct {
		seq uint64
		raw []byte
	}
	if after >= end {
		return nil
	}
	// Sized to what this scan can return: the outbox scans a short tail.
	chunk := make([]kv, 0, min(scanChunk, end-after))
	for after < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk = chunk[:0]
		var buf []byte
		err := s.view(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEvents)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.Seek(seqKey(after + 1)); k != nil && len(chunk) < scanChunk; k, v = c.Next() {
				if len(k) != 8 {
					return fmt.Errorf("%w: key %x", ErrCorrupt, k)
				}
				seq := binary.BigEndian.Uint64(k)
				if seq > end {
					break
				}
				// Values must be copied out of the tx: into slabs sized
				// for the events left in this chunk (as large as this
				// one), at most scanSlab, so a short tail is a small
				// allocation.
				if cap(buf)-len(buf) < len(v) {
					left := min(uint64(scanChunk-len(chunk)), end-seq+1)
					buf = make([]byte, 0, max(len(v), int(min(uint64(len(v))*left, scanSlab))))
				}
				start := len(buf)
				buf = append(buf, v...)
				chunk = append(chunk, kv{seq, buf[start:len(buf):len(buf)]})
			}
			return nil
		})
		if err != nil {
			return s.readErr("scan", err)
		}
		if len(chunk) == 0 {
			// Events are never deleted: a cursor that ends before the
			// head was led past them by a damaged page. Saying nothing
			// would pass a ledger cut short for a whole one.
			return fmt.Errorf("scan: %w: the events end at seq %d, the head is seq %d (a damaged page hides the rest)", ErrCorrupt, after, end)
		}
		for _, e := range chunk {
			if err := fn(e.seq, e.raw); err != nil {
				return err
			}
		}
		after = chunk[len(chunk)-1].seq
	}
	return nil
}

// Scan calls fn with every event with seq > after, up to the head at the
// time of the call, in order, decoded with Decode (Raw set). See ScanRaw for
// the transactions. A stored event that does not decode, or whose seq is not
// its key, stops the scan with an error wrapping ErrCorrupt.
func (s *Store) Scan(ctx context.Context, after uint64, fn func(Envelope) error) error {
	return s.ScanRaw(ctx, after, func(seq uint64, raw []byte) error {
		e, err := decodeAt(seq, raw)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		return fn(e)
	})
}

// Get returns the event at seq, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, seq uint64) (Envelope, error) {
	if err := ctx.Err(); err != nil {
		return Envelope{}, err
	}
	var raw []byte
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketEvents); b != nil {
			if v := b.Get(seqKey(seq)); v != nil {
				raw = bytes.Clone(v)
			}
		}
		return nil
	})
	if err != nil {
		return Envelope{}, s.readErr(fmt.Sprintf("get seq %d", seq), err)
	}
	if raw == nil {
		return Envelope{}, fmt.Errorf("get seq %d: %w", seq, ErrNotFound)
	}
	e, err := decodeAt(seq, raw)
	if err != nil {
		return Envelope{}, fmt.Errorf("get: %w", err)
	}
	return e, nil
}

// decodeAt decodes raw stored under seq's key.
func decodeAt(seq uint64, raw []byte) (Envelope, error) {
	e, err := Decode(raw)
	if err != nil {
		return Envelope{}, err
	}
	if e.Seq != seq {
		return Envelope{}, fmt.Errorf("seq %d: %w: holds seq %d", seq, ErrCorrupt, e.Seq)
	}
	return e, nil
}
