package replay

import (
	"context"
	"fmt"

	"github.com/recledger/recledger/ledger"
)

// DefaultRestoreBatch is how many events Restore imports per transaction.
const DefaultRestoreBatch = 4096

// Importer takes already-sealed envelopes verbatim; *ledger.Store fits it.
type Importer interface {
	Import(ctx context.Context, envs []ledger.Envelope) error
	Head() (seq uint64, hash string)
}

var _ Importer = (*ledger.Store)(nil)

// Restore copies src's events after dst's head into dst, batch events per
// Import (DefaultRestoreBatch when batch ≤ 0), calling progress (when set)
// with the last seq of each batch. It returns how many events it copied.
// dst checks the chain of what it imports; the caller verifies the result.
func Restore(ctx context.Context, src Source, dst Importer, batch int, progress func(seq uint64)) (uint64, error) {
	if batch <= 0 {
		batch = DefaultRestoreBatch
	}
	after, _ := dst.Head()
	var (
		n   uint64
		buf = make([]ledger.Envelope, 0, batch)
	)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := dst.Import(ctx, buf); err != nil {
			buf = buf[:0] // refused: not tried again by the flush after the scan
			return err
		}
		n += uint64(len(buf))
		if progress != nil {
			progress(buf[len(buf)-1].Seq)
		}
		buf = buf[:0]
		return nil
	}
	err := src.Scan(ctx, after, func(e ledger.Envelope) error {
		if e.Version > ledger.CurrentVersion {
			// Imported with its batch, it would be refused with the events
			// before it: those are kept, as for a damaged event, and the
			// newer build's restore continues after them.
			return fmt.Errorf("seq %d: %w: %s version %d, this build reads up to %d", e.Seq, ledger.ErrUnknownVersion, e.Type, e.Version, ledger.CurrentVersion)
		}
		buf = append(buf, e)
		if len(buf) == batch {
			return flush()
		}
		return nil
	})
	// What was read before a failure was checked as it was read: keep it,
	// so that a mirror damaged at one event restores up to that event.
	if ferr := flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return n, fmt.Errorf("restore after seq %d: %w", after+n, err)
	}
	return n, nil
}
