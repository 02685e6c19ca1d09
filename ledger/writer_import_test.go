package ledger

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// importSource returns the events of a ledger of n events, as a restore
// reads them from the mirror.
func importSource(t *testing.T, n int) []Envelope {
	t.Helper()
	src := jsStore(t)
	jsAppend(t, src, n)
	var all []Envelope
	if err := src.Scan(context.Background(), 0, func(e Envelope) error { all = append(all, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return all
}

// TestImportRefusesWhatWouldNotBeTheLedger: restore imports the mirror's
// events verbatim, and each must continue the ledger exactly. Refused: an
// event sealed on the head's hash but numbered past the next seq (a gap
// no one could fill), a second event of the same call whose id is not
// after the first's (ids increase across the events of one import, not
// only after the head), an event chained on another than the head, the
// first event of a ledger naming a predecessor, and an event whose hash is right but whose bytes
// are not the canonical encoding (stored, the file would differ from the
// mirror and fail verify). A refused import stores nothing.
func TestImportRefusesWhatWouldNotBeTheLedger(t *testing.T) {
	ctx := context.Background()
	all := importSource(t, 40)
	dst := jsStore(t)
	if err := dst.Import(ctx, all[:30]); err != nil {
		t.Fatal(err)
	}
	head := all[29]

	skipped := all[31] // seq 32 on the hash of seq 30
	skipped.Raw = nil
	if _, err := skipped.Seal(head.Hash); err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(ctx, []Envelope{skipped}); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("seq 32 on the head's hash, after seq 30: %v", err)
	}

	forked := all[30] // seq 31 on the hash of seq 29
	forked.Raw = nil
	if _, err := forked.Seal(all[28].Hash); err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(ctx, []Envelope{forked}); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("seq 31 chained on seq 29: %v", err)
	}

	again := all[31] // seq 32, chained on seq 31, with seq 31's id
	again.Raw, again.ID = nil, all[30].ID
	if _, err := again.Seal(all[30].Hash); err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(ctx, []Envelope{all[30], again}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("two events of one import with the same id: %v", err)
	}

	spaced := all[30]
	spaced.Raw = bytes.Replace(bytes.Clone(all[30].Raw), []byte(`"seq":`), []byte(`"seq": `), 1)
	if d, err := Decode(spaced.Raw); err != nil || d.Hash != all[30].Hash {
		t.Fatalf("the spaced event should decode with its hash: %v", err)
	}
	if err := dst.Import(ctx, []Envelope{spaced}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("an event not in the canonical encoding: %v", err)
	}

	// The first event of an empty ledger that names a predecessor.
	first := all[0]
	first.Raw = nil
	if _, err := first.Seal(strings.Repeat("0", 64)); err != nil {
		t.Fatal(err)
	}
	if err := jsStore(t).Import(ctx, []Envelope{first}); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("seq 1 with a prev: %v", err)
	}

	if seq, hash := dst.Head(); seq != 30 || hash != head.Hash {
		t.Fatalf("refused imports moved the head to %d", seq)
	}
	if err := dst.Import(ctx, all[30:]); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, dst, 40)
}

// TestImportIntoAStoreThatRefusesAppendsIsRefused: a store opened
// read-only refuses an import as it refuses an append, at once, rather
// than hand it to a writer that a read-only store does not run.
func TestImportIntoAStoreThatRefusesAppendsIsRefused(t *testing.T) {
	ctx := context.Background()
	all := importSource(t, 3)
	s, path := openTest(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Import(ctx, all); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("import into a read-only store: %v", err)
	}
	if seq, _ := ro.Head(); seq != 0 {
		t.Fatalf("head %d", seq)
	}
}
