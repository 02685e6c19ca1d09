package projections

import (
	"context"
	"fmt"
	"maps"
	"sort"

	"github.com/recledger/recledger/ledger"
)

// historyChunks is how many decoded pause chunks a query keeps: a day's
// contacts have their rows in one or two chunks.
const historyChunks = 4

// history is how a query reaches the sealed history: the descriptors of the
// sections as they were when it was taken, the reader for the sections whose
// bytes the state no longer holds, and the pause chunks it decoded, kept
// for the rest of the query. Everything it reaches is immutable (sections,
// and the rows of cold contacts, which are in chunks or final in patched),
// so a history taken under the Live's lock is read after releasing it.
type history struct {
	reader  SectionReader
	cold    []coldDay
	chunks  []pauseChunk
	patched map[int]*ledger.PauseRow // read only
	decoded map[int][]ledger.PauseRow
	days    dayRule // the provisional day of a contact cooled before its day was sealed
}

// history returns the state's history for one query. With own, it copies
// what the fold may change (the slices it appends to, the patched map),
// so that it can be read while the fold goes on.
func (s *State) history(own bool) *history {
	h := &history{reader: s.reader, cold: s.cold, chunks: s.pauses.chunks, patched: s.pauses.patched, days: s.dayRule()}
	if own {
		h.cold, h.chunks, h.patched = clipped(s.cold), clipped(s.pauses.chunks), maps.Clone(s.pauses.patched)
	}
	return h
}

// clipped is s with no room to grow: an append by the fold copies it
// rather than writing into it. A dropped section (SectionsStored) changes
// an element in place, which the copy does not see.
func clipped[T any](s []T) []T { return append([]T(nil), s...) }

// bytes returns the bytes of a section.
func (h *history) bytes(ctx context.Context, c *section) ([]byte, error) {
	return c.load(ctx, h.reader)
}

// row returns pause row i of a cold contact: encoded in a chunk, or
// patched since.
func (h *history) row(ctx context.Context, i int) (ledger.PauseRow, error) {
	if p, ok := h.patched[i]; ok {
		return *p, nil
	}
	k := sort.Search(len(h.chunks), func(k int) bool { return h.chunks[k].First+h.chunks[k].Rows > i })
	if i < 0 || k == len(h.chunks) {
		return ledger.PauseRow{}, fmt.Errorf("pause row %d: %w: not in a sealed chunk", i, ledger.ErrCorrupt)
	}
	rows, err := h.chunk(ctx, k)
	if err != nil {
		return ledger.PauseRow{}, err
	}
	return rows[i-h.chunks[k].First], nil
}

// chunk returns the rows of chunk k as encoded (patched rows not applied).
func (h *history) chunk(ctx context.Context, k int) ([]ledger.PauseRow, error) {
	if rows, ok := h.decoded[k]; ok {
		return rows, nil
	}
	c := &h.chunks[k]
	b, err := h.bytes(ctx, &c.Sec)
	if err != nil {
		return nil, err
	}
	rows, err := decodeChunk(c, b)
	if err != nil {
		return nil, err
	}
	if h.decoded == nil {
		h.decoded = map[int][]ledger.PauseRow{}
	}
	if len(h.decoded) >= historyChunks {
		for k := range h.decoded {
			delete(h.decoded, k) // any one: only the cost of a query depends on it
			break
		}
	}
	h.decoded[k] = rows
	return rows, nil
}
