package replay_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

func TestParseUntil(t *testing.T) {
	id := ulid.MustParse("01JDAX3Y8Z0000000000000000")
	at := time.Date(2026, 11, 23, 14, 2, 11, 120e6, time.UTC)
	env := func(seq uint64, id ulid.ULID, t time.Time) *ledger.Envelope {
		return &ledger.Envelope{Seq: seq, ID: id, Time: ledger.T(t)}
	}
	later := ulid.MustParse("01JDAX3Y8Z0000000000000001")
	for _, tc := range []struct {
		in         string
		kept, past *ledger.Envelope
	}{
		{"42", env(42, later, at.Add(time.Hour)), env(43, id, at)},
		{"01JDAX3Y8Z0000000000000000", env(99, id, at.Add(time.Hour)), env(1, later, at)},
		{"01jdax3y8z0000000000000000", env(99, id, at), env(1, later, at)},
		{"01234567890123456789012345", env(1, ulid.MustParse("01234567890123456789012345"), at), env(1, later, at)},
		{"2026-11-23T14:02:11.120Z", env(99, later, at), env(1, id, at.Add(time.Millisecond))},
		{"2026-11-23T15:02:11.12+01:00", env(99, later, at), env(1, id, at.Add(time.Millisecond))},
		{"2026-11-23t14:02:11.120z", env(99, later, at), env(1, id, at.Add(time.Millisecond))}, // RFC 3339's lower case
		// The first and last years RFC 3339 names.
		{"9999-12-31T23:59:59Z", env(99, later, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)), env(1, id, time.Date(9999, 12, 31, 23, 59, 59, 1e6, time.UTC))},
		{"0000-01-01T00:00:00Z", env(99, later, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)), env(1, id, time.Date(0, 1, 1, 0, 0, 0, 1e6, time.UTC))},
	} {
		u, err := replay.ParseUntil(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if u.Past(tc.kept) || !u.Past(tc.past) {
			t.Errorf("%q (%s): kept %v past %v", tc.in, u, !u.Past(tc.kept), u.Past(tc.past))
		}
	}
	if u, err := replay.ParseUntil(""); err != nil || !u.IsZero() || u.Past(env(1<<60, later, at)) {
		t.Errorf("empty: %v %v", u, err)
	}
	// Only a seq bound has a seq (replay beside a server waits for the
	// mirror unless it holds that seq).
	for in, want := range map[string]uint64{"42": 42, "0": 0, "01JDAX3Y8Z0000000000000000": 0, "2026-11-23T14:02:11.120Z": 0, "": 0} {
		u, _ := replay.ParseUntil(in)
		if n, ok := u.Seq(); n != want || ok != (in == "42" || in == "0") {
			t.Errorf("%q: Seq() = %d, %v", in, n, ok)
		}
	}
	for _, bad := range []string{"yesterday", "-1", "99999999999999999999999", "2026-11-23", "01JDAX3Y8Z000000000000000U"} {
		if _, err := replay.ParseUntil(bad); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// A date or a time of day alone is refused with what to give instead.
	for bad, want := range map[string]string{
		"2026-11-23":              "2026-11-23T00:00:00Z is its start in UTC",
		"14:02":                   "as 2026-11-23T14:02:00Z",
		"14:02:11":                "as 2026-11-23T14:02:11Z",
		"2026-11-23T14:02:11":     "add Z for UTC, as 2026-11-23T14:02:11Z, or the offset the site's zone had then",
		"2026-11-23 14:02:11.120": "as 2026-11-23T14:02:11.120Z",
	} {
		if _, err := replay.ParseUntil(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to say %q", bad, err, want)
		}
	}
}

// An event at the bound is neither past it nor before it; Beyond holds
// only for an event before the bound (replay beside a server waits for
// the mirror until its last event reaches the bound).
func TestUntilBeyond(t *testing.T) {
	at := time.Date(2026, 11, 23, 14, 2, 11, 120e6, time.UTC)
	id := ulid.MustParse("01JDAX3Y8Z0000000000000001")
	for _, tc := range []struct {
		u                     replay.Until
		before, on, afterward ledger.Envelope
	}{
		{replay.UntilSeq(42), ledger.Envelope{Seq: 41}, ledger.Envelope{Seq: 42}, ledger.Envelope{Seq: 43}},
		{replay.UntilID(id), ledger.Envelope{ID: ulid.MustParse("01JDAX3Y8Z0000000000000000")}, ledger.Envelope{ID: id}, ledger.Envelope{ID: ulid.MustParse("01JDAX3Y8Z0000000000000002")}},
		{replay.UntilTime(at), ledger.Envelope{Time: ledger.T(at.Add(-time.Millisecond))}, ledger.Envelope{Time: ledger.T(at)}, ledger.Envelope{Time: ledger.T(at.Add(time.Millisecond))}},
	} {
		if !tc.u.Beyond(&tc.before) || tc.u.Past(&tc.before) ||
			tc.u.Beyond(&tc.on) || tc.u.Past(&tc.on) ||
			tc.u.Beyond(&tc.afterward) || !tc.u.Past(&tc.afterward) {
			t.Errorf("%s: beyond %v %v %v, past %v %v %v; want beyond only the one before, past only the one after", tc.u,
				tc.u.Beyond(&tc.before), tc.u.Beyond(&tc.on), tc.u.Beyond(&tc.afterward), tc.u.Past(&tc.before), tc.u.Past(&tc.on), tc.u.Past(&tc.afterward))
		}
	}
	if (replay.Until{}).Beyond(&ledger.Envelope{Seq: 1}) {
		t.Error("the zero bound is beyond an event")
	}
}

// Whatever ParseUntil accepts, its String parses back to the same bound.
func FuzzParseUntil(f *testing.F) {
	for _, s := range []string{"", "0", "42", "18446744073709551615", "01JDAX3Y8Z0000000000000000",
		"2026-11-23T14:02:11.120Z", "2026-11-23T14:02:11+05:30", "x", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
		// a year outside 0000–9999 once in UTC (fuzzing)
		"0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := replay.ParseUntil(s)
		if err != nil {
			if !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("%q: error not ErrInvalid: %v", s, err)
			}
			return
		}
		v, err := replay.ParseUntil(u.String())
		if err != nil {
			t.Fatalf("%q → %q: %v", s, u.String(), err)
		}
		if v.String() != u.String() || v.IsZero() != u.IsZero() {
			t.Fatalf("%q → %q → %q", s, u, v)
		}
	})
}
