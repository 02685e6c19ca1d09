package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// BackupCommand is the `backup` subcommand: a consistent copy of a data
// dir's ledger file, taken from the server running on it (GET /v1/backup,
// while it goes on appending) or, with none, from the file itself. The
// copy is a ledger file: put it in an empty data dir as ledger.db and
// serve, verify or replay it (docs/replay.md, "Backups").
type BackupCommand struct {
	Out    io.Writer // the summary line; os.Stdout when nil
	Stderr *os.File  // flag errors and notes; os.Stderr when nil
}

// backupHeld is what a copy holds, as announced before its bytes.
type backupHeld struct {
	size int64
	head uint64
	hash string
	from string // where it was taken, for the summary
}

// Run parses args and writes the copy.
func (c *BackupCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: recledger backup [--data DIR] [--token T] --out FILE")
		fs.PrintDefaults()
	}
	data := dataFlag(fs)
	token := roleTokenFlag(fs, "admin", "the HTTP API of a server running on --data")
	dest := fs.String("out", "", "the file to write (it must not exist; written beside it as FILE.partial, then renamed), or - for standard output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dest == "" {
		fs.Usage()
		return commandLine(fs, fmt.Errorf("%w: --out: give the file to write", ledger.ErrInvalid))
	}
	if *dest != "-" {
		if err := checkBackupDest(*dest); err != nil {
			return fmt.Errorf("backup: --out %s: %w", *dest, err)
		}
	}
	write := func(fill func(w io.Writer) (backupHeld, error)) (backupHeld, error) {
		if *dest == "-" {
			return fill(out)
		}
		return writeNewFile(*dest, fill, func(tmp string, h backupHeld) error {
			if err := checkBackup(tmp, h); err != nil {
				return fmt.Errorf("backup: %s: the copy does not read back as it was announced, so it was not kept: %w", *dest, err)
			}
			return nil
		})
	}
	var held backupHeld
	// A server running on the dir is asked, whether or not this account
	// could open its file: it holds the file's lock, and an account made
	// for backups needs only the admin token.
	info, live := readServing(*data)
	var store *ledger.Store
	var err error
	if !live {
		store, err = openLedgerReadOnly(*data)
		info, live = heldByServer(*data, err, "backup", stderr)
		if !live && err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	} else {
		fmt.Fprintf(stderr, "backup: the ledger is held by the server running on it (pid %d); asking it at %s\n", info.PID, info.HTTP)
	}
	if live {
		held, err = write(func(w io.Writer) (backupHeld, error) { return backupFromServer(ctx, info, *token, w) })
	} else {
		held, err = write(func(w io.Writer) (backupHeld, error) {
			h := backupHeld{from: filepath.Join(*data, LedgerFile)}
			_, err := store.Backup(ctx, w, func(i ledger.BackupInfo) error {
				h.size, h.head, h.hash = i.Size, i.Head, i.Hash
				return nil
			})
			return h, err // "backup: …" already
		})
		store.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			if *dest == "-" {
				return fmt.Errorf("backup: interrupted (%v); what went to standard output is not a whole copy", context.Cause(ctx))
			}
			return fmt.Errorf("backup: interrupted (%v); nothing was written to %s", context.Cause(ctx), *dest)
		}
		if !strings.HasPrefix(err.Error(), "backup: ") {
			err = fmt.Errorf("backup: %w", err)
		}
		return err
	}
	if *dest == "-" {
		return nil
	}
	_, err = fmt.Fprintf(out, "backup: %s: %d bytes, events 1 to %d (head hash %s), from %s\n", *dest, held.size, held.head, held.hash, held.from)
	return err
}

// backupFromServer copies GET /v1/backup of the server in info to w, and
// checks that every byte it announced came.
func backupFromServer(ctx context.Context, info servingInfo, token string, w io.Writer) (backupHeld, error) {
	body, resp, err := askServerAs(ctx, info, token, "/v1/backup", "admin")
	if err != nil {
		return backupHeld{}, err
	}
	defer body.Close()
	h := backupHeld{size: resp.ContentLength, hash: resp.Header.Get("Recledger-Head-Hash"), from: "the server at " + info.HTTP}
	h.head, err = strconv.ParseUint(resp.Header.Get("Recledger-Head-Seq"), 10, 64)
	if err != nil || h.size < 0 {
		return h, fmt.Errorf("%w: the server at %s sent no head seq or length with its copy (is it a recledger serve of this build or later?)", ledger.ErrUnavailable, info.HTTP)
	}
	lw := &localWriter{w: w}
	n, err := io.Copy(lw, body)
	if lw.err != nil {
		return h, fmt.Errorf("writing the copy after %d of %d bytes: %w", n, h.size, lw.err) // here, not the server
	}
	if err == nil && n != h.size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return h, fmt.Errorf("%w: the server at %s cut the copy off after %d of %d bytes (its log says why): %v", ledger.ErrUnavailable, info.HTTP, n, h.size, err)
	}
	return h, nil
}

// localWriter is w, remembering its own error apart from the source's.
type localWriter struct {
	w   io.Writer
	err error
}

func (l *localWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if err != nil {
		l.err = err
	}
	return n, err
}

// checkBackupDest refuses an --out that is there already (a file, a
// directory) or whose directory is not.
func checkBackupDest(path string) error {
	if fi, err := os.Lstat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: it is a directory: name the file to write, such as %s", ledger.ErrInvalid, filepath.Join(path, "ledger.db"))
		}
		return fmt.Errorf("%w: the file exists; name another, or move it away", ledger.ErrConflict)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: its directory %s does not exist", ledger.ErrNotFound, dir)
	}
	return nil
}

// writeNewFile writes what fill writes to path: into path.partial first
// (which must not exist), synced, checked by check, then renamed, and the
// directory synced, so that path is only ever a whole copy that passed
// its check. A failed fill or check removes the partial file.
func writeNewFile(path string, fill func(w io.Writer) (backupHeld, error), check func(tmp string, held backupHeld) error) (backupHeld, error) {
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return backupHeld{}, fmt.Errorf("%s: %w: another backup is writing it, or one was interrupted: remove it if none runs", tmp, ledger.ErrConflict)
	}
	if err != nil {
		return backupHeld{}, err
	}
	held, err := fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = check(tmp, held)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return held, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return held, fmt.Errorf("sync %s: %w", filepath.Dir(path), err)
		}
	}
	return held, nil
}

// checkBackup opens the copy at path as a ledger, read-only, and checks
// that it ends where it was announced to: the event and its hash.
func checkBackup(path string, held backupHeld) error {
	st, err := ledger.Open(path, ledger.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Damaged(); err != nil {
		return err
	}
	if seq, hash := st.Head(); seq != held.head || hash != held.hash {
		return fmt.Errorf("%w: the copy ends at seq %d (%s), it was announced to end at %d (%s)", ledger.ErrCorrupt, seq, hash, held.head, held.hash)
	}
	return nil
}
