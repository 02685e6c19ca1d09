package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// A checkpoint's state larger than sectionTxBytes (the unsealed day of a
// busy site: tens of MB) is stored in parts, each in a transaction of its
// own, before the transaction that stores the checkpoint naming them.
// Written as one value, it held bbolt's write lock, and so every append,
// for the whole write and its fsync: a second, for a 95 MB state. The
// checkpoint value is then the seq, headPartsMarker, the number of parts
// and the state's length (uvarints); the parts are under
// "version/seq/i" in the bucket checkpoint_parts. A state never starts
// with the marker (projections' encoding starts with its own magic).
const headPartsMarker = "\x00recledger.checkpoint-parts\n"

// headSumMarker, after the seq, says that the SHA-256 of the state
// follows (32 bytes), then the state or its parts' description as above.
// LoadCheckpoint checks it: a head whose bytes were damaged but still
// decode was served as the state until verify folded the events (a walk).
// Checkpoints saved before it have no sum and load as they did.
const headSumMarker = "\x00recledger.checkpoint-sha256\n"

// headPartKey is the key of part i of the state of version's checkpoint
// at seq.
func headPartKey(version string, seq uint64, i int) []byte {
	return fmt.Appendf(nil, "%s/%d/%d", version, seq, i)
}

// putHeadParts returns the checkpoint value of state at seq: the state
// itself after the seq when it is small, else the parts' description,
// after storing the parts.
func (s *Store) putHeadParts(ctx context.Context, version string, seq uint64, state []byte) ([]byte, error) {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 128), seq)
	sum := sha256.Sum256(state)
	v = append(append(v, headSumMarker...), sum[:]...)
	size := s.sectionTxBytes
	if len(state) <= size {
		return append(v, state...), nil
	}
	n := (len(state) + size - 1) / size
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		part := state[i*size : min((i+1)*size, len(state))]
		err := s.update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketHeadParts)
			if err != nil {
				return err
			}
			return b.Put(headPartKey(version, seq, i), part)
		})
		if err != nil {
			return nil, s.readErr("save checkpoint part", err)
		}
	}
	v = append(v, headPartsMarker...)
	v = binary.AppendUvarint(v, uint64(n))
	return binary.AppendUvarint(v, uint64(len(state))), nil
}

// dropHeadParts deletes the parts of version's checkpoints at other seqs
// than keep (the one replaced, and any a crash left unnamed), and those of
// other versions.
func dropHeadParts(b *bolt.Bucket, version string, keep uint64) error {
	own := []byte(version + "/")
	kept := []byte(version + "/" + strconv.FormatUint(keep, 10) + "/")
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if !bytes.HasPrefix(k, own) || !bytes.HasPrefix(k, kept) {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// readHeadParts reads back, in tx, the state a checkpoint value
// describes (desc: what follows the marker).
func readHeadParts(tx *bolt.Tx, version string, seq uint64, desc []byte) ([]byte, error) {
	n, k := binary.Uvarint(desc)
	total, k2 := binary.Uvarint(desc[max(k, 0):])
	if k <= 0 || k2 <= 0 || n == 0 || total == 0 {
		return nil, fmt.Errorf("%w: a parted checkpoint without its parts' count", ErrCorrupt)
	}
	b := tx.Bucket(bucketHeadParts)
	state := make([]byte, 0, min(total, 1<<28)) // total is read from the file
	for i := range int(n) {
		var part []byte
		if b != nil {
			part = b.Get(headPartKey(version, seq, i))
		}
		if part == nil || uint64(len(state)+len(part)) > total {
			return nil, fmt.Errorf("%w: part %d of %d of the checkpoint at seq %d is missing or too long", ErrCorrupt, i, n, seq)
		}
		state = append(state, part...)
	}
	if uint64(len(state)) != total {
		return nil, fmt.Errorf("%w: the checkpoint at seq %d has %d bytes in its parts, not %d", ErrCorrupt, seq, len(state), total)
	}
	return state, nil
}
