package ledger

import (
	"archive/zip"
	"bytes"
	_ "embed" // the zone database below
	"fmt"
	"io"
	"time"
)

// zoneinfoZip is the IANA time zone database the ledger's rules use:
// Go's lib/time/zoneinfo.zip, tzdata 2025c. It is part of the rules: a new
// copy that changes a zone's past offsets must come with a new
// projections.Version.
//
//go:embed zoneinfo.zip
var zoneinfoZip []byte

// LoadZone returns the zone name ("UTC" when empty) from the database the
// binary carries, never from the host's: a site's local dates (a contact's
// day, its retention date, the upload time) must come out the same on
// every machine that replays its ledger, whatever zone files that machine
// has or lacks. "Local" names no zone here.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	zr, err := zip.NewReader(bytes.NewReader(zoneinfoZip), int64(len(zoneinfoZip)))
	if err != nil {
		return nil, fmt.Errorf("zone %q: %w", name, err)
	}
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("zone %q: %w", name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("zone %q: %w", name, err)
		}
		return time.LoadLocationFromTZData(name, data)
	}
	return nil, fmt.Errorf("%w: unknown time zone %q", ErrInvalid, name)
}

// UploadAt is the site's upload time hh:mm on the local date y-m-d in loc.
// Daylight saving time:
//   - when hh:mm does not exist that day (spring forward), the upload is at
//     the instant the clocks jump, the first moment after the gap (02:30 in
//     America/New_York on 2026-03-08 gives 03:00 EDT), as cron does;
//   - when hh:mm happens twice (fall back), the upload is at the first.
//
// The server's scheduler seals a day then (docs/manifests.md), and the
// projections expect a contact closed at or after it in the next day's
// manifest.
func UploadAt(y int, m time.Month, d, hh, mm int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hh, mm, 0, 0, loc)
	if t.Hour() != hh || t.Minute() != mm || t.Day() != d {
		// In a gap: time.Date answered with a wall clock shifted by the gap
		// into one of the zones around it. The gap ends at the boundary
		// between those zones: the end of t's zone when t's wall clock is
		// before hh:mm, else its start.
		wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
		want := time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
		start, end := t.ZoneBounds()
		if wall.Before(want) && !end.IsZero() {
			return end
		}
		if !start.IsZero() {
			return start
		}
		return t
	}
	// Fall back: hh:mm may also exist in the zone before this one.
	if start, _ := t.ZoneBounds(); !start.IsZero() {
		_, off := t.Zone()
		_, prevOff := start.Add(-time.Nanosecond).Zone()
		if alt := t.Add(time.Duration(off-prevOff) * time.Second); alt.Before(start) && alt.Before(t) {
			if h, mi, _ := alt.In(loc).Clock(); h == hh && mi == mm {
				return alt
			}
		}
	}
	return t
}
