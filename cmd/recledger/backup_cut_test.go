package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
)

// TestABackupTheServerCutsOffIsNotKept: a server that closes the
// connection after half the copy it announced is named as unavailable,
// with how far the copy came, and nothing is left at --out; to standard
// output too, the error is the server's, said after one "backup: ".
func TestABackupTheServerCutsOffIsNotKept(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	file, err := os.ReadFile(filepath.Join(d.dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	half := len(file) / 2
	data := dataDirServedBy(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Recledger-Head-Seq", strconv.FormatUint(d.seq, 10))
		w.Header().Set("Recledger-Head-Hash", "x")
		w.Header().Set("Content-Length", strconv.Itoa(len(file)))
		w.Write(file[:half])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection closes here
	})
	says := fmt.Sprintf("cut the copy off after %d of %d bytes", half, len(file))
	out := filepath.Join(t.TempDir(), "copy.db")
	if _, err := runCmd(t, &BackupCommand{Stderr: devNull(t)}, "--data", data, "--out", out); !errors.Is(err, ledger.ErrUnavailable) ||
		!strings.Contains(err.Error(), says) || !strings.HasPrefix(err.Error(), "backup: ") {
		t.Fatalf("a copy cut off: %v, want %v saying %q", err, ledger.ErrUnavailable, says)
	}
	for _, p := range []string{out, out + ".partial"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a copy cut off left %s", filepath.Base(p))
		}
	}
	c := &BackupCommand{Out: io.Discard, Stderr: devNull(t)}
	if err := c.Run(context.Background(), []string{"--data", data, "--out", "-"}); !errors.Is(err, ledger.ErrUnavailable) ||
		!strings.Contains(err.Error(), says) || !strings.HasPrefix(err.Error(), "backup: ") || strings.Contains(err.Error(), "backup: backup: ") {
		t.Fatalf("a copy cut off, to standard output: %v", err)
	}
}

// TestABackupWithoutItsHeadSeqIsRefused: a copy sent without the head
// seq it ends at (not a recledger serve of this build) is refused before
// a byte of it goes to standard output, since nothing could check it.
func TestABackupWithoutItsHeadSeqIsRefused(t *testing.T) {
	d := writeOfflineDay(t, false, 0)
	file, err := os.ReadFile(filepath.Join(d.dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	data := dataDirServedBy(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(file)))
		w.Write(file)
	})
	var stdout bytes.Buffer
	c := &BackupCommand{Out: &stdout, Stderr: devNull(t)}
	if err := c.Run(context.Background(), []string{"--data", data, "--out", "-"}); !errors.Is(err, ledger.ErrUnavailable) || !strings.Contains(err.Error(), "no head seq") {
		t.Fatalf("a copy without its head seq: %v", err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("%d bytes of a copy without its head seq went to standard output", stdout.Len())
	}
}

// TestAnInterruptedBackupToStandardOutputSaysItIsNotWhole: interrupted,
// a backup to standard output says that what it wrote there is not a
// whole copy (it cannot take it back).
func TestAnInterruptedBackupToStandardOutputSaysItIsNotWhole(t *testing.T) {
	started := make(chan struct{})
	data := dataDirServedBy(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Recledger-Head-Seq", "1")
		w.Header().Set("Recledger-Head-Hash", "x")
		w.Header().Set("Content-Length", "8192")
		w.Write(make([]byte, 4096))
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	c := &BackupCommand{Out: io.Discard, Stderr: devNull(t)}
	if err := c.Run(ctx, []string{"--data", data, "--out", "-"}); err == nil || !strings.Contains(err.Error(), "interrupted") ||
		!strings.Contains(err.Error(), "what went to standard output is not a whole copy") {
		t.Fatalf("an interrupted backup to standard output: %v", err)
	}
}
