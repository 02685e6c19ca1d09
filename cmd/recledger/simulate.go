package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
)

// SimulateCommand is the `simulate` subcommand: it drives a realistic
// contact center against a server over HTTP and reports what it sent, the
// answers, throughput and latency, and whether the ledger grew by exactly
// what it should have.
type SimulateCommand struct {
	Stdout, Stderr io.Writer
}

// errMismatch is returned when the server's counts differ from what was sent.
var errMismatch = errors.New("simulate: server counts do not match what was sent")

// Run parses flags, runs the simulation and prints the report.
func (c *SimulateCommand) Run(ctx context.Context, args []string) error {
	var (
		cfg    simulator.Config
		day    string
		asJSON bool
		noProg bool
		strict bool
		stdout = c.Stdout
		stderr = c.Stderr
	)
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the recledger server")
	fs.IntVar(&cfg.Agents, "agents", 10, "number of agents (one goroutine each)")
	fs.IntVar(&cfg.CallsPerAgent, "calls-per-agent", 20, "calls per agent")
	fs.Float64Var(&cfg.Rate, "rate", 0, "cap on requests per second overall (0 = no cap)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop sending after this long (0 = play the whole day)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed: each agent's sequence of requests is a pure function of it")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "requests in flight at most (default: --agents)")
	strFlag(fs, &cfg.Token, "token", "RECLEDGER_TOKEN", "bearer token (with the command and admin roles) when the server has --tokens")
	fs.StringVar(&day, "day", "", "play the calls on `YYYY-MM-DD`, from 08:00Z, through the signals' at member;\n"+
		"commands keep the server's time, so the two clocks disagree: contacts stretch from the day to their commands,\n"+
		"and its manifests are not a real day's (docs/PERFORMANCE.md); a time ahead of the server's is taken at the server's\n"+
		"(default: signals carry no time, the server stamps them)")
	fs.BoolVar(&cfg.SkipSetup, "skip-setup", false, "do not PUT the site configuration (already done)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&noProg, "no-progress", false, "no progress bar even on a terminal")
	fs.BoolVar(&strict, "strict", false, "exit non-zero when the server's counts do not match, or requests got no answer or were refused at auth")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The library takes 0 for its defaults; on the command line a number
	// given is meant.
	for _, f := range []struct {
		name string
		v    int
	}{{"agents", cfg.Agents}, {"calls-per-agent", cfg.CallsPerAgent}} {
		if f.v < 1 {
			return fmt.Errorf("simulate: --%s %d: %w: want at least 1", f.name, f.v, ledger.ErrInvalid)
		}
	}
	if cfg.Concurrency < 0 || cfg.Rate < 0 || cfg.Duration < 0 {
		return fmt.Errorf("simulate: --concurrency, --rate and --duration: %w: must not be negative", ledger.ErrInvalid)
	}
	if day != "" {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return fmt.Errorf("simulate: --day: %w", err)
		}
		cfg.Day = d
	}

	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && !noProg && term.IsTerminal(int(f.Fd())) {
		cfg.OnStart = func(total int) {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("simulating"), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("req"),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		cfg.OnRequest = func() { _ = bar.Add(1) }
	}
	rep, err := simulator.Run(ctx, cfg)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil && !errors.Is(err, simulator.ErrUnchecked) && !errors.Is(err, simulator.ErrInterrupted) {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout)
	}
	if err != nil { // the report is printed; the failure is said too
		return err
	}
	if strict {
		return strictCheck(rep)
	}
	return nil
}

// strictCheck is --strict's verdict: the counts match, and every request
// was answered and let in. A run whose requests all went unanswered (a
// walk's, against an address its client could not dial) or were refused
// at auth appended nothing, matched trivially, and passed.
func strictCheck(rep simulator.Report) error {
	refused := rep.HTTPErrors["401"] + rep.HTTPErrors["403"]
	switch {
	case !rep.Check.Match:
		return errMismatch
	case rep.Unanswered > 0:
		return fmt.Errorf("simulate: --strict: %d of %d requests got no answer", rep.Unanswered, rep.Sent)
	case refused > 0:
		return fmt.Errorf("simulate: --strict: %d of %d requests were refused at auth (401/403): give --token a token with the command and admin roles", refused, rep.Sent)
	}
	return nil
}
