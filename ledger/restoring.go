package ledger

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// metaRestoring marks a ledger file a restore is filling (bucketMeta):
// until the restore finishes, the file holds only the first events of a
// history, and a server appending to it would fork that history (a crash
// walk's killed restore was served, and its next event took a seq the
// mirror already gave another).
var metaRestoring = []byte("restoring")

// SetRestoring marks (on true) or unmarks the file as being filled by a
// restore; Restoring reads the mark.
func (s *Store) SetRestoring(ctx context.Context, on bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mark restore: %w", err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if on {
			return b.Put(metaRestoring, []byte("1"))
		}
		return b.Delete(metaRestoring)
	})
	if err != nil {
		return fmt.Errorf("mark restore: %w: %v", ErrUnavailable, err)
	}
	return nil
}

// Restoring reports whether a restore began filling the file and has
// not finished.
func (s *Store) Restoring(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("restoring: %w", err)
	}
	var on bool
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			on = b.Get(metaRestoring) != nil
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("restoring: %w: %v", ErrUnavailable, err)
	}
	return on, nil
}
