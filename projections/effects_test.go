package projections

import (
	"slices"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

// A call signal of a type the rules do not know changes nothing, and its
// answer says why (unknown_type), as a batch's answer names each ignored
// signal (mutation testing: the reason went unpinned).
func TestSignalOfUnknownTypeIsIgnored(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0)) // u0 on 3000
	s := fold(t, g.out, false)
	eff, err := s.Apply(g.add(ledger.TypeCallSignal, time.Second, ledger.CallSignal{CallID: "c", Extension: "3000", Type: "transferred", Transport: "http"}))
	if err != nil {
		t.Fatal(err)
	}
	if eff.Ignored != IgnoredUnknownType {
		t.Errorf("ignored = %q, want %q", eff.Ignored, IgnoredUnknownType)
	}
	if len(s.calls) != 0 {
		t.Errorf("a call was started: %d active", len(s.calls))
	}
}

// A command's effect names the user it acts for, found by sender or by
// extension, so that a trace by user (replay --user) shows it, also when
// it changed nothing (mutation testing: this went unpinned).
func TestCommandEffectNamesItsUser(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0)) // u0 on 3000
	s := fold(t, g.out, false)
	for _, c := range []ledger.Command{
		{Command: ledger.CmdPause, SenderID: "u0", Transport: "http"},
		{Command: ledger.CmdTag, Extension: "3000", Transport: "http"},
	} {
		eff, err := s.Apply(g.add(ledger.TypeCommand, time.Second, c))
		if err != nil {
			t.Fatal(err)
		}
		if len(eff.Users) != 1 || eff.Users[0] != "u0" {
			t.Errorf("%s by %q at %q: users %v, want [u0]", c.Command, c.SenderID, c.Extension, eff.Users)
		}
	}
}

// A login names, besides its sender, each agent it detaches from the
// extension, so that a trace by user shows why that agent lost it
// (mutation testing: this went unpinned).
func TestLoginEffectNamesTheAgentsItDetaches(t *testing.T) {
	g := newEnvGen(t)
	g.config(genConfig(2, 0)) // u0 on 3000
	s := fold(t, g.out, false)
	eff, err := s.Apply(g.add(ledger.TypeCommand, time.Second, ledger.Command{Command: ledger.CmdLogin, SenderID: "u1", Extension: "3000", Transport: "http"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(eff.Users, "u0") || !slices.Contains(eff.Users, "u1") {
		t.Errorf("users %v, want u0 (detached) and u1", eff.Users)
	}
}
