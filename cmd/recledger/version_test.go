package main

import (
	"errors"
	"strings"
	"testing"
)

func TestVersionAndUsage(t *testing.T) {
	if v := buildVersion(); !strings.HasPrefix(v, "recledger ") || !strings.Contains(v, " go1.") {
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
}
