package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/recledger/recledger/ledger"
)

// ManifestCommand is the `manifest` subcommand: print the sealed manifest
// of a day, replayed offline from a data dir; the same bytes as
// GET /v1/manifests/{day}. A day not sealed is an error (exit status 1).
type ManifestCommand struct {
	Out    io.Writer // results; os.Stdout when nil
	Stderr *os.File  // flag errors and the progress bar (terminal only); os.Stderr when nil
}

// Run parses args (flags may come before or after DAY) and prints the manifest.
func (c *ManifestCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	fs := flag.NewFlagSet("manifest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: recledger manifest [--data DIR] [--token T] DAY")
		fs.PrintDefaults()
	}
	data := dataFlag(fs)
	token := tokenFlag(fs, "the HTTP API of a server running on --data")
	if err := fs.Parse(args); err != nil {
		return commandLine(fs, err)
	}
	rest := fs.Args()
	if len(rest) > 1 { // flags after DAY
		if err := fs.Parse(rest[1:]); err != nil {
			return commandLine(fs, err)
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if len(rest) != 1 {
		fs.Usage()
		// Exit status 2, as for any argument a command does not take.
		return commandLine(fs, fmt.Errorf("%w: want exactly one DAY (YYYY-MM-DD), got %d arguments", ledger.ErrInvalid, len(rest)))
	}
	day := rest[0]
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return fmt.Errorf("manifest: day %q: %w: want YYYY-MM-DD", day, ledger.ErrInvalid)
	}
	st, store, err := loadLedgerState(ctx, *data, stderr)
	var b []byte
	if info, held := heldByServer(*data, err, "manifest", stderr); held {
		if b, err = manifestFromServer(ctx, info, *token, day); err != nil {
			return fmt.Errorf("manifest %s: %w", day, err)
		}
	} else {
		if err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		defer store.Close()
		b, err = st.Manifest(ctx, day)
		if errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("manifest %s: %w: the day is not sealed (ledger at seq %d)", day, ledger.ErrNotFound, st.Seq())
		}
		if err != nil {
			return fmt.Errorf("manifest %s: %w", day, err)
		}
	}
	if _, err := out.Write(b); err != nil {
		return err
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		_, err = io.WriteString(out, "\n")
	}
	return err
}

// manifestFromServer is what GET /v1/manifests/{day} answers: the same
// bytes as the sealed manifest in the ledger.
func manifestFromServer(ctx context.Context, info servingInfo, token, day string) ([]byte, error) {
	body, err := askServer(ctx, info, token, "/v1/manifests/"+url.PathEscape(day))
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}
