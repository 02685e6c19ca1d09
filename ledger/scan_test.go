package ledger

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// The bytes Scan hands fn are fn's to keep: fn may append to them without
// touching the events still to come.
func TestScanRawIsFnsToKeep(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	envs, err := s.Append(ctx, cmd("a"), cmd("b"), cmd("c"))
	if err != nil {
		t.Fatal(err)
	}
	var kept [][]byte
	err = s.ScanRaw(ctx, 0, func(seq uint64, raw []byte) error {
		if !bytes.Equal(raw, envs[seq-1].Raw) {
			t.Errorf("seq %d: %s, want %s", seq, raw, envs[seq-1].Raw)
		}
		kept = append(kept, append(raw, `trailing bytes of fn's own`...))
		return nil
	})
	if err != nil || len(kept) != len(envs) {
		t.Fatalf("scan: %d events, %v", len(kept), err)
	}
}

// An error from fn stops the scan and is returned as is; a done context
// stops Scan and Get with its error.
func TestScanStopsOnFnsErrorAndTheContext(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a"), cmd("b")); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("enough")
	n := 0
	err := s.Scan(ctx, 0, func(Envelope) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("fn's error: %v after %d events, want it as is after 1", err, n)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Scan(done, 0, func(Envelope) error { t.Error("fn called under a done context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("scan with a done context: %v", err)
	}
	if _, err := s.Get(done, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("get with a done context: %v", err)
	}
}

// An event read by Get is the caller's: it stays whole after the store
// that read it is closed (its file unmapped).
func TestGetOutlivesTheStore(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	envs, err := s.Append(ctx, cmd("a"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Raw, envs[0].Raw) || !bytes.Equal(e.Data, envs[0].Data) {
		t.Fatalf("after close: %s, want %s", e.Raw, envs[0].Raw)
	}
}
