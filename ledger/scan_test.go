package ledger

import (
	"bytes"
	"context"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
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

// Stored bytes that are not the event their key names are corruption, to
// Scan and to Get: bytes that do not decode, an event stored under
// another seq's key, a key that is not a seq at all (too short, or a
// seq's key with more after it).
func TestScanAndGetRefuseWhatAKeyDoesNotHold(t *testing.T) {
	ctx := context.Background()
	other, _ := openTest(t, Options{})
	theirs, err := other.Append(ctx, cmd("x"), cmd("y"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		key, val []byte
	}{
		{"bytes that do not decode", seqKey(1), []byte("not an event")},
		{"seq 2 under seq 1's key", seqKey(1), theirs[1].Raw},
		{"a key that is not a seq", []byte("abc"), theirs[0].Raw},
		{"a seq's key and a byte more", append(seqKey(1), 0), theirs[0].Raw}, // its first 8 bytes read as seq 1
	} {
		s, _ := openTest(t, Options{})
		if _, err := s.Append(ctx, cmd("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEvents).Put(c.key, c.val) }); err != nil {
			t.Fatal(err)
		}
		if err := s.Scan(ctx, 0, func(Envelope) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: scan: %v, want ErrCorrupt", c.name, err)
		}
		if len(c.key) == 8 {
			if _, err := s.Get(ctx, 1); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: get: %v, want ErrCorrupt", c.name, err)
			}
		}
	}
}
