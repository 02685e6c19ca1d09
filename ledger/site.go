package ledger

import (
	"context"
	"fmt"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// bucketMeta holds facts about the ledger file itself: "site", the site
// whose ledger it is; "probe", ProbeWrite's.
var (
	bucketMeta = []byte("meta")
	metaSite   = []byte("site")
	metaProbe  = []byte("probe") // written by ProbeWrite, never read
)

// ClaimSite records site as the one whose ledger this is, or, when another
// site is recorded, returns an error wrapping ErrConflict naming it. The
// site names the subjects the ledger is mirrored under (API.md §6): served
// under another name, its mirror would start again from event 1 under the
// new subjects, and the old stream would no longer verify or restore. A
// ledger written before sites were recorded takes the first site claimed.
func (s *Store) ClaimSite(ctx context.Context, site string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("claim site: %w", err)
	}
	if err := validSite(site); err != nil {
		return fmt.Errorf("claim site: %w", err)
	}
	var held string
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := b.Get(metaSite); v != nil {
			held = string(v)
			return nil
		}
		return b.Put(metaSite, []byte(site))
	})
	if err != nil {
		return fmt.Errorf("claim site: %w: %v", ErrUnavailable, err)
	}
	if held != "" && held != site {
		return fmt.Errorf("claim site: %w: this is the ledger of site %q, not %q", ErrConflict, held, site)
	}
	return nil
}

// Site is the site recorded by ClaimSite, "" when none is.
func (s *Store) Site(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("site: %w", err)
	}
	var site string
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			site = string(b.Get(metaSite))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("site: %w: %v", ErrUnavailable, err)
	}
	return site, nil
}

// probeMinFree is the free space ProbeWrite wants beside the file: its
// own commit may fit in pages the file already has, while an append needs
// new ones.
const probeMinFree = 4 << 20

// ProbeWrite tells whether the file takes writes now: the file system
// holding it has probeMinFree left (where that can be told), and a write
// that holds no event (a key of the meta bucket) commits, fsynced as an
// append is. A server whose last append failed (a full disk, since freed)
// learns from it that it may take requests again, without risking one.
func (s *Store) ProbeWrite(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if s.closedFlag.Load() {
		return fmt.Errorf("probe write: %w", ErrClosed)
	}
	if b := s.broken.Load(); b != nil {
		return fmt.Errorf("probe write: %w", *b)
	}
	if free, ok := FreeBytes(filepath.Dir(s.path)); ok && free < probeMinFree {
		return fmt.Errorf("probe write: %w: %d bytes free beside %s", ErrUnavailable, free, s.path)
	}
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(metaProbe, []byte{1})
	})
	if err != nil {
		return s.readErr("probe write", err)
	}
	s.writeFail.Store(nil)
	return nil
}

// WriteFailure is the error of the last batch that failed to commit, by
// any appender (the API's, the scheduler's timers and seals), until a
// batch or ProbeWrite commits; nil while writes commit. A server whose
// only writes are its own (a quiet night: pause expiries, the seal) said
// it was ready while its disk was full (a walk).
func (s *Store) WriteFailure() error {
	if e := s.writeFail.Load(); e != nil {
		return *e
	}
	return nil
}
