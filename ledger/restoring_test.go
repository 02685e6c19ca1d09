package ledger

import (
	"context"
	"errors"
	"testing"
)

// TestARestoreMarkLastsUntilTheRestoreUnmarksIt: the mark a restore puts
// on the file it fills is read back after a reopen (a restore killed
// half-way), and is gone once the restore unmarks it. A cancelled call
// changes nothing and says so, and a closed store's calls fail rather
// than answer "not restoring". The mark is what keeps a server from
// appending to a file that holds only the first events of a history:
// lost or read wrongly, the next append would take a seq the mirror
// already gave another event, a fork of the history.
func TestARestoreMarkLastsUntilTheRestoreUnmarksIt(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	restoring := func(s *Store, want bool) {
		t.Helper()
		if on, err := s.Restoring(ctx); err != nil || on != want {
			t.Fatalf("restoring: %v %v, want %v", on, err, want)
		}
	}
	restoring(s, false)
	if err := s.SetRestoring(ctx, true); err != nil {
		t.Fatal(err)
	}
	restoring(s, true)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SetRestoring(cancelled, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("unmark with a cancelled context: %v", err)
	}
	if _, err := s.Restoring(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("read the mark with a cancelled context: %v", err)
	}
	restoring(s, true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRestoring(ctx, false); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unmark a closed store: %v", err)
	}
	if _, err := s.Restoring(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read the mark of a closed store: %v", err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	restoring(s, true) // a restore killed half-way
	if err := s.SetRestoring(ctx, false); err != nil {
		t.Fatal(err)
	}
	restoring(s, false)
}
