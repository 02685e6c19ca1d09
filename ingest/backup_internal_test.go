package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCutOffBecause: the log of a copy cut off names why, as far as the
// server can tell: a client that took no bytes for the write wait (stop or
// not), the server stopping, a client gone away; anything else is a copy
// that could not be read or sent.
func TestCutOffBecause(t *testing.T) {
	live := httptest.NewRequest("GET", "/v1/backup", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := live.WithContext(ctx)
	noBytes := fmt.Errorf("backup: write tcp: %w", os.ErrDeadlineExceeded)
	for _, c := range []struct {
		name     string
		stopping bool
		gone     bool
		err      error
		want     string
	}{
		{"no bytes taken", false, false, noBytes, "the client took no bytes for 300ms"},
		{"no bytes taken while stopping", true, true, noBytes, "the client took no bytes for 300ms"},
		{"client gone", false, true, fmt.Errorf("backup: %w", context.Canceled), "the client went away"},
		{"client gone while stopping", true, true, fmt.Errorf("backup: %w", context.Canceled), "the server is stopping"},
		{"other", false, false, errors.New("backup: read page 7: i/o error"), "the copy could not be read or sent"},
	} {
		s := &Server{backupWriteWait: 300 * time.Millisecond}
		s.stopping.Store(c.stopping)
		r := live
		if c.gone {
			r = gone
		}
		if got := s.cutOffBecause(r, c.err); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
