package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/recledger/recledger/cmd/internal/simulator"
	"github.com/recledger/recledger/ledger"
)

// TestSimulateAgainstServer plays a small day against the real server
// in-process through the `simulate` command: the ledger must grow by exactly
// what was sent, and the answers must carry real outcomes.
func TestSimulateAgainstServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := e2eServer(t, ctx, t.TempDir())
	defer e2eStop(t, srv)

	var out, errOut bytes.Buffer
	cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
	err := cmd.Run(ctx, []string{"--url", "http://" + srv.Addr(), "--agents", "9", "--calls-per-agent", "6", "--seed", "5", "--json", "--strict"})
	if err != nil {
		t.Fatalf("simulate: %v\n%s%s", err, out.String(), errOut.String())
	}
	var rep simulator.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if !rep.Check.Match || rep.Check.VerifyDelta == 0 {
		t.Fatalf("check: %+v", rep.Check)
	}
	for _, want := range []struct{ cmd, outcome string }{
		{"pause", "applied"}, {"bad:unknown_user", "rejected"}, {"bad:finesse_variable", "rejected"},
	} {
		if rep.Commands[want.cmd][want.outcome] == 0 {
			t.Errorf("no %s answered %s: %v", want.cmd, want.outcome, rep.Commands[want.cmd])
		}
	}
	for _, status := range []string{"404", "413", "400"} {
		if rep.HTTPErrors[status] == 0 {
			t.Errorf("no %s answer: %v", status, rep.HTTPErrors)
		}
	}
	if rep.HTTPErrors["transport"] > 0 || rep.HTTPErrors["500"] > 0 || rep.HTTPErrors["503"] > 0 {
		t.Errorf("failures: %v", rep.HTTPErrors)
	}

	// The same again in text form, without setup, against the same server.
	out.Reset()
	if err := cmd.Run(ctx, []string{"--url", "http://" + srv.Addr(), "--agents", "9", "--calls-per-agent", "2", "--seed", "6", "--skip-setup", "--strict"}); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "MATCH") {
		t.Fatalf("text report without a check line:\n%s", out.String())
	}
}

// A number given on the command line is meant: 0 is not the library's
// default, and nothing is sent.
func TestSimulateRefusesNoAgentsOrCalls(t *testing.T) {
	for _, args := range [][]string{
		{"--calls-per-agent", "0"}, {"--agents", "0"}, {"--agents", "-3"}, {"--rate", "-1"}, {"--duration", "-1s"},
	} {
		var out, errOut bytes.Buffer
		cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
		err := cmd.Run(context.Background(), append([]string{"--url", "http://127.0.0.1:1"}, args...))
		if !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("simulate %v: %v", args, err)
		}
	}
}
