package ledger

import (
	"testing"
	"time"
)

func TestParseQueryTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // RFC 3339 in UTC; "" for the zero time
		ok   bool
	}{
		{"", "", true},
		{"2026-11-23", "2026-11-23T00:00:00Z", true},
		{"2026-11-23T14:02:00Z", "2026-11-23T14:02:00Z", true},
		{"2026-11-23T15:02:00.250+01:00", "2026-11-23T14:02:00.25Z", true},
		{"14:02", "", false},
		{"2026-11-31", "", false},
	} {
		got, ok := ParseQueryTime(c.in)
		s := ""
		if !got.IsZero() {
			s = got.UTC().Format(time.RFC3339Nano)
		}
		if ok != c.ok || s != c.want {
			t.Errorf("ParseQueryTime(%q) = %q, %v; want %q, %v", c.in, s, ok, c.want, c.ok)
		}
	}
}
