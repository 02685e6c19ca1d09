package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// RestoreCommand is the `restore` subcommand: rebuild a data dir's ledger
// from the JetStream mirror alone, verify it, and leave a checkpoint so the
// next `serve` starts at once.
type RestoreCommand struct {
	Out    io.Writer // results; os.Stdout when nil
	Stderr *os.File  // flag errors and the progress bar (terminal only); os.Stderr when nil
}

// restoreResult is what `restore --json` prints.
type restoreResult struct {
	Events uint64 `json:"events"`
	Seq    uint64 `json:"seq"`
	Head   string `json:"head"`
	Digest string `json:"digest"`
}

// Run parses args and restores.
func (c *RestoreCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fromJS := fs.Bool("from-jetstream", false, "rebuild from the JetStream mirror (required: the only source)")
	natsURL := fs.String("nats", os.Getenv("RECLEDGER_NATS"), "NATS URL(s) (env RECLEDGER_NATS; default: the data dir's own mirror, DIR/jetstream, when it has one, else "+defaultNATSURL+")")
	site := siteFlag(fs)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	token := tokenFlag(fs, "the NATS server it reads the mirror from")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !*fromJS {
		return fmt.Errorf("restore: %w: --from-jetstream is required (the mirror is the only source)", ledger.ErrInvalid)
	}

	path := filepath.Join(*data, LedgerFile)
	held, err := ledgerHead(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var (
		nc   *nats.Conn
		js   jetstream.JetStream
		stop func()
		own  bool
	)
	if !natsGiven(fs) {
		// The data dir's own embedded mirror, after its ledger file was
		// lost: served here, on a loopback port, while restore reads it.
		if nc, js, stop, own, err = openOwnMirror(ctx, *data, *site, "recledger-restore", stderr); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	if !own {
		if *natsURL == "" {
			*natsURL = defaultNATSURL
		}
		if nc, js, err = ledger.Connect(ctx, *natsURL, "recledger-restore", nil, natsToken(*token)...); err != nil {
			if !natsGiven(fs) {
				// An engineer's walk met only "no servers available".
				return fmt.Errorf("restore: %w (%s has no mirror of its own, %s: give the mirror's NATS URL with --nats, a running server's or an external cluster's)",
					err, *data, filepath.Join(*data, JetStreamDir))
			}
			return fmt.Errorf("restore: %w", err)
		}
		stop = nc.Close
	}
	defer stop()
	src := replay.JetStreamSource{JS: js, Site: *site}
	head, err := src.Head(ctx)
	if err != nil {
		return fmt.Errorf("restore: %w", ledger.Refused(nc, err))
	}
	if head == 0 {
		return fmt.Errorf("restore: %w: the stream holds no events of site %q", ledger.ErrNotFound, *site)
	}
	if held > 0 {
		// Only the start of the mirror, as an interrupted restore
		// leaves it, is continued.
		if err := checkPrefix(ctx, src, path, held, head); err != nil {
			return fmt.Errorf("restore: %w", ledger.Refused(nc, err))
		}
		if held == head {
			fmt.Fprintf(stderr, "%s holds all the mirror's %d events: nothing to copy; checking it\n", path, held)
		} else {
			fmt.Fprintf(stderr, "%s holds the mirror's first %d events: continuing the restore after them\n", path, held)
		}
	}

	if err := os.MkdirAll(*data, 0o755); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	store, err := ledger.Open(path, ledger.Options{})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer store.Close()
	if seq, _ := store.Head(); seq != held { // written under us
		return fmt.Errorf("restore: %s: %w: it now holds %d events", path, ledger.ErrConflict, seq)
	}
	if err := store.ClaimSite(ctx, *site); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Marked until the end: serve refuses a dir a killed restore left.
	if err := store.SetRestoring(ctx, true); err != nil {
		return fmt.Errorf("restore: %w", err)
	}

	p := replay.NewProgress(stderr, held, head)
	n, err := replay.Restore(ctx, src, store, 0, p.Update)
	p.Finish()
	if err != nil && (errors.Is(err, ledger.ErrCorrupt) || errors.Is(err, ledger.ErrChainBroken)) {
		// Running it again stops at the same event.
		return fmt.Errorf("restore: stopped after %d events: the mirror's next event is damaged, and no restore gets past it "+
			"(the events before it are in %s; `recledger verify` names the event): %w", held+n, path, err)
	}
	if errors.Is(err, ledger.ErrInvalid) {
		// Whole, but not one the ledger takes after the one before (its
		// id goes back): running it again stops there too. The batch it
		// came in is not stored either.
		return fmt.Errorf("restore: stopped after %d events: the ledger refuses an event of the mirror's next batch, and no restore gets past it "+
			"(the first %d events are in %s, marked as a restore not finished; the error names the event): %w", held+n, held+n, path, err)
	}
	if errors.Is(err, ledger.ErrUnknownVersion) {
		// Running it again stops there too: a walk's operator was sent
		// round a loop of restore, verify and serve each naming another.
		return fmt.Errorf("restore: stopped after %d events: the mirror holds events of a newer build of recledger, which this build does not read: "+
			"restore with that build or a later one; it continues this restore (the events before them are in %s, marked as a restore not finished): %w", held+n, path, err)
	}
	if err != nil {
		return fmt.Errorf("restore: stopped after %d events (run it again to continue): %w", held+n, err)
	}
	rep, err := store.Verify(ctx)
	if err != nil {
		return fmt.Errorf("restore: verify: %w", err)
	}
	if !rep.OK {
		return fmt.Errorf("restore: verify: %w at seq %d: %s", ledger.ErrChainBroken, rep.FirstBad, rep.Problem)
	}
	// Fold once now: it proves the events are understood, gives the digest
	// to compare with the old server's GET /v1/digest, and leaves a
	// checkpoint for the next start.
	st, _, err := replay.Run(ctx, store, replay.Options{})
	if err != nil {
		return fmt.Errorf("restore: replay: %w", err)
	}
	if _, err := replay.Save(ctx, store, st); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := store.SetRestoring(ctx, false); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	seq, hash := store.Head()
	res := restoreResult{Events: n, Seq: seq, Head: hash, Digest: st.Digest()}
	if *asJSON {
		return writeJSONLine(out, res)
	}
	_, err = fmt.Fprintf(out, "restored %d events into %s\nhead     seq %d hash %s\ndigest   %d %s\n",
		res.Events, path, res.Seq, res.Head, res.Seq, res.Digest)
	return err
}

// ledgerHead is the head seq of the ledger at path: 0 when there is none;
// an error when it cannot be read to tell (a running server holds it).
//
// An empty file (a refused start's, or one truncated to nothing) holds no
// events: restore fills it (a walk followed verify's word to restore over
// one, and restore failed reading it). A damaged ledger is refused later,
// when restore opens it to write (Store.Damaged).
func ledgerHead(path string) (uint64, error) {
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return 0, nil
	}
	st, err := ledger.Open(path, ledger.Options{ReadOnly: true})
	switch {
	case errors.Is(err, ledger.ErrCorrupt):
		return 0, err // it names the file and the way out
	case errors.Is(err, ledger.ErrLocked):
		if info, live := readServing(filepath.Dir(path)); live {
			return 0, fmt.Errorf("%s is held by the server running on it (pid %d, %s): stop it first, or restore into another data dir: %w", path, info.PID, info.HTTP, err)
		}
		return 0, fmt.Errorf("%s exists and is held by another process (a running server?): %w", path, err)
	case err != nil:
		return 0, fmt.Errorf("%s exists and cannot be read: %w", path, err)
	}
	defer st.Close()
	seq, _ := st.Head()
	return seq, nil
}

// checkPrefix fails unless the ledger at path, of held events, is the
// start of src's (head events): its last event is the mirror's at that
// seq, and the chain makes the rest equal.
func checkPrefix(ctx context.Context, src replay.JetStreamSource, path string, held, head uint64) error {
	st, err := ledger.Open(path, ledger.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	_, hash := st.Head()
	rep, err := st.Verify(ctx)
	recorded, _ := st.Site(ctx)
	st.Close()
	switch {
	case err != nil:
		return err
	case recorded != "" && recorded != src.Site:
		return fmt.Errorf("%s: %w: the data dir is site %s, not %s; restore it with --site %s, or restore site %s into an empty data dir", path, ledger.ErrConflict, recorded, src.Site, recorded, src.Site)
	case !rep.OK:
		return fmt.Errorf("%s: %w at seq %d: %s; move it away and restore into an empty data dir", path, ledger.ErrChainBroken, rep.FirstBad, rep.Problem)
	case held > head:
		return fmt.Errorf("%s: %w: it holds %d events, more than the mirror's %d; restore only into an empty data dir", path, ledger.ErrConflict, held, head)
	}
	errFound := errors.New("found")
	var theirs string
	err = src.Scan(ctx, held-1, func(e ledger.Envelope) error {
		if e.Seq == held {
			theirs = e.Hash
		}
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return err
	}
	if theirs != hash {
		return fmt.Errorf("%s: %w: its %d events are not the mirror's (at seq %d its hash is %s, the mirror's %q); restore only into an empty data dir",
			path, ledger.ErrConflict, held, held, hash, theirs)
	}
	return nil
}

// natsGiven reports whether the NATS URL was given, by flag or environment.
func natsGiven(fs *flag.FlagSet) bool {
	given := os.Getenv("RECLEDGER_NATS") != ""
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "nats" })
	return given
}

// isDir reports whether path is a directory.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
