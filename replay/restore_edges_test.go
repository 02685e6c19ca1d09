package replay_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
	"github.com/recledger/recledger/replay/replaytest"
)

// A restore into a ledger that already holds the start of the source
// copies only what comes after its head (a restore run again after it was
// cut short).
func TestRestoreContinuesAfterTheHead(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	head, hash := d.store.Head()
	dst := openStore(t)
	if n, err := replay.Restore(ctx, damagedAt{d.store, 32}, dst, 0, nil); n != 31 || !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("first restore: %d events, %v", n, err)
	}
	n, err := replay.Restore(ctx, d.store, dst, 0, nil)
	if got, gotHash := dst.Head(); err != nil || n != head-31 || got != head || gotHash != hash {
		t.Fatalf("second restore: %d events to seq %d, %v; want %d to seq %d", n, got, err, head-31, head)
	}
}

// An event of a version this build does not read ends the restore before
// it, keeping what came before, with ErrUnknownVersion.
func TestRestoreStopsBeforeANewerEvent(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	src := newerAt(d.store, 5)
	dst := openStore(t)
	n, err := replay.Restore(ctx, src, dst, 0, nil)
	if head, _ := dst.Head(); !errors.Is(err, ledger.ErrUnknownVersion) || n != 4 || head != 4 {
		t.Fatalf("restore: %d events to seq %d, %v; want 4 and ErrUnknownVersion", n, head, err)
	}
}

// The import of the events after the last whole batch can fail too: the
// restore says so.
func TestRestoreFailsWhenTheLastImportFails(t *testing.T) {
	ctx := context.Background()
	d := writeDay(t, nil)
	head, _ := d.store.Head()
	dst := &batches{Store: openStore(t), failAt: 2}
	n, err := replay.Restore(ctx, d.store, dst, int(head-1), nil)
	if err == nil || !strings.Contains(err.Error(), "disk gone") || n != head-1 || len(dst.sizes) != 2 {
		t.Fatalf("restore: %d events in %v, %v; want %d and the last import's error", n, dst.sizes, err, head-1)
	}
}

// With no batch size given, Restore imports DefaultRestoreBatch events
// at a time.
func TestRestoreDefaultBatch(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	head, err := replaytest.Bulk(ctx, src, replay.DefaultRestoreBatch+100, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	dst := &batches{Store: openStore(t)}
	n, err := replay.Restore(ctx, src, dst, 0, nil)
	if err != nil || n != head || len(dst.sizes) != 2 || dst.sizes[0] != replay.DefaultRestoreBatch {
		t.Fatalf("restore: %d of %d events in imports of %v, %v; want %d first", n, head, dst.sizes, err, replay.DefaultRestoreBatch)
	}
}
