package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/replay"
)

// VerifyCommand is the `verify` subcommand: check the bbolt hash chain, the
// sections of the newest checkpoint and, with --nats, that the JetStream
// mirror holds the same events. It names the first difference and fails
// (exit status 1) when a check does not pass.
type VerifyCommand struct {
	Out    io.Writer // results; os.Stdout when nil
	Stderr *os.File  // flag errors; os.Stderr when nil
}

// verifyResult is what `verify --json` prints.
type verifyResult struct {
	OK        bool                 `json:"ok"`
	Chain     ledger.VerifyReport  `json:"chain"`
	JetStream *ledger.VerifyReport `json:"jetstream,omitempty"`
	Sections  *sectionsReport      `json:"sections,omitempty"`
}

// sectionsReport is the check of the newest checkpoint's sections: the
// sealed history the projections read back from the file.
type sectionsReport struct {
	OK         bool   `json:"ok"`
	Checkpoint uint64 `json:"checkpoint"` // its seq
	Sections   int    `json:"sections"`   // read and good
	Bytes      int64  `json:"bytes"`
	Problem    string `json:"problem,omitempty"`
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
	var secErr error
	if st := replay.FromCheckpoint(ctx, store); st != nil {
		n, size, err := st.CheckSections(ctx)
		res.Sections = &sectionsReport{OK: err == nil, Checkpoint: st.Seq(), Sections: n, Bytes: size}
		if err != nil {
			if !errors.Is(err, ledger.ErrCorrupt) {
				return fmt.Errorf("verify: sections: %w", err)
			}
			res.Sections.Problem, secErr = err.Error(), err
		}
		res.OK = res.OK && res.Sections.OK
	}
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
		if r := res.Sections; r != nil && r.OK {
			fmt.Fprintf(out, "%-9s ok: %d of the checkpoint at seq %d, %d bytes\n", "sections", r.Sections, r.Checkpoint, r.Bytes)
		} else if r != nil {
			fmt.Fprintf(out, "%-9s FAILED: %s (%d good before it)\n", "sections", r.Problem, r.Sections)
		}
		if res.JetStream != nil {
			writeVerifyLine(out, "jetstream", *res.JetStream)
		}
	}
	switch {
	case !res.Chain.OK:
		return fmt.Errorf("verify: %w at seq %d: %s", ledger.ErrChainBroken, res.Chain.FirstBad, res.Chain.Problem)
	case res.Sections != nil && !res.Sections.OK:
		return fmt.Errorf("verify: checkpoint at seq %d: %w", res.Sections.Checkpoint, secErr)
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
