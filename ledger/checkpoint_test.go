package ledger

import (
	"context"
	"errors"
	"testing"
)

func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	if _, _, err := s.LoadCheckpoint(ctx, "v1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := s.Append(ctx, cmd("a"), cmd("b"), cmd("c")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "v1", 1, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "v1", 3, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "v1", 4, []byte("ahead")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("checkpoint after the head: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seq, state, err := s.LoadCheckpoint(ctx, "v1")
	if err != nil || seq != 3 || string(state) != "new" {
		t.Fatalf("load v1: %d %q %v", seq, state, err)
	}
	if _, _, err := s.LoadCheckpoint(ctx, "v2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other version: %v", err)
	}
}
