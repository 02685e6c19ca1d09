package projections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/recledger/recledger/ledger"
)

// SectionReader reads back the sections a checkpoint named (*ledger.Store
// fits it). Section returns the bytes stored under key (an error wrapping
// ledger.ErrNotFound when there are none); SectionSizes returns the length
// stored under each key, -1 for none, without reading the bytes.
type SectionReader interface {
	Section(ctx context.Context, key string) ([]byte, error)
	SectionSizes(ctx context.Context, keys []string) ([]int, error)
}

var _ SectionReader = (*ledger.Store)(nil)

// section is one immutable, history-long part of the state: a sealed day's
// manifest, the contacts cooled at a seal, the pause rows encoded at a
// seal. Its key is derived from the ledger (the seal and the day), so the
// same ledger cuts the same sections under the same keys. The state holds
// its bytes only until they are stored (State.SectionsStored); queries
// then read them back through the SectionReader. The checkpoint and the
// digest name a section by key, length and SHA-256, never by its bytes, so
// neither depends on where the bytes are.
//
// A kept section (the manifest entries of contacts cooled before their
// day is sealed, manifestBook.Cooled) is one the fold itself reads: the
// state keeps its bytes once stored too, and loads them when it is
// rebuilt from a checkpoint. When the fold no longer names a section that
// was stored, it retires it (State.retire): the next checkpoint deletes
// it from the store.
type section struct {
	Key    string `json:"key"`
	Len    int    `json:"len"`
	Hash   string `json:"sha256"`
	data   []byte // nil once stored, unless kept
	keep   bool   // the fold reads it: the bytes stay in memory
	stored bool   // the store has it
}

// newSection cuts a section of data under key (with the version prefix).
func newSection(key string, data []byte) section {
	h := sha256.Sum256(data)
	return section{Key: Version + "/" + key, Len: len(data), Hash: hex.EncodeToString(h[:]), data: data}
}

// held reports whether the state still holds the bytes.
func (c *section) held() bool { return c.data != nil }

// unstored reports whether the store does not have the section yet.
func (c *section) unstored() bool { return c.data != nil && !c.stored }

// markStored records that the store has the section, dropping its bytes
// unless it is kept.
func (c *section) markStored() {
	c.stored = true
	if !c.keep {
		c.data = nil
	}
}

// load returns the section's bytes: the ones held, or the ones r reads,
// checked against the length and hash.
func (c *section) load(ctx context.Context, r SectionReader) ([]byte, error) {
	if c.data != nil {
		return c.data, nil
	}
	if r == nil {
		return nil, fmt.Errorf("load section %s: %w: no section store", c.Key, ledger.ErrUnavailable)
	}
	b, err := r.Section(ctx, c.Key)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, ledger.ErrNotFound) {
			return nil, fmt.Errorf("load section %s: %w: missing from the store", c.Key, ledger.ErrCorrupt)
		}
		return nil, fmt.Errorf("sealed history: %w", err)
	}
	h := sha256.Sum256(b)
	if len(b) != c.Len || hex.EncodeToString(h[:]) != c.Hash {
		return nil, fmt.Errorf("load section %s: %w: %d bytes that do not hash to the checkpoint's", c.Key, ledger.ErrCorrupt, len(b))
	}
	return b, nil
}

// sections lists every section of the state in the checkpoint's order:
// the manifests in seal order, the cooled manifest entries, the cold
// contacts, the pause rows.
func (s *State) sections() []*section {
	out := make([]*section, 0, len(s.book.Manifests)+len(s.book.Cooled)+len(s.cold)+len(s.pauses.chunks))
	for i := range s.book.Manifests {
		out = append(out, &s.book.Manifests[i])
	}
	for i := range s.book.Cooled {
		out = append(out, &s.book.Cooled[i])
	}
	for i := range s.cold {
		out = append(out, &s.cold[i].Sec)
	}
	for i := range s.pauses.chunks {
		out = append(out, &s.pauses.chunks[i].Sec)
	}
	return out
}

// PendingSections returns the sections the store does not have yet, in
// the checkpoint's order, and then the stored sections the state retired
// (Drop set): what a checkpoint of the state must store, and may delete,
// beside its head. The bytes are shared and never change: read only.
func (s *State) PendingSections() []ledger.Section {
	var out []ledger.Section
	for _, c := range s.sections() {
		if c.unstored() {
			out = append(out, ledger.Section{Key: c.Key, Data: c.data})
		}
	}
	for _, k := range s.retired {
		out = append(out, ledger.Section{Key: k, Drop: true})
	}
	return out
}

// retire records that the state no longer names secs: those the store
// has are deleted by the next checkpoint (PendingSections).
func (s *State) retire(secs []section) {
	for _, c := range secs {
		if c.stored {
			s.retired = append(s.retired, c.Key)
		}
	}
}

