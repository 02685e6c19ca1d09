package replay

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
)

// untilKind says which of an event's coordinates an Until bounds.
type untilKind uint8

const (
	untilNone untilKind = iota
	untilSeq
	untilID
	untilTime
)

// Until bounds a replay: it stops after the last event with seq ≤ N, id ≤
// ULID, or time ≤ T. The zero Until replays everything. Seq, id and time
// all grow with the ledger, so the events kept are always a prefix.
type Until struct {
	kind untilKind
	seq  uint64
	id   ulid.ULID
	t    time.Time
}

// UntilSeq bounds a replay to the events with seq ≤ n.
func UntilSeq(n uint64) Until { return Until{kind: untilSeq, seq: n} }

// UntilID bounds a replay to the events with id ≤ id.
func UntilID(id ulid.ULID) Until { return Until{kind: untilID, id: id} }

// UntilTime bounds a replay to the events with time ≤ t.
func UntilTime(t time.Time) Until { return Until{kind: untilTime, t: t} }

// ParseUntil reads SEQ (decimal), ULID (26 characters, any case) or an
// RFC 3339 time; errors wrap ledger.ErrInvalid.
// The empty string is the zero Until (no bound).
func ParseUntil(s string) (Until, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Until{}, nil
	}
	if isDigits(s) && len(s) != ulid.EncodedSize { // 26 digits can only be a ULID
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Until{}, fmt.Errorf("until %q: %w: seq out of range", s, ledger.ErrInvalid)
		}
		return UntilSeq(n), nil
	}
	if len(s) == ulid.EncodedSize {
		if id, err := ulid.ParseStrict(strings.ToUpper(s)); err == nil {
			return UntilID(id), nil
		}
	}
	t, err := ledger.ParseRFC3339(s)
	if err != nil {
		hint := ""
		if _, derr := time.Parse(time.DateOnly, s); derr == nil {
			hint = fmt.Sprintf(" (a date alone names no moment: %sT00:00:00Z is its start in UTC; give the offset of the site's zone for its local midnight)", s)
		} else if _, terr := time.Parse("15:04", s); terr == nil {
			hint = " (a time of day alone names no day: give the date and the offset too, as 2026-11-23T" + s + ":00Z)"
		} else if _, terr := time.Parse("15:04:05", s); terr == nil {
			hint = " (a time of day alone names no day: give the date and the offset too, as 2026-11-23T" + s + "Z)"
		} else if n, ok := withoutOffset(s); ok {
			// No offset given as an example: a walk copied the -05:00
			// of the old hint on a Berlin site, six hours off.
			hint = " (a time without its offset names no moment: add Z for UTC, as " + n + "Z, or the offset the site's zone had then, as " + n + "+HH:MM; GET /v1/config names the zone)"
		}
		return Until{}, fmt.Errorf("until %q: %w: want a seq, a ULID or an RFC 3339 time%s", s, ledger.ErrInvalid, hint)
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		// 0000-01-01T00:00:00+01:00 is in year -1 in UTC, which no RFC
		// 3339 time names (String could not write it back; fuzzing).
		return Until{}, fmt.Errorf("until %q: %w: in UTC it falls in year %d, outside 0000–9999", s, ledger.ErrInvalid, y)
	}
	return UntilTime(t), nil
}

// withoutOffset reports whether s is a date and time with no offset (a
// space for the T taken too), and gives it in RFC 3339's form.
func withoutOffset(s string) (string, bool) {
	n := strings.ToUpper(strings.Replace(s, " ", "T", 1))
	_, err := time.Parse("2006-01-02T15:04:05.999999999", n)
	return n, err == nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// IsZero reports whether u bounds nothing.
func (u Until) IsZero() bool { return u.kind == untilNone }

// Seq is the bound's seq when it is one (UntilSeq).
func (u Until) Seq() (n uint64, ok bool) { return u.seq, u.kind == untilSeq }

// Past reports whether e lies beyond the bound (and so, since the bound is
// monotone, every later event too).
func (u Until) Past(e *ledger.Envelope) bool {
	switch u.kind {
	case untilSeq:
		return e.Seq > u.seq
	case untilID:
		return e.ID.Compare(u.id) > 0
	case untilTime:
		return e.Time.After(u.t)
	}
	return false
}

// Beyond reports whether the bound lies after e (so that e, were it the
// ledger's last event, leaves the bound in the future).
func (u Until) Beyond(e *ledger.Envelope) bool {
	switch u.kind {
	case untilSeq:
		return u.seq > e.Seq
	case untilID:
		return u.id.Compare(e.ID) > 0
	case untilTime:
		return u.t.After(e.Time.Time)
	}
	return false
}

// String gives the bound back in the form ParseUntil reads ("" when zero).
func (u Until) String() string {
	switch u.kind {
	case untilSeq:
		return strconv.FormatUint(u.seq, 10)
	case untilID:
		return u.id.String()
	case untilTime:
		return u.t.UTC().Format(time.RFC3339Nano)
	}
	return ""
}
