package replay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/replay"
)

// Spaces around a bound, as a shell or a form leaves them, are not part
// of it.
func TestParseUntilTrimsSpaces(t *testing.T) {
	for in, want := range map[string]string{
		" 42\n":                         "42",
		"\t01JDAX3Y8Z0000000000000000 ": "01JDAX3Y8Z0000000000000000",
		" 2026-11-23T14:02:11.12Z ":     "2026-11-23T14:02:11.12Z",
	} {
		u, err := replay.ParseUntil(in)
		if err != nil || u.String() != want {
			t.Errorf("%q: %q, %v; want %q", in, u, err, want)
		}
	}
}

// A time without its offset is named back in RFC 3339's upper case,
// whatever case it came in.
func TestParseUntilHintForALowerCaseTimeWithoutOffset(t *testing.T) {
	_, err := replay.ParseUntil("2026-11-23t14:02:11")
	if want := "as 2026-11-23T14:02:11Z"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%v, want it to say %q", err, want)
	}
}

// A time bound is given back in UTC, whatever offset it came with.
func TestUntilTimeStringIsUTC(t *testing.T) {
	at := time.Date(2026, 11, 23, 19, 32, 11, 120e6, time.FixedZone("IST", 5*3600+1800))
	if got, want := replay.UntilTime(at).String(), "2026-11-23T14:02:11.12Z"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// Only the zero Until is zero: a bound at seq 0 (before the first event)
// bounds the replay.
func TestUntilZeroIsOnlyTheZeroBound(t *testing.T) {
	for _, u := range []replay.Until{replay.UntilSeq(0), replay.UntilTime(time.Time{})} {
		if u.IsZero() {
			t.Errorf("%q: IsZero", u)
		}
	}
	if !(replay.Until{}).IsZero() {
		t.Error("the zero Until is not zero")
	}
}
