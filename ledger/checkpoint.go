package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Section is an immutable part of a checkpoint's state, stored apart from
// it under its own key: the projections cut one for each sealed day's
// manifest, its cold contacts and its pause rows, and name them in the
// checkpoint. A section belongs to the checkpoint version its key starts
// with ("VERSION/..."). A key is written once; the same key always holds
// the same bytes (the projections derive both from the ledger).
type Section struct {
	Key  string
	Data []byte
	// Drop asks SaveCheckpoint to delete the section stored under Key:
	// the checkpoint being saved no longer names it (the projections
	// retire a section whose contents moved into another one). It is
	// deleted in the checkpoint's own transaction, so the checkpoint it
	// replaces, which may name it, stays whole until then.
	Drop bool
}

// SaveCheckpoint stores state as the projections' checkpoint for version
// at seq, replacing any older one of that version, and puts sections (each
// key starting with "version/") into the bucket "sections": a checkpoint is
// never stored without the sections it names. The sections go first, in
// transactions of at most sectionTxBytes each, the last of them with the
// checkpoint itself, so that a first save after a rebuild (every section
// of the history, a GiB at 10 M events) does not hold bbolt's write lock,
// and so every append, for the whole of it. A crash in between leaves
// sections no checkpoint names yet; the next save writes them again (the
// same key always holds the same bytes).
//
// The first checkpoint of a version also deletes the checkpoints and
// sections of every other version: they are never read again by this
// code, and they are as large as the history. (An older program started
// afterwards finds its checkpoint gone and rebuilds its state by replay.)
// A section marked Drop is deleted with the checkpoint.
//
// It is an ordinary bbolt transaction of its own (one fsync), taken
// between two of the writer's batches; it never waits for more than the
// batch being written.
func (s *Store) SaveCheckpoint(ctx context.Context, version string, seq uint64, state []byte, sections []Section) error {
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
	prefix := version + "/"
	for _, sec := range sections {
		if !strings.HasPrefix(sec.Key, prefix) || len(sec.Key) == len(prefix) {
			return fmt.Errorf("save checkpoint: %w: section key %q is not under %q", ErrInvalid, sec.Key, prefix)
		}
	}
	var drops []string
	if slices.ContainsFunc(sections, func(sec Section) bool { return sec.Drop }) {
		puts := make([]Section, 0, len(sections))
		for _, sec := range sections {
			if sec.Drop {
				drops = append(drops, sec.Key)
			} else {
				puts = append(puts, sec)
			}
		}
		sections = puts
	}
	put := func(sb *bolt.Bucket, secs []Section) error {
		for _, sec := range secs {
			if err := sb.Put([]byte(sec.Key), sec.Data); err != nil {
				return err
			}
		}
		return nil
	}
	for len(sections) > 0 {
		n, size := 0, 0
		for n < len(sections) && (n == 0 || size+len(sections[n].Data) <= s.sectionTxBytes) {
			size += len(sections[n].Data)
			n++
		}
		if n == len(sections) {
			break // the last part goes with the checkpoint
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.update(func(tx *bolt.Tx) error { return put(tx.Bucket(bucketSections), sections[:n]) })
		if err != nil {
			return s.readErr("save checkpoint sections", err)
		}
		sections = sections[n:]
	}
	v, err := s.putHeadParts(ctx, version, seq, state)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		cb, sb := tx.Bucket(bucketCheckpoints), tx.Bucket(bucketSections)
		pb, err := tx.CreateBucketIfNotExists(bucketHeadParts)
		if err != nil {
			return err
		}
		if cb.Get([]byte(version)) == nil {
			if err := dropOtherVersions(cb, sb, version); err != nil {
				return err
			}
		}
		if err := dropHeadParts(pb, version, seq); err != nil {
			return err
		}
		if err := put(sb, sections); err != nil {
			return err
		}
		for _, k := range drops {
			if err := sb.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return cb.Put([]byte(version), v)
	})
	if err != nil {
		return s.readErr("save checkpoint", err)
	}
	return nil
}

// dropOtherVersions deletes the checkpoints of every version but version,
// and the sections not under "version/".
func dropOtherVersions(cb, sb *bolt.Bucket, version string) error {
	var old [][]byte
	c := cb.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if string(k) != version {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, k := range old {
		if err := cb.Delete(k); err != nil {
			return err
		}
	}
	prefix := []byte(version + "/")
	old = old[:0]
	c = sb.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if !bytes.HasPrefix(k, prefix) {
			old = append(old, bytes.Clone(k))
		}
	}
	for _, k := range old {
		if err := sb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// CheckpointVersions lists the versions of the checkpoints stored, sorted:
// one other than the running build's says the build changed (an upgrade).
func (s *Store) CheckpointVersions(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, s.readErr("checkpoint versions", err)
	}
	return out, nil
}

// LoadCheckpoint returns the checkpoint stored for version, or an error
// wrapping ErrNotFound when there is none. The sections it names are read
// apart, with Section.
func (s *Store) LoadCheckpoint(ctx context.Context, version string) (seq uint64, state []byte, err error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	var found bool
	var bad error
	// One read transaction for the value and its parts: a save meanwhile
	// deletes the parts of the checkpoint it replaces.
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(version))
		if v == nil {
			return nil
		}
		found = true
		if len(v) < 8 {
			bad = fmt.Errorf("%w: %d bytes", ErrCorrupt, len(v))
			return nil
		}
		seq = binary.BigEndian.Uint64(v)
		rest, summed := bytes.CutPrefix(v[8:], []byte(headSumMarker))
		var sum []byte
		if summed {
			if len(rest) < sha256.Size {
				bad = fmt.Errorf("%w: the checkpoint at seq %d is cut short", ErrCorrupt, seq)
				return nil
			}
			sum, rest = rest[:sha256.Size], rest[sha256.Size:]
		}
		if desc, ok := bytes.CutPrefix(rest, []byte(headPartsMarker)); ok {
			state, bad = readHeadParts(tx, version, seq, desc)
		} else {
			state = bytes.Clone(rest)
		}
		if got := sha256.Sum256(state); bad == nil && summed && !bytes.Equal(got[:], sum) {
			bad = fmt.Errorf("%w: the checkpoint at seq %d does not hash to its stored sum: its bytes were damaged", ErrCorrupt, seq)
		}
		return nil
	})
	switch {
	case err != nil:
		return 0, nil, s.readErr("load checkpoint", err)
	case !found:
		return 0, nil, fmt.Errorf("load checkpoint %q: %w", version, ErrNotFound)
	case bad != nil:
		return 0, nil, fmt.Errorf("load checkpoint %q: %w", version, bad)
	}
	return seq, state, nil
}

// Section returns a copy of the bytes stored under key by SaveCheckpoint,
// or an error wrapping ErrNotFound when there are none.
func (s *Store) Section(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var v []byte
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSections); b != nil {
			if got := b.Get([]byte(key)); got != nil {
				v = append(make([]byte, 0, len(got)), got...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.readErr("load section "+key, err)
	}
	if v == nil {
		return nil, fmt.Errorf("load section %s: %w", key, ErrNotFound)
	}
	return v, nil
}

// SectionSizes returns the length of each key's section, -1 for a key with
// none, in one read transaction and without copying any section: it is how
// a checkpoint's sections are checked at a restart without reading them.
func (s *Store) SectionSizes(ctx context.Context, keys []string) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]int, len(keys))
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSections)
		for i, k := range keys {
			out[i] = -1
			if b == nil {
				continue
			}
			if got := b.Get([]byte(k)); got != nil {
				out[i] = len(got)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.readErr("section sizes", err)
	}
	return out, nil
}
