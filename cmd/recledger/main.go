// Command recledger is the event-sourced recording ledger: `serve` runs the
// site; the other subcommands replay, verify and read a ledger.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/recledger/recledger/ledger"
)

// command is one subcommand: it parses its own flags from args and runs.
type command interface {
	Run(ctx context.Context, args []string) error
}

// subcommand is a subcommand's name, what it does in a line, and the
// constructor of its command type.
type subcommand struct {
	name, summary string
	make          func() command
}

// subcommands lists the subcommands in the order usage shows them: the
// server first, then what reads a ledger, then the tools beside it.
func subcommands() []subcommand {
	return []subcommand{
		{"serve", "run the site: the Recording Controls API, the call-signal feed, the ledger and its JetStream mirror", func() command { return &ServeCommand{} }},
		{"replay", "fold a ledger again: its digest, a trace of a user's events, the state at a seq, id or time", func() command { return &ReplayCommand{} }},
		{"verify", "check the hash chain, and that JetStream holds the same events", func() command { return &VerifyCommand{} }},
		{"pauses", "the PCI pause history, as a table, CSV or JSON", func() command { return &PausesCommand{} }},
		{"manifest", "print a sealed day's upload manifest", func() command { return &ManifestCommand{} }},
		{"backup", "copy a data dir's ledger file, from the server running on it or from the file", func() command { return &BackupCommand{} }},
		{"restore", "build a data directory from the JetStream mirror alone", func() command { return &RestoreCommand{} }},
		{"upload-worker", "consume sealed manifests and write one file per contact", func() command { return &UploadWorkerCommand{} }},
		{"simulate", "play a day of a contact center against a server, and measure it", func() command { return &SimulateCommand{} }},
		{"version", "print the version and source revision", func() command { return &VersionCommand{} }},
	}
}

// errUsage is a command line that names no command, or an unknown one:
// usage is printed, and the exit status is 2, so that a service file
// missing its command does not pass for a run that succeeded.
var errUsage = errors.New("no such command")

// errCommandLine is a command's flag or argument that it cannot take:
// the exit status is 2, as for an unknown command (the command's usage
// has been printed by its flag set).
var errCommandLine = errors.New("bad command line")

// commandLineError is an error of fs's command line, errCommandLine.
type commandLineError struct {
	cmd string
	err error
}

func (e *commandLineError) Error() string        { return e.cmd + ": " + e.err.Error() }
func (e *commandLineError) Is(target error) bool { return target == errCommandLine }
func (e *commandLineError) Unwrap() error        { return e.err }

// commandLine makes err, from parsing fs, a command line error; -h stays
// flag.ErrHelp (exit status 0).
func commandLine(fs *flag.FlagSet, err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &commandLineError{fs.Name(), err}
}

// parseFlags parses args into fs, and refuses arguments that are not
// flags: the commands but manifest take none.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return commandLine(fs, err)
	}
	if fs.NArg() > 0 {
		return commandLine(fs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	return nil
}

func main() {
	// SIGHUP too: a terminal that closes under `recledger serve` stops it
	// as cleanly as an operator's SIGTERM (the final checkpoint, the
	// serving file removed), instead of killing it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	// A second signal is not caught: it ends the process at once, when
	// the first one's orderly stop waits on something that does not
	// answer (a walk's simulate against a frozen server took a minute,
	// and ignored a second Ctrl-C). What was acknowledged is durable
	// either way.
	stopped := context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:])
	stopped()
	stop()
	switch {
	case errors.Is(err, errUsage), errors.Is(err, errCommandLine):
		if err != errUsage {
			fmt.Fprintln(os.Stderr, "recledger:", err)
		}
		os.Exit(2)
	case errors.As(err, new(loggedError)):
		os.Exit(1)
	case err != nil && !errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(os.Stderr, "recledger:", errorLine(err))
		os.Exit(1)
	}
}

// errorLine is err as the last line a command prints. A damaged file's
// error that does not say what to do (a serve refused while folding from
// its checkpoint, a page bbolt could not read) gets the step that tells:
// verify names the damage and its way out.
func errorLine(err error) string {
	msg := err.Error()
	if errors.Is(err, ledger.ErrCorrupt) && !strings.Contains(msg, "recledger verify") &&
		!strings.Contains(msg, "recledger restore") && !strings.Contains(msg, "--rebuild") {
		msg += " (a part of the ledger file is damaged: `recledger verify --data DIR`, with no server on it, names it and the way out; docs/replay.md, \"Verify and restore\")"
	}
	return msg
}

func run(ctx context.Context, args []string) error {
	if len(args) == 2 && args[0] == "help" {
		args = []string{args[1], "-h"} // `recledger help serve` is `recledger serve -h`
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return nil
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = []string{"version"}
	}
	for _, c := range subcommands() {
		if c.name == args[0] {
			return c.make().Run(ctx, args[1:])
		}
	}
	usage()
	return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
}

func usage() {
	w := tabwriter.NewWriter(os.Stderr, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "usage: recledger <command> [flags]")
	fmt.Fprintln(w, "commands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %s\t%s\n", c.name, c.summary)
	}
	w.Flush()
	fmt.Fprintln(os.Stderr, "run 'recledger <command> -h' (or 'recledger help <command>') for a command's flags")
}
