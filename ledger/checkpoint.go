package ledger

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SaveCheckpoint stores state as the projections' checkpoint for version
// at seq, replacing any older one of that version. It is an ordinary bbolt
// transaction of its own (one fsync), taken between two of the writer's
// batches; it never waits for more than the batch being written.
func (s *Store) SaveCheckpoint(ctx context.Context, version string, seq uint64, state []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.ro {
		return fmt.Errorf("save checkpoint: %w: opened read-only", ErrUnavailable)
	}
	if version == "" {
		return fmt.Errorf("save checkpoint: %w: empty version", ErrInvalid)
	}
	if head, _ := s.Head(); seq > head {
		return fmt.Errorf("save checkpoint: %w: seq %d is after the head %d", ErrInvalid, seq, head)
	}
	v := make([]byte, 8+len(state))
	binary.BigEndian.PutUint64(v, seq)
	copy(v[8:], state)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCheckpoints).Put([]byte(version), v)
	})
	if err != nil {
		return s.readErr("save checkpoint", err)
	}
	return nil
}

// LoadCheckpoint returns the checkpoint stored for version, or an error
// wrapping ErrNotFound when there is none.
func (s *Store) LoadCheckpoint(ctx context.Context, version string) (seq uint64, state []byte, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	var v []byte
	err = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketCheckpoints); b != nil {
			if got := b.Get([]byte(version)); got != nil {
				v = append([]byte(nil), got...)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, s.readErr("load checkpoint", err)
	}
	if v == nil {
		return 0, nil, fmt.Errorf("load checkpoint %q: %w", version, ErrNotFound)
	}
	if len(v) < 8 {
		return 0, nil, fmt.Errorf("load checkpoint %q: %w: %d bytes", version, ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), v[8:], nil
}
