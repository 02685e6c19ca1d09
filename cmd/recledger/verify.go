package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/recledger/recledger/ledger"
)

// VerifyCommand is the `verify` subcommand: check the bbolt hash chain and,
// with --nats, that the JetStream mirror holds the same events. It names
// the first difference and fails (exit status 1) when a check does not pass.
type VerifyCommand struct {
	Out    io.Writer // results; os.Stdout when nil
	Stderr *os.File  // flag errors; os.Stderr when nil
}

// verifyResult is what `verify --json` prints.
type verifyResult struct {
	OK        bool                 `json:"ok"`
	Chain     ledger.VerifyReport  `json:"chain"`
	JetStream *ledger.VerifyReport `json:"jetstream,omitempty"`
}

// Run parses args and verifies.
func (c *VerifyCommand) Run(ctx context.Context, args []string) error {
	out, stderr := outOr(c.Out), stderrOr(c.Stderr)
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := dataFlag(fs)
	natsURL := fs.String("nats", os.Getenv("RECLEDGER_NATS"), "NATS URL(s): also compare with the JetStream mirror (env RECLEDGER_NATS)")
	site := siteFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("verify: unexpected arguments %q", fs.Args())
	}
	store, err := openLedgerReadOnly(*data)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer store.Close()

	res := verifyResult{}
	if res.Chain, err = store.Verify(ctx); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	res.OK = res.Chain.OK
	if *natsURL != "" {
		nc, js, err := ledger.Connect(ctx, *natsURL, "recledger-verify", nil)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		defer nc.Close()
		rep, err := ledger.CompareJetStream(ctx, store, js, *site)
		if err != nil {
			return fmt.Errorf("verify: jetstream: %w", err)
		}
		res.JetStream = &rep
		res.OK = res.OK && rep.OK
	}

	if *asJSON {
		if err := writeJSONLine(out, res); err != nil {
			return err
		}
	} else {
		writeVerifyLine(out, "chain", res.Chain)
		if res.JetStream != nil {
			writeVerifyLine(out, "jetstream", *res.JetStream)
		}
	}
	switch {
	case !res.Chain.OK:
		return fmt.Errorf("verify: %w at seq %d: %s", ledger.ErrChainBroken, res.Chain.FirstBad, res.Chain.Problem)
	case res.JetStream != nil && !res.JetStream.OK:
		return fmt.Errorf("verify: jetstream: %w at seq %d: %s", ledger.ErrMismatch, res.JetStream.FirstBad, res.JetStream.Problem)
	}
	return nil
}

func writeVerifyLine(w io.Writer, what string, r ledger.VerifyReport) {
	if r.OK {
		fmt.Fprintf(w, "%-9s ok: %d events, head %s\n", what, r.Events, r.Head)
		return
	}
	fmt.Fprintf(w, "%-9s FAILED at seq %d: %s (%d events good before it)\n", what, r.FirstBad, r.Problem, r.Events)
}
