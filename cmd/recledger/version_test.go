package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
	"github.com/recledger/recledger/projections"
)

func TestVersionAndUsage(t *testing.T) {
	// It names the versions an older build's refusal speaks of (an upgrade
	// walk could not tell two builds apart).
	if v := buildVersion(); !strings.HasPrefix(v, "recledger ") || !strings.Contains(v, " go1.") ||
		!strings.HasSuffix(v, fmt.Sprintf(" events v%d projections %s", ledger.CurrentVersion, projections.Version)) {
		t.Fatalf("version %q", v)
	}
	if err := run(t.Context(), nil); !errors.Is(err, errUsage) {
		t.Fatalf("no command: %v, want the usage error (exit 2)", err)
	}
	if err := run(t.Context(), []string{"help"}); err != nil {
		t.Fatalf("help: %v", err)
	}
	if err := run(t.Context(), []string{"--version"}); err != nil {
		t.Fatalf("--version: %v", err)
	}
	seen := map[string]bool{}
	for _, c := range subcommands() {
		if seen[c.name] || c.summary == "" {
			t.Fatalf("subcommand %q named twice or without a summary", c.name)
		}
		seen[c.name] = true
		if err := run(t.Context(), []string{"help", c.name}); errors.Is(err, errUsage) {
			t.Fatalf("help %s: %v", c.name, err)
		}
	}
	// A flag or an argument a command does not take is a command line
	// error too: exit status 2, not 1 (the status of work that failed).
	for _, args := range [][]string{{"replay", "--bogus"}, {"verify", "extra"}, {"manifest", "--bogus", "2026-11-23"}, {"version", "x"},
		{"manifest", "2026-11-30", "2026-12-01"}, {"manifest"}} {
		if err := run(t.Context(), args); !errors.Is(err, errCommandLine) {
			t.Errorf("%q: %v, want a command line error (exit 2)", args, err)
		}
	}
	// A value a flag takes but the command refuses is work that failed
	// (exit status 1), the same for every command: serve and
	// upload-worker refused a bad --site with different statuses.
	for _, args := range [][]string{{"upload-worker", "--dest", "x", "--site", "a b"}, {"replay", "--site", "a.b"}, {"pauses", "--format", "xml"}} {
		if err := run(t.Context(), args); err == nil || errors.Is(err, errCommandLine) || errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a failure (exit 1)", args, err)
		}
	}
	if err := run(t.Context(), []string{"nope"}); !errors.Is(err, errUsage) {
		t.Fatalf("an unknown command: %v, want the usage error (exit 2)", err)
	}
}

// A damaged file's error that names no way out gets verify's; one that
// names restore, verify or --rebuild is left as it is, as are others.
func TestErrorLineSaysWhatToRunOnDamage(t *testing.T) {
	bare := fmt.Errorf("serve: replay: load: scan: %w: the file is damaged (reading it failed): assertion failed", ledger.ErrCorrupt)
	if got := errorLine(bare); !strings.HasSuffix(got, "`recledger verify --data DIR`, with no server on it, names it and the way out; docs/replay.md, \"Verify and restore\")") {
		t.Errorf("bare damage: %s", got)
	}
	for _, err := range []error{
		fmt.Errorf("open x: %w; move it away and rebuild it from the mirror with recledger restore (docs/replay.md)", ledger.ErrCorrupt),
		fmt.Errorf("verify: %w: start serve once with --rebuild", ledger.ErrCorrupt),
		errors.New("serve: listen: address in use"),
	} {
		if got := errorLine(err); got != err.Error() {
			t.Errorf("%v became %s", err, got)
		}
	}
}
