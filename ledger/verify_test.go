package ledger

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// tamper closes s, applies fn to the bolt file's events directly and
// reopens it.
func tamper(t *testing.T, s *Store, path string, fn func(b *bolt.Bucket) error) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editFile(t, path, func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketEvents)) })
	return openFile(t, path, Options{})
}

// editFile applies fn to the closed ledger file at path in one bbolt
// transaction, as damage or an older build would leave it.
func editFile(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(fn)
	if err2 := db.Close(); err == nil {
		err = err2
	}
	if err != nil {
		t.Fatal(err)
	}
}

// openFile opens the ledger file at path, closed when the test ends.
func openFile(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rewrite replaces old with new in the value at seq.
func rewrite(seq uint64, old, new string) func(b *bolt.Bucket) error {
	return func(b *bolt.Bucket) error {
		v := b.Get(seqKey(seq))
		if !bytes.Contains(v, []byte(old)) {
			return errors.New("nothing to rewrite: " + string(v))
		}
		return b.Put(seqKey(seq), bytes.Replace(bytes.Clone(v), []byte(old), []byte(new), 1))
	}
}

// tenEvents makes a ledger of ten command events named c1…c10.
func tenEvents(t *testing.T) (*Store, string) {
	t.Helper()
	s, path := openTest(t, Options{})
	for i := 1; i <= 10; i++ {
		if _, err := s.Append(context.Background(), cmd("c"+string(rune('0'+i%10)))); err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(t, s, 10)
	return s, path
}

func TestVerifyFindsDamage(t *testing.T) {
	cases := []struct {
		name    string
		seq     uint64
		fn      func(b *bolt.Bucket) error
		problem string
	}{
		{"data byte flipped", 5, rewrite(5, `"command":"c5"`, `"command":"c6"`), "hash mismatch"},
		{"hash byte flipped", 4, func(b *bolt.Bucket) error {
			v := bytes.Clone(b.Get(seqKey(4)))
			i := bytes.Index(v, []byte(`"hash":"`)) + len(`"hash":"`)
			v[i] ^= 1 // '0'↔'1', 'a'↔'`'…: still the same length
			return b.Put(seqKey(4), v)
		}, "hash mismatch"},
		{"not canonical", 6, rewrite(6, `"seq":6,`, `"seq": 6,`), "canonical"},
		{"first key deleted", 1, func(b *bolt.Bucket) error { return b.Delete(seqKey(1)) }, "starts at seq 2"},
		{"middle key deleted", 5, func(b *bolt.Bucket) error { return b.Delete(seqKey(5)) }, "missing"},
		{"value under the wrong key", 7, func(b *bolt.Bucket) error {
			return b.Put(seqKey(7), bytes.Clone(b.Get(seqKey(8))))
		}, "holds seq 8"},
		{"event replaced by a valid one", 3, func(b *bolt.Bucket) error {
			// a self-consistent event whose prev is not the chain's
			e := Envelope{Seq: 3, Type: TypeCommand, Version: CurrentVersion, Data: []byte(`{}`)}
			raw, err := e.Seal(strings.Repeat("ab", 32))
			if err != nil {
				return err
			}
			return b.Put(seqKey(3), raw)
		}, "prev"},
		{"id equal to the one before", 5, func(b *bolt.Bucket) error {
			// sealed on the chain, with seq 4's id: only the ids' order
			// tells (mutation testing: "not after" was taken as "before")
			e4, err := Decode(b.Get(seqKey(4)))
			if err != nil {
				return err
			}
			e5, err := Decode(b.Get(seqKey(5)))
			if err != nil {
				return err
			}
			e5.ID, e5.Raw = e4.ID, nil
			raw, err := e5.Seal(e4.Hash)
			if err != nil {
				return err
			}
			return b.Put(seqKey(5), raw)
		}, "is not after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, path := tenEvents(t)
			s = tamper(t, s, path, c.fn)
			rep, err := s.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.FirstBad != c.seq || rep.Events != c.seq-1 || !strings.Contains(rep.Problem, c.problem) {
				t.Fatalf("report %+v, want first bad %d with %q", rep, c.seq, c.problem)
			}
		})
	}
}

func TestCorruptTailRefusesAppends(t *testing.T) {
	s, path := tenEvents(t)
	s = tamper(t, s, path, rewrite(10, `"command":"c0"`, `"command":"cX"`))
	if _, err := s.Append(context.Background(), cmd("more")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("append on a corrupt tail: %v", err)
	}
	rep, err := s.Verify(context.Background())
	if err != nil || rep.OK || rep.FirstBad != 10 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Verify during appends checks the ledger up to the head at its call:
// events appended meanwhile are not a hole at the end.
func TestVerifyDuringAppends(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 5000)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := s.Append(ctx, jsEvents(5000+i, 1)...); err != nil && ctx.Err() == nil {
				done <- err
				return
			}
		}
	}()
	for range 20 {
		rep, err := s.Verify(t.Context())
		if err != nil || !rep.OK {
			t.Errorf("verify during appends: %+v %v", rep, err)
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestVerifyNamesANewerBuildsEvents: events of a version newer than this
// build reads pass the chain (a newer build appended them), and the
// report names the first, so that a rollback's verify says why serve
// refuses the ledger (a walk read "chain ok" and nothing else).
func TestVerifyNamesANewerBuildsEvents(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 4)
	var envs []Envelope
	if err := s.Scan(t.Context(), 0, func(e Envelope) error { envs = append(envs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	// Seqs 3 and 4 of the newer build: the report names the first.
	prev := envs[1].Hash
	for _, e := range envs[2:] {
		newer := e
		newer.Raw, newer.Version = nil, CurrentVersion+1
		raw, err := newer.Seal(prev)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEvents).Put(seqKey(e.Seq), raw) }); err != nil {
			t.Fatal(err)
		}
		prev = newer.Hash
	}
	rep, err := s.Verify(t.Context())
	if err != nil || !rep.OK || rep.Newer != 3 || rep.NewerVersion != CurrentVersion+1 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// A ledger whose last events are gone from the file while its head says
// otherwise (a page lost under a running store) is reported missing them.
func TestVerifyFindsTheTailMissing(t *testing.T) {
	s := jsStore(t)
	jsAppend(t, s, 5)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketEvents).Delete(seqKey(5)) }); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(t.Context())
	if err != nil || rep.OK || rep.FirstBad != 5 || !strings.Contains(rep.Problem, "the events end at seq 4, the head is seq 5") {
		t.Fatalf("verify of a ledger without its last event: %+v %v", rep, err)
	}
}