// SectionsStored tells the state that the sections of keys are stored and
// readable through r (and the retired ones among keys deleted): it drops
// their bytes but a kept section's, and queries read them back through r
// from now on. Keys the state does not know are ignored.
func (s *State) SectionsStored(r SectionReader, keys []string) {
	if r == nil || len(keys) == 0 {
		return
	}
	s.reader = r
	stored := make(map[string]bool, len(keys))
	for _, k := range keys {
		stored[k] = true
	}
	for _, c := range s.sections() {
		if stored[c.Key] {
			c.markStored()
		}
	}
	s.retired = slices.DeleteFunc(s.retired, func(k string) bool { return stored[k] })
}

// DropStored drops the bytes of every section the state holds that r
// holds too, at the same length, and reads them back through r from then
// on (checked against the state's own hash whenever one is read). It is
// how a replay from scratch over a ledger whose checkpoints stored its
// sealed history keeps that history out of the heap; the digest, made of
// the state's own hashes, does not change. It returns how many it dropped.
//
// With check set, each section r holds at that length is also read and
// must hash to the state's own: one that does not (a damaged page) is
// kept, unstored, so the next checkpoint writes it again under its key.
// A rebuild (serve --rebuild) checks; a replay that only reads does not.
func (s *State) DropStored(ctx context.Context, r SectionReader, check bool) (int, error) {
	var held []*section
	for _, c := range s.sections() {
		if c.unstored() {
			held = append(held, c)
		}
	}
	if len(held) == 0 || r == nil {
		return 0, nil
	}
	keys := make([]string, len(held))
	for i, c := range held {
		keys[i] = c.Key
	}
	sizes, err := r.SectionSizes(ctx, keys)
	if err != nil {
		return 0, err
	}
	var drop []string
	for i, c := range held {
		if sizes[i] != c.Len {
			continue
		}
		if check {
			b, err := r.Section(ctx, c.Key)
			if err != nil && !errors.Is(err, ledger.ErrCorrupt) {
				return 0, err
			}
			if h := sha256.Sum256(b); err != nil || hex.EncodeToString(h[:]) != c.Hash {
				continue
			}
		}
		drop = append(drop, c.Key)
	}
	s.SectionsStored(r, drop)
	return len(drop), nil
}

// ShareKept makes the kept sections of s share the bytes of from's kept
// sections of the same key, length and hash: from is another fold of the
// same ledger (the Checkpointer's own state beside the server's), and
// both would otherwise hold a busy day's manifest entries each. No state
// ever changes a section's bytes. It returns how many it shared.
func (s *State) ShareKept(from *State) int {
	if from == nil || from == s || len(s.book.Cooled) == 0 {
		return 0
	}
	theirs := make(map[string]*section, len(from.book.Cooled))
	for i := range from.book.Cooled {
		if c := &from.book.Cooled[i]; c.held() {
			theirs[c.Key] = c
		}
	}
	n := 0
	for i := range s.book.Cooled {
		c := &s.book.Cooled[i]
		f := theirs[c.Key]
		if f == nil || c.Len == 0 || !c.held() || f.Len != c.Len || f.Hash != c.Hash || len(f.data) != c.Len {
			continue
		}
		if &f.data[0] != &c.data[0] {
			c.data = f.data
			n++
		}
	}
	return n
}

// loadKept reads, through r, the bytes of the kept sections of a state
// rebuilt from a checkpoint (checked against the checkpoint's hash).
func (s *State) loadKept(ctx context.Context, r SectionReader) error {
	for _, c := range s.sections() {
		if !c.keep || c.held() {
			continue
		}
		b, err := c.load(ctx, r)
		if err != nil {
			return err
		}
		c.data, c.stored = b, true
	}
	return nil
}

// checkStored checks that r holds every section the state does not, at
// the right length (the hash is checked whenever one is read).
func (s *State) checkStored(ctx context.Context, r SectionReader) error {
	var keys []string
	var lens []int
	for _, c := range s.sections() {
		if !c.held() {
			keys, lens = append(keys, c.Key), append(lens, c.Len)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if r == nil {
		return fmt.Errorf("sections: %w: %d stored sections and no section store", ledger.ErrUnavailable, len(keys))
	}
	sizes, err := r.SectionSizes(ctx, keys)
	if err != nil {
		return fmt.Errorf("sections: %w", err)
	}
	if len(sizes) != len(keys) {
		return fmt.Errorf("sections: %w: %d sizes for %d keys", ledger.ErrCorrupt, len(sizes), len(keys))
	}
	for i, n := range sizes {
		switch {
		case n < 0:
			return fmt.Errorf("section %s: %w: missing from the store", keys[i], ledger.ErrCorrupt)
		case n != lens[i]:
			return fmt.Errorf("section %s: %w: %d bytes stored, the checkpoint says %d", keys[i], ledger.ErrCorrupt, n, lens[i])
		}
	}
	return nil
}

// CheckSections reads every section of the state and checks it against
// the checkpoint's length and SHA-256; it returns how many sections and
// bytes it read, and the first section that fails (wrapping
// ledger.ErrCorrupt when it is missing or altered). A restart checks only
// that the sections are there; this reads them all.
func (s *State) CheckSections(ctx context.Context) (n int, size int64, err error) {
	for _, c := range s.sections() {
		b, err := c.load(ctx, s.reader)
		if err != nil {
			return n, size, err
		}
		n, size = n+1, size+int64(len(b))
	}
	return n, size, nil
}
