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
