package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay/replaytest"
)

// TestRestoreStopsForGoodAtAGapInTheMirror: a mirror with an event
// missing is restored up to it, and restore says that no restore gets
// past it, counting the events kept, rather than to run it again; run
// again, it says the same.
func TestRestoreStopsForGoodAtAGapInTheMirror(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	stream, err := d.js.Stream(t.Context(), ledger.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for range 2 {
		_, err := runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", dir, "--nats", d.natsURL, "--site", replaytest.Site)
		if !errors.Is(err, ledger.ErrChainBroken) || !strings.Contains(err.Error(), "no restore gets past it") || strings.Contains(err.Error(), "run it again") ||
			!strings.Contains(err.Error(), "stopped after 4 events") {
			t.Fatalf("restore of a mirror without its event 5: %v, want %v after 4 events", err, ledger.ErrChainBroken)
		}
	}
	if head, err := ledgerHead(filepath.Join(dir, LedgerFile)); err != nil || head != 4 {
		t.Errorf("restored up to seq %d (%v), want the 4 events before the gap", head, err)
	}
}

// TestRestoreRefusesALedgerLongerThanItsMirror: a data dir holding events
// its mirror does not (written with no mirror to take them) is not the
// start of the mirror, and restore says it holds more.
func TestRestoreRefusesALedgerLongerThanItsMirror(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	st, err := ledger.Open(filepath.Join(d.dir, LedgerFile), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Append(t.Context(), ledger.Event{Type: ledger.TypeCallSignal, Data: ledger.CallSignal{CallID: "c-late", Extension: "3420", Type: ledger.SignalRinging}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", d.dir, "--nats", d.natsURL, "--site", replaytest.Site)
	if !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "more than the mirror's") {
		t.Fatalf("restore into a ledger one event past its mirror: %v", err)
	}
}

// TestRestoreFromANamedMirrorDoesNotLookForTheDirsOwn: a mirror named by
// RECLEDGER_NATS that does not answer is the error, without the word
// meant for a restore that named none (that the dir has no mirror of its
// own); one that named none is told so.
func TestRestoreFromANamedMirrorDoesNotLookForTheDirsOwn(t *testing.T) {
	t.Setenv("RECLEDGER_NATS", "nats://127.0.0.1:1")
	_, err := runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", t.TempDir())
	if err == nil || strings.Contains(err.Error(), "has no mirror of its own") {
		t.Fatalf("restore from a mirror named by RECLEDGER_NATS that does not answer: %v", err)
	}
}

// TestRestoreFromAnOwnMirrorThatCannotStartSaysSo: a data dir whose own
// mirror cannot be served (a file stands where its store goes) is that
// error, naming the mirror, not a restore from elsewhere.
func TestRestoreFromAnOwnMirrorThatCannotStartSaysSo(t *testing.T) {
	t.Setenv("RECLEDGER_NATS", "")
	data := t.TempDir()
	mirror := filepath.Join(data, JetStreamDir)
	if err := os.MkdirAll(mirror, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mirror, "jetstream"), []byte("not a store"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", data)
	if err == nil || !strings.Contains(err.Error(), "the mirror in "+mirror) {
		t.Fatalf("restore from an own mirror that cannot start: %v", err)
	}
}

// TestRestoreRefusesALedgerItCannotRead: a ledger.db that is not a ledger
// file, or that cannot be opened (a link to itself), is the error, said
// before any mirror is asked.
func TestRestoreRefusesALedgerItCannotRead(t *testing.T) {
	garbled := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbled, LedgerFile), bytes.Repeat([]byte("not a ledger "), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", garbled, "--nats", "nats://127.0.0.1:1")
	if !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("restore into a dir whose ledger.db is not a ledger file: %v, want %v", err, ledger.ErrCorrupt)
	}
	loop := t.TempDir()
	if err := os.Symlink(LedgerFile, filepath.Join(loop, LedgerFile)); err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", loop, "--nats", "nats://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "exists and cannot be read") {
		t.Fatalf("restore into a dir whose ledger.db is a link to itself: %v", err)
	}
}

// TestRestoreRefusedAnEventIsNotFinished: a mirror event that the ledger
// refuses to take (its id not after the one before it) stops the restore
// there for good: an error that says no restore gets past it, and the dir
// still marked as a restore not finished, not a restore reported whole
// without the mirror's last event.
func TestRestoreRefusedAnEventIsNotFinished(t *testing.T) {
	d := writeOfflineDay(t, true, 0)
	mirrorNext(t, d, func(next *ledger.Envelope) { // its id before the last's
		next.ID = ulid.MustNew(next.ID.Time()-1, bytes.NewReader(make([]byte, 16)))
	})
	dir := t.TempDir()
	// Not "run it again": it would stop at the same event.
	if out, err := runCmd(t, &RestoreCommand{Stderr: devNull(t)}, "--from-jetstream", "--data", dir, "--nats", d.natsURL, "--site", replaytest.Site); !errors.Is(err, ledger.ErrInvalid) ||
		!strings.Contains(err.Error(), "no restore gets past it") || strings.Contains(err.Error(), "run it again") {
		t.Fatalf("restore of a mirror whose last event's id goes back: %v\n%s", err, out)
	}
	st, err := ledger.Open(filepath.Join(dir, LedgerFile), ledger.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if unfinished, err := st.Restoring(t.Context()); err != nil || !unfinished {
		t.Errorf("a restore stopped short of the mirror: marked unfinished %v (%v)", unfinished, err)
	}
}
