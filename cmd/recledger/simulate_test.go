package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	if len(rep.Replaced) != 0 {
		t.Errorf("a fresh server's setup replaced %v", rep.Replaced)
	}

	// A site configured otherwise: the setup says what it replaced.
	req, _ := http.NewRequest(http.MethodPut, "http://"+srv.Addr()+"/v1/config/site", strings.NewReader(`{"timezone":"America/Chicago","upload_time":"18:00"}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT site: %v %v", err, resp)
	}
	out.Reset()
	if err := cmd.Run(ctx, []string{"--url", "http://" + srv.Addr(), "--agents", "2", "--calls-per-agent", "1", "--seed", "7"}); err != nil {
		t.Fatalf("third run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "setup replaced the server's configuration: site (was timezone America/Chicago, upload 18:00)") {
		t.Errorf("the setup did not say it replaced the site:\n%s", out.String())
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

// A server that goes away once the day was played still leaves the report
// of what was sent and answered, marked unchecked.
func TestSimulateReportsWhenTheServerIsGone(t *testing.T) {
	ctx := t.Context()
	srv := e2eServer(t, ctx, t.TempDir())
	var (
		n, planned atomic.Int64
		once       sync.Once
	)
	cfg := simulator.Config{URL: "http://" + srv.Addr(), Agents: 2, CallsPerAgent: 2, Seed: 3,
		OnStart: func(total int) { planned.Store(int64(total)) },
		OnRequest: func() {
			if n.Add(1) == planned.Load() { // the last answer is in: the server goes
				once.Do(func() { e2eStop(t, srv) })
			}
		}}
	rep, err := simulator.Run(ctx, cfg)
	if !errors.Is(err, simulator.ErrUnchecked) {
		t.Fatalf("err = %v, want ErrUnchecked", err)
	}
	if rep.Sent != rep.Planned || rep.Sent == 0 || !strings.HasPrefix(rep.Check.Note, "not checked") || rep.Check.Match || !rep.Check.Unchecked {
		t.Errorf("report: sent %d of %d, check %+v", rep.Sent, rep.Planned, rep.Check)
	}
	// The text says the check was not made, not that the chain failed.
	var text strings.Builder
	rep.WriteText(&text)
	if out := text.String(); !strings.Contains(out, "ledger check: not checked") || strings.Contains(out, "MISMATCH") || strings.Contains(out, "chain ok") {
		t.Errorf("report text:\n%s", out)
	}
}

// A setup the server refuses (here: it already has 10 metadata keys of
// its own, the most there may be) stops at the first refusal, before the
// teams and users, and the error names it and why.
func TestSimulateNamesTheSetupRefused(t *testing.T) {
	ctx := t.Context()
	srv := e2eServer(t, ctx, t.TempDir())
	defer e2eStop(t, srv)
	base := "http://" + srv.Addr()
	for i := range 10 {
		req, _ := http.NewRequest(http.MethodPut, base+"/v1/config/metadata/own"+strconv.Itoa(i), strings.NewReader(`{"type":"text"}`))
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT key %d: %v %v", i, err, resp)
		}
	}
	var out, errOut bytes.Buffer
	cmd := &SimulateCommand{Stdout: &out, Stderr: &errOut}
	err := cmd.Run(ctx, []string{"--url", base, "--agents", "3", "--calls-per-agent", "1"})
	if err == nil || !strings.Contains(err.Error(), "the first: PUT /v1/config/metadata/") || !strings.Contains(err.Error(), "at most 10") {
		t.Fatalf("simulate: %v", err)
	}
	resp, err := http.Get(base + "/v1/config")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg struct {
		Users map[string]any `json:"users"`
		Teams map[string]any `json:"teams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Users) != 0 || len(cfg.Teams) != 0 {
		t.Errorf("%d users and %d teams configured for a site whose setup failed", len(cfg.Users), len(cfg.Teams))
	}
}
