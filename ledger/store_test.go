package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTest opens a store in a fresh temporary directory and closes it at
// the end of the test.
func openTest(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// cmd is a small command event for tests.
func cmd(name string) Event {
	return Event{Type: TypeCommand, Data: Command{Command: name, Transport: TransportHTTP}}
}

// mustVerify fails the test unless the ledger verifies with n events.
func mustVerify(t *testing.T, s *Store, n uint64) VerifyReport {
	t.Helper()
	rep, err := s.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Events != n {
		t.Fatalf("verify: %+v, want OK with %d events", rep, n)
	}
	return rep
}

func TestAppendScanGet(t *testing.T) {
	ctx := context.Background()
	var hooked []Envelope
	s, _ := openTest(t, Options{})
	s.Subscribe(func(envs []Envelope) { hooked = append(hooked, envs...) })

	envs, err := s.Append(ctx, cmd("start"), cmd("pause"))
	if err != nil {
		t.Fatal(err)
	}
	more, err := s.Append(ctx, Event{Type: TypeConfig, Data: json.RawMessage(` {"a" : 1} `)})
	if err != nil {
		t.Fatal(err)
	}
	envs = append(envs, more...)
	if len(envs) != 3 || envs[0].Seq != 1 || envs[2].Seq != 3 {
		t.Fatalf("envelopes: %+v", envs)
	}
	if string(envs[2].Data) != `{"a":1}` {
		t.Errorf("raw data not compacted: %s", envs[2].Data)
	}
	if envs[0].Prev != "" || envs[1].Prev != envs[0].Hash || envs[2].Prev != envs[1].Hash {
		t.Errorf("chain not linked: %+v", envs)
	}
	if seq, h := s.Head(); seq != 3 || h != envs[2].Hash {
		t.Errorf("head = %d %s", seq, h)
	}
	if s.LastID() != envs[2].ID {
		t.Errorf("last id %s, want %s", s.LastID(), envs[2].ID)
	}
	if len(hooked) != 3 || hooked[2].Hash != envs[2].Hash {
		t.Errorf("hooks saw %d envelopes", len(hooked))
	}

	var scanned []Envelope
	if err := s.Scan(ctx, 1, func(e Envelope) error { scanned = append(scanned, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(scanned) != 2 || scanned[0].Seq != 2 || !bytes.Equal(scanned[1].Raw, envs[2].Raw) {
		t.Fatalf("scan after 1: %+v", scanned)
	}
	var c Command
	if err := scanned[0].Unmarshal(&c); err != nil || c.Command != "pause" {
		t.Errorf("scanned data %+v %v", c, err)
	}

	stop := errors.New("stop")
	n := 0
	if err := s.Scan(ctx, 0, func(Envelope) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("scan stop: %v after %d", err, n)
	}

	got, err := s.Get(ctx, 2)
	if err != nil || !bytes.Equal(got.Raw, envs[1].Raw) || got.ID != envs[1].ID {
		t.Errorf("get 2: %+v %v", got, err)
	}
	if _, err := s.Get(ctx, 4); !errors.Is(err, ErrNotFound) {
		t.Errorf("get 4: %v", err)
	}
	mustVerify(t, s, 3)
}

func TestSealerMatchesSeal(t *testing.T) {
	s, _ := openTest(t, Options{})
	envs, err := s.Append(context.Background(),
		cmd("start"),
		Event{Type: TypeConfig, Data: map[string]string{"x": "<tag> & \"q\" \u2028"}},
		Event{Type: "odd \"type\" <x>", Data: nil},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		ref := e
		ref.Raw, ref.Prev, ref.Hash = nil, "", ""
		raw, err := ref.Seal(e.Prev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, e.Raw) || ref.Hash != e.Hash {
			t.Errorf("seq %d:\n fast %s\n seal %s", e.Seq, e.Raw, raw)
		}
		d, err := Decode(e.Raw)
		if err != nil || !Canonical(d, e.Raw) {
			t.Errorf("seq %d does not decode canonically: %v", e.Seq, err)
		}
	}
}

func TestAppendAfterClose(t *testing.T) {
	s, _ := openTest(t, Options{})
	if _, err := s.Append(context.Background(), cmd("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), cmd("b")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Scan(context.Background(), 0, func(Envelope) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("scan after close: %v", err)
	}
	if _, err := s.Get(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a"), cmd("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "v1", 2, []byte("state"), nil); err != nil {
		t.Fatal(err)
	}
	// bbolt's writer holds an exclusive flock: a read-only open must give
	// up (after its short timeout) rather than hang.
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open beside a writer: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ro2, err := Open(path, Options{ReadOnly: true}) // shared locks coexist
	if err != nil {
		t.Fatal(err)
	}
	ro2.Close()
	if seq, _ := ro.Head(); seq != 2 {
		t.Fatalf("head %d", seq)
	}
	mustVerify(t, ro, 2)
	if seq, _, err := ro.LoadCheckpoint(ctx, "v1"); err != nil || seq != 2 {
		t.Fatalf("checkpoint: %d %v", seq, err)
	}
	if _, err := ro.Append(ctx, cmd("c")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append read-only: %v", err)
	}
	if err := ro.SaveCheckpoint(ctx, "v1", 2, nil, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("checkpoint read-only: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.db"), Options{ReadOnly: true}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("read-only open of a missing file: %v, want ErrUnavailable", err)
	}
}

func TestScanCallsFnOutsideTransactions(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	if _, err := s.Append(ctx, cmd("a"), cmd("b")); err != nil {
		t.Fatal(err)
	}
	// An append that grows the file makes bbolt remap it, which waits for
	// every open read transaction: from inside fn it can only finish if
	// Scan holds none.
	big := Event{Type: TypeConfig, Data: map[string]string{"blob": string(bytes.Repeat([]byte("x"), 4<<20))}}
	var seen []uint64
	err := s.Scan(ctx, 0, func(e Envelope) error {
		seen = append(seen, e.Seq)
		if e.Seq != 1 {
			return nil
		}
		done := make(chan error, 1)
		go func() { _, err := s.Append(ctx, big); done <- err }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("append from inside Scan's fn is stuck: Scan holds a read transaction")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("scan saw seqs %v, want 1 and 2 (up to the head at the call)", seen)
	}
}

// TestOpenContextEndsItsPageCheck: the page check of an existing file
// before the first write ends with a done context (a serve stopped while
// it starts), leaving the file unlocked; a fresh file has nothing to check.
func TestOpenContextEndsItsPageCheck(t *testing.T) {
	path := closedLedger(t, 100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := OpenContext(ctx, path, Options{}); !errors.Is(err, context.Canceled) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("open with a done context: %v", err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("the file stayed locked: %v", err)
	}
	s.Close()
}

// A start makes each bucket a ledger file lacks, whichever it is (here
// the checkpoints, with the sections there): a checkpoint is then saved
// and loaded back.
func TestOpenForWritingMakesTheBucketsAFileLacks(t *testing.T) {
	path := closedLedger(t, 10)
	editFile(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketCheckpoints) })
	s := openFile(t, path, Options{})
	if err := s.SaveCheckpoint(t.Context(), "v1", 10, []byte("state"), nil); err != nil {
		t.Fatalf("checkpoint save: %v", err)
	}
	if seq, state, err := s.LoadCheckpoint(t.Context(), "v1"); err != nil || seq != 10 || string(state) != "state" {
		t.Fatalf("checkpoint: %d %q %v", seq, state, err)
	}
}
