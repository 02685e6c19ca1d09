package ledger

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// idGen hands out ULIDs that are strictly increasing, also when the clock
// steps backwards and across restarts (it starts from the last stored ID).
// It is owned by the writer goroutine and is not safe for concurrent use.
type idGen struct {
	last ulid.ULID
}

// next returns an ID greater than every ID handed out before. Its time is
// max(now, time of the last ID); within the same millisecond the entropy
// of the last ID is incremented by one, so only the first ID of each
// millisecond costs a read from crypto/rand.
func (g *idGen) next(now time.Time) (ulid.ULID, error) {
	ms := ulid.Timestamp(now)
	lastMS := g.last.Time()
	if ms < lastMS {
		ms = lastMS
	}
	if ms == lastMS && g.last != (ulid.ULID{}) {
		id := g.last
		if incEntropy(&id) {
			g.last = id
			return id, nil
		}
		// The 80 random bits overflowed: move on to the next millisecond.
		ms++
	}
	var id ulid.ULID
	if err := id.SetTime(ms); err != nil {
		return ulid.ULID{}, fmt.Errorf("new id: %w", err)
	}
	if _, err := rand.Read(id[6:]); err != nil {
		return ulid.ULID{}, fmt.Errorf("new id: %w", err)
	}
	g.last = id
	return id, nil
}

// incEntropy adds one to the 80-bit entropy part of id; it reports false
// (and leaves id unusable) when the entropy overflows.
func incEntropy(id *ulid.ULID) bool {
	for i := len(id) - 1; i >= 6; i-- {
		id[i]++
		if id[i] != 0 {
			return true
		}
	}
	return false
}

// idTime is the ledger time of an ID: its millisecond timestamp in UTC.
func idTime(id ulid.ULID) Time { return T(ulid.Time(id.Time())) }
