package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

// VersionCommand prints which build this is: the module version, the
// source revision it was built from (and whether the tree was modified),
// the Go version, and the event and projection versions it writes (what
// decides whether an older build can read its ledger and checkpoints:
// docs/replay.md, Upgrading). The same is on /metrics as go_build_info.
type VersionCommand struct{}

// Run prints the version to stdout.
func (*VersionCommand) Run(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args); err != nil {
		return err // -h: the usage, and no error
	}
	fmt.Fprintln(os.Stdout, buildVersion())
	return nil
}

// buildVersion is one line: "recledger (devel) rev 1a2b3c4 (modified)
// go1.26.8 events v5 projections 16".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "recledger (no build information)" + formatVersions()
	}
	v := "recledger " + bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " rev " + rev + modified
	}
	return v + " " + bi.GoVersion + formatVersions()
}

// formatVersions is " events vN projections V".
func formatVersions() string {
	return fmt.Sprintf(" events v%d projections %s", ledger.CurrentVersion, projections.Version)
}
