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
	"sort"
	"syscall"
)

// command is one subcommand: it parses its own flags from args and runs.
type command interface {
	Run(ctx context.Context, args []string) error
}

// commands maps each subcommand to a constructor of its command type.
var commands = map[string]func() command{
	"serve":         func() command { return &ServeCommand{} },
	"replay":        func() command { return &ReplayCommand{} },
	"verify":        func() command { return &VerifyCommand{} },
	"restore":       func() command { return &RestoreCommand{} },
	"pauses":        func() command { return &PausesCommand{} },
	"manifest":      func() command { return &ManifestCommand{} },
	"upload-worker": func() command { return &UploadWorkerCommand{} },
	"simulate":      func() command { return &SimulateCommand{} },
	"version":       func() command { return &VersionCommand{} },
}

// errUsage is a command line that names no command, or an unknown one:
// usage is printed, and the exit status is 2, so that a service file
// missing its command does not pass for a run that succeeded.
var errUsage = errors.New("no such command")

func main() {
	// SIGHUP too: a terminal that closes under `recledger serve` stops it
	// as cleanly as an operator's SIGTERM (the final checkpoint, the
	// serving file removed), instead of killing it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case errors.Is(err, errUsage):
		if err != errUsage {
			fmt.Fprintln(os.Stderr, "recledger:", err)
		}
		os.Exit(2)
	case err != nil && !errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(os.Stderr, "recledger:", err)
		os.Exit(1)
	}
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
	mk, ok := commands[args[0]]
	if !ok {
		usage()
		return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
	}
	return mk().Run(ctx, args[1:])
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: recledger <command> [flags]")
	fmt.Fprintln(os.Stderr, "commands:")
	for _, n := range names {
		fmt.Fprintln(os.Stderr, "  "+n)
	}
	fmt.Fprintln(os.Stderr, "run 'recledger <command> -h' (or 'recledger help <command>') for a command's flags")
}
