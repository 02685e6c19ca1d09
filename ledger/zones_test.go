package ledger

import (
	"errors"
	"testing"
	"time"
)

// LoadZone reads the database the binary carries: the same zones, with the
// same rules, on every host, and nothing the host has besides.
func TestLoadZone(t *testing.T) {
	for _, name := range []string{"", "UTC"} {
		if l, err := LoadZone(name); err != nil || l != time.UTC {
			t.Fatalf("LoadZone(%q) = %v, %v", name, l, err)
		}
	}
	paris, err := LoadZone("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   time.Time
		want int
	}{
		{time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), 3600},
		{time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC), 7200},
		{time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC), 3600}, // the last second before summer time
		{time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), 7200},
	} {
		if _, off := c.at.In(paris).Zone(); off != c.want {
			t.Errorf("Paris at %s: offset %d, want %d", c.at, off, c.want)
		}
	}
	for _, name := range []string{"Local", "Mars/Olympus", "../etc/passwd", "right/UTC"} {
		if _, err := LoadZone(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("LoadZone(%q): %v, want ErrInvalid", name, err)
		}
	}
	// right/UTC is in many hosts' zone files (leap seconds), not in the
	// binary's: a host's zone reaches the rules only through LoadZone.
	if _, err := time.LoadLocation("right/UTC"); err != nil {
		t.Log("this host has no right/UTC; the host-only case ran as an unknown zone")
	}
	if err := (Site{Timezone: "Local"}).Validate("site"); err == nil {
		t.Error(`a site in the host's "Local" zone was accepted`)
	}
}
