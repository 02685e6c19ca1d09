package projections

import (
	"context"
	"fmt"

	"github.com/recledger/recledger/ledger"
)

// historyChunks is how many decoded pause chunks a query keeps: a day's
// contacts have their rows in one or two chunks.
const historyChunks = 4

// history is how one query reaches the sealed history: the sections'
// bytes, held or read back through the state's SectionReader, and the
// pause chunks it decoded, kept for the rest of the query.
type history struct {
	ctx    context.Context
	s      *State
	chunks map[int][]ledger.PauseRow
}

func (s *State) history(ctx context.Context) *history {
	return &history{ctx: ctx, s: s}
}

// bytes returns the bytes of a section of the state.
func (h *history) bytes(c *section) ([]byte, error) { return c.load(h.ctx, h.s.reader) }

// row returns pause row i.
func (h *history) row(i int) (ledger.PauseRow, error) {
	l := &h.s.pauses
	if i < 0 || i >= l.Len() {
		return ledger.PauseRow{}, fmt.Errorf("pause row %d: %w: %d rows", i, ledger.ErrCorrupt, l.Len())
	}
	if r, ok := l.mem(i); ok {
		return r, nil
	}
	k := l.chunkOf(i)
	rows, err := h.chunk(k)
	if err != nil {
		return ledger.PauseRow{}, err
	}
	return rows[i-l.chunks[k].First], nil
}

// chunk returns the rows of chunk k as encoded (patched rows not applied).
func (h *history) chunk(k int) ([]ledger.PauseRow, error) {
	if rows, ok := h.chunks[k]; ok {
		return rows, nil
	}
	c := &h.s.pauses.chunks[k]
	b, err := h.bytes(&c.Sec)
	if err != nil {
		return nil, err
	}
	rows, err := decodeChunk(c, b)
	if err != nil {
		return nil, err
	}
	if h.chunks == nil {
		h.chunks = map[int][]ledger.PauseRow{}
	}
	if len(h.chunks) >= historyChunks {
		for k := range h.chunks {
			delete(h.chunks, k) // any one: only the cost of a query depends on it
			break
		}
	}
	h.chunks[k] = rows
	return rows, nil
}
