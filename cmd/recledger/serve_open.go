package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
)

// readerWait bounds how long serve waits for processes that read the
// ledger offline (replay, verify, pauses, manifest or backup on the stopped data
// dir) to let go of its file; readerWaitLog paces the log while it waits.
const (
	readerWait    = 2 * time.Minute
	readerWaitLog = 10 * time.Second
)

// openForServe opens the data dir's ledger for writing. Another server
// holding it is an error at once. A reader holding it (bbolt's shared
// lock, taken by the offline commands) is waited for, up to readerWait, so
// that a restart by a service manager does not fail because an engineer's
// replay sits in a pager.
func openForServe(ctx context.Context, dir string, log *slog.Logger) (*ledger.Store, error) {
	path := filepath.Join(dir, LedgerFile)
	deadline := time.Now().Add(readerWait)
	var logged time.Time
	for {
		store, err := ledger.OpenContext(ctx, path, ledger.Options{Logger: log})
		if err == nil {
			if !logged.IsZero() {
				log.Info("the ledger's readers let go of it; starting", logKeyFile, path)
			}
			return store, nil
		}
		if !errors.Is(err, ledger.ErrLocked) {
			return nil, fmt.Errorf("serve: %w", err)
		}
		if info, held := readServing(dir); held {
			return nil, fmt.Errorf("serve: %s is served already, by pid %d at %s (if it is stopping, wait for it to exit: it saves a checkpoint first): %w", dir, info.PID, info.HTTP, err)
		}
		holders := "another process"
		h, writer := lockHolders(path)
		if len(h) > 0 {
			holders = strings.Join(h, ", ")
		}
		// A holder for writing is another serve still starting (it
		// writes serving.json once it serves, and this one then stops)
		// or a restore; a walk's second serve called a starting one an
		// offline reader.
		doing := "reading it offline (replay, verify, pauses, manifest or backup on the stopped data dir)"
		if writer {
			doing = "writing it: another serve starting (this one stops once that one serves) or a restore"
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("serve: %s is still held after %s by %s, %s; let it finish or stop it, then start again: %w", path, readerWait, holders, doing, err)
		}
		if logged.IsZero() || time.Since(logged) >= readerWaitLog {
			log.Warn("waiting for the ledger: it is held by "+holders+", "+doing+"; serve starts when it lets go",
				logKeyFile, path, logKeyGiveUp, time.Until(deadline).Round(time.Second))
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("serve: waiting for the ledger's readers: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
