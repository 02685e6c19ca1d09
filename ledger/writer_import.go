package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// imported is a sealed envelope checked by the Import caller, with its
// prev and hash in binary for the writer's chain check.
type imported struct {
	env     Envelope
	prev    [32]byte
	hasPrev bool
	hash    [32]byte
}

// Import appends already-sealed envelopes verbatim (their Raw bytes, or
// their canonical encoding when Raw is empty), as when rebuilding a data
// directory from the JetStream mirror. Each must decode with a valid hash,
// and continue the chain: seq = head+1, prev = head hash, id > last id.
// The call is one transaction, serialised with Append by the writer
// goroutine; if any envelope does not fit, nothing of the call is stored
// and the error wraps ErrCorrupt, ErrChainBroken, ErrInvalid, or
// ErrUnknownVersion for an event of a newer build's version. Subscribe
// hooks see imported envelopes like appended ones.
func (s *Store) Import(ctx context.Context, envs []Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	if err := s.writable("import"); err != nil {
		return err
	}
	r := s.newRequest()
	r.imports = make([]imported, len(envs))
	for i, e := range envs {
		im, err := checkSealed(e)
		if err != nil {
			return fmt.Errorf("import seq %d: %w", e.Seq, err)
		}
		r.imports[i] = im
	}
	if _, err := s.submit(ctx, r); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// checkSealed decodes e's stored bytes and checks they are canonical.
func checkSealed(e Envelope) (imported, error) {
	raw := e.Raw
	if len(raw) == 0 {
		b, err := json.Marshal(e)
		if err != nil {
			return imported{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		raw = b
	}
	d, err := Decode(raw)
	if err != nil {
		return imported{}, err
	}
	if !Canonical(d, raw) {
		return imported{}, fmt.Errorf("%w: not the canonical encoding", ErrCorrupt)
	}
	if d.Version > CurrentVersion {
		// Imported, it would make a ledger this build cannot fold (an
		// upgrade walk's older restore imported a newer build's mirror
		// whole, then failed on it).
		return imported{}, fmt.Errorf("%w: %s version %d, this build reads up to %d", ErrUnknownVersion, d.Type, d.Version, CurrentVersion)
	}
	im := imported{env: d}
	if _, err := hex.Decode(im.hash[:], []byte(d.Hash)); err != nil || len(d.Hash) != 2*len(im.hash) {
		return imported{}, fmt.Errorf("%w: bad hash %q", ErrCorrupt, d.Hash)
	}
	if d.Prev != "" {
		if _, err := hex.Decode(im.prev[:], []byte(d.Prev)); err != nil || len(d.Prev) != 2*len(im.prev) {
			return imported{}, fmt.Errorf("%w: bad prev %q", ErrCorrupt, d.Prev)
		}
		im.hasPrev = true
	}
	return im, nil
}

// checkImport checks that ims continue the chain at t, without changing t.
func (t *tail) checkImport(ims []imported) error {
	seq, prev, hasPrev, last := t.seq, t.prev, t.hasPrev, t.ids.last
	for _, im := range ims {
		e := im.env
		switch {
		case e.Seq != seq+1:
			return fmt.Errorf("import seq %d: %w: expected seq %d", e.Seq, ErrChainBroken, seq+1)
		case im.hasPrev != hasPrev || im.prev != prev:
			return fmt.Errorf("import seq %d: %w: prev is not the head hash", e.Seq, ErrChainBroken)
		case e.ID.Compare(last) <= 0:
			return fmt.Errorf("import seq %d: %w: id %s not after %s", e.Seq, ErrInvalid, e.ID, last)
		}
		seq, prev, hasPrev, last = e.Seq, im.hash, true, e.ID
	}
	return nil
}
