package ledger

import (
	"errors"
	"strings"
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
		{"2026-11-23t14:02:00z", "2026-11-23T14:02:00Z", true}, // RFC 3339 §5.6 allows lower case
		{"2026-11-23T14:02:00-23:59", "2026-11-24T14:01:00Z", true},
		{"2026-11-23T14:02:00+24:00", "", false}, // time.Parse takes these three, RFC 3339 does not
		{"2026-11-23T14:02:00+01:60", "", false},
		{"2026-11-23T14:02:00,5Z", "", false},
		{"14:02", "", false},
		{"2026-11-31", "", false},
	} {
		got, ok := ParseQueryTime(c.in, nil)
		s := ""
		if !got.IsZero() {
			s = got.UTC().Format(time.RFC3339Nano)
		}
		if ok != c.ok || s != c.want {
			t.Errorf("ParseQueryTime(%q) = %q, %v; want %q, %v", c.in, s, ok, c.want, c.ok)
		}
	}
}

// A date is the site's midnight, as its contacts' days are.
func TestParseQueryTimeInTheSiteZone(t *testing.T) {
	chicago, err := LoadZone("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ParseQueryTime("2026-11-29", chicago)
	if want := "2026-11-29T06:00:00Z"; !ok || got.UTC().Format(time.RFC3339) != want {
		t.Errorf("2026-11-29 in Chicago = %v, %v; want %s", got, ok, want)
	}
	// Midnight in a daylight-saving gap: the day begins at the gap's end
	// (time.Date answered an hour early, the day before's last hour).
	for _, c := range []struct{ zone, day, want string }{
		{"America/Havana", "2026-03-08", "2026-03-08T05:00:00Z"},
		{"America/Santiago", "2026-09-06", "2026-09-06T04:00:00Z"},
		{"America/Santiago", "2026-04-05", "2026-04-05T04:00:00Z"}, // the clocks went back at midnight
	} {
		loc, err := LoadZone(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := ParseQueryTime(c.day, loc); !ok || got.UTC().Format(time.RFC3339) != c.want {
			t.Errorf("%s in %s = %v, %v; want %s", c.day, c.zone, got, ok, c.want)
		}
	}
	got, _ = ParseQueryTime("2026-11-29T00:00:00Z", chicago) // a time names its own zone
	if want := "2026-11-29T00:00:00Z"; got.UTC().Format(time.RFC3339) != want {
		t.Errorf("a time with its zone = %v; want %s", got, want)
	}
	q := PauseQuery{From: T(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)), To: T(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))}
	if err := q.Check(); !errors.Is(err, ErrInvalid) {
		t.Errorf("from after to: %v", err)
	}
}

// FuzzParseRFC3339: never a panic; what it takes, time.Parse takes too,
// with an offset within ±23:59 and no comma.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2026-11-23T14:02:00Z", "2026-11-23t14:02:00.5+01:00", "2026-11-23T14:02:00+24:00", "2026-11-23T14:02:00,5Z", "Z", "+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseRFC3339(v)
		if err != nil {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(v))
		if err != nil || !got.Equal(want) {
			t.Fatalf("%q: %v, time.Parse %v %v", v, got, want, err)
		}
		if _, off := got.Zone(); off <= -24*3600 || off >= 24*3600 || strings.Contains(v, ",") {
			t.Fatalf("%q taken: offset %d", v, off)
		}
	})
}
